"""Inbound traffic: each stanza a remote server sent us, authorised and turned into accounts/chat actions.

`handle(domain, stanza)` is the transport's `on_stanza` callback (runfederation wires it): the transport has
already authenticated `domain` on the stream and checked the stanza's `from`/`to` domains; everything here is
re-checked anyway, because a stanza is untrusted input until an action accepts it. The order of checks:

1. `from` is a JID of the authenticated domain, `to` a JID of ours (otherwise a stanza error; the stream goes on);
2. the operator's policy (`federation.policy.is_denied`): a denied domain gets nothing, not even an error;
3. rate limits per remote domain and per remote sender (`resource-constraint`, once per window);
4. the recipient: an unknown account and one that blocks the sender (or the sender's server, or an operator
   blocked the sender for the whole service) are the same
   `service-unavailable` for a message or IQ (RFC 6121 §8.5.2, XEP-0191 §3.5) and the same silence for presence;
5. the stanza itself, through the actions: messages, receipts (XEP-0184), errors, chat states (XEP-0085),
   subscriptions (RFC 6121 §3), presence (§4), probes.

Replies (errors, receipts, presence) go through the outbox like everything we send, so they are durable and keep
their order with the rest of the traffic to that server. Nothing a handler does can stop the stream: a failure is
logged and the next stanza is served.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from lxml import etree

from accounts import actions as account_actions
from accounts import events
from accounts.errors import AccountError, InvalidJid, NoSuchUser
from accounts.events import notify_users
from accounts.jid import BareJid
from accounts.models import RosterItem, Subscription, User
from chat import actions as chat_actions
from chat.actions.messages import RemoteLink
from chat.actions.typing import receive_chat_state
from chat.errors import InvalidMessage
from federation import discovery, oob, outbox, policy, ratelimit, stanzas
from federation.bounce import error_reply
from federation.models import RemotePresence

logger = logging.getLogger("federation")


class Refused(Exception):
    """A stanza we answer with a stanza error (RFC 6120 §8.3): `condition`, `error_type` and plain-words `text`."""

    def __init__(self, condition: str, text: str = "", error_type: str = "cancel") -> None:
        super().__init__(text or condition)
        self.condition = condition
        self.text = text
        self.error_type = error_type


async def handle(domain: str, stanza: etree._Element) -> None:
    """The transport's on_stanza callback: process one inbound stanza; never raises."""
    try:
        await database_sync_to_async(process)(domain, stanza)
    except Exception:
        logger.exception("inbound <%s> from %s could not be processed", stanzas.kind(stanza), domain)


def process(domain: str, stanza: etree._Element) -> None:
    """Process one inbound stanza from the authenticated remote `domain` (synchronous: database work)."""
    kind = stanzas.kind(stanza)
    if policy.is_denied(domain):
        logger.info("dropping <%s> from %s: federation with it is denied", kind, domain)
        return
    try:
        sender = stanzas.bare_jid(stanza.get("from"))
    except InvalidJid:
        logger.info("dropping <%s> from %s: unusable from %r", kind, domain, stanza.get("from"))
        return  # nobody to answer: an error to a malformed address cannot be addressed
    if sender.domain != domain.lower():
        # The transport refuses this at stream level; should one slip through, answer the authenticated server
        # (never the claimed address, which would turn us into a reflector towards a third party).
        _reply(stanza, Refused("forbidden", f"{sender} is not an address of {domain}"), to=domain)
        return
    try:
        _dispatch(domain, sender, kind, stanza)
    except Refused as refusal:
        _reply(stanza, refusal)


def _dispatch(domain: str, sender: BareJid, kind: str, stanza: etree._Element) -> None:
    stanza_type = stanza.get("type") or ""
    # Errors and IQ results are never answered (RFC 6120 §8.3.1, §8.2.3), but they are counted like the rest.
    answerable = kind != "presence" and stanza_type != "error" and not (kind == "iq" and stanza_type == "result")
    # Receipts and errors answer what we sent: they count against the server's budget, not the person's.
    acknowledgement = kind == "message" and (
        stanza_type == "error" or (stanzas.received_id(stanza) is not None and stanzas.body(stanza) is None)
    )
    try:
        ratelimit.charge(domain, str(sender), per_sender=not acknowledgement)
    except ratelimit.RateLimited as err:
        # One error per window and scope: a flood must not be answered by a flood (nor fill our outbox).
        if answerable and cache.add(f"s2s:rl-told:{err.scope}", 1, timeout=err.retry_after):
            raise Refused("resource-constraint", f"Too many stanzas from {err.scope}.", "wait") from None
        return
    if kind == "iq" and stanza_type == "get" and _for_the_server(stanza):
        result = discovery.answer(stanza)
        if result is None:
            raise Refused("service-unavailable")
        with transaction.atomic():
            outbox.enqueue(result, recipient=result.get("to"))
        return
    if stanza_type == "error" or (kind == "iq" and stanza_type == "result"):
        recipient = _recipient(stanza, sender, quiet=True)
        if recipient is not None and kind == "message":
            _message_error(sender, stanza)
        return
    recipient = _recipient(stanza, sender, quiet=kind == "presence")
    if recipient is None:
        return
    if kind == "message":
        _message(sender, recipient, stanza_type, stanza)
    elif kind == "presence":
        _presence(sender, recipient, stanza_type, stanza)
    elif kind == "iq":
        # The server answers for itself (federation.discovery); nothing is offered on behalf of our users.
        raise Refused("service-unavailable")


def _for_the_server(stanza: etree._Element) -> bool:
    """Whether a stanza is addressed to this server itself (the bare domain, no person)."""
    to = (stanza.get("to") or "").strip().lower()
    return to == settings.IMWEB_DOMAIN


def _recipient(stanza: etree._Element, sender: BareJid, *, quiet: bool) -> User | None:
    """The local account the stanza is for. Nobody, and someone who blocks the sender (or the sender's server),
    get one and the same answer: `service-unavailable`, or silence when `quiet` (presence, errors, results)."""
    try:
        to = stanzas.bare_jid(stanza.get("to"))
    except InvalidJid:
        if quiet:
            return None
        raise Refused("jid-malformed", "The 'to' address is not a valid JID.", "modify") from None
    if to.domain != settings.IMWEB_DOMAIN:
        if quiet:
            return None
        raise Refused("item-not-found", f"{to.domain} is not served here.")
    user = account_actions.local_user_for(to) if to.localpart else None
    if user is None or account_actions.is_blocked(user, str(sender)) or policy.is_address_blocked(str(sender)):
        if quiet:
            return None
        raise Refused("service-unavailable")
    return user


# --- messages ---------------------------------------------------------------------------------------------


def _message(sender: BareJid, recipient: User, stanza_type: str, stanza: etree._Element) -> None:
    if stanza_type == "headline":
        return  # RFC 6121 §8.5.2.1.1: silently ignored when there is no resource to take it
    if stanza_type == "groupchat":
        raise Refused("service-unavailable", "This server does not host group chats for remote rooms.")
    receipt_for = stanzas.received_id(stanza)
    if receipt_for is not None:
        outbox.mark_delivered(str(sender), receipt_for)
    body = stanzas.body(stanza)
    links = oob.links_of(stanza, body)
    if links or (body is not None and body.strip()):
        _store_message(sender, recipient, body or "", stanza, links)
    elif body is not None and receipt_for is None and stanzas.chat_state_of(stanza) is None:
        raise Refused("not-acceptable", "A message cannot be empty.", "modify")
    elif body is None:
        state = stanzas.chat_state_of(stanza)
        if state is not None:
            _chat_state(sender, recipient, state)


def _store_message(
    sender: BareJid, recipient: User, body: str, stanza: etree._Element, links: list[oob.OobLink]
) -> None:
    """Store a remote message; files it shares by link (XEP-0066, or a body that is an upload's URL) become
    attachments, and a line of the body that is only one of their URLs is not shown twice."""
    client_id = stanzas.remote_client_id(sender, stanza)
    receipt_id = stanza.get("id") if stanzas.wants_receipt(stanza) else None
    shared = [RemoteLink(link.url, link.name) for link in links]
    if links:
        body = oob.text_without_links(body, links)
    try:
        chat_actions.receive_remote_message(
            str(sender), recipient, body, client_id, receipt_id=receipt_id, links=shared
        )
    except NoSuchUser:
        raise Refused("service-unavailable") from None
    except InvalidMessage as err:
        raise Refused("not-acceptable", str(err), "modify") from None


def _message_error(sender: BareJid, stanza: etree._Element) -> None:
    """A remote server refused one of our messages: its copy is failed, the reason shown to its sender."""
    error = stanzas.error_of(stanza)
    if stanza.get("id"):
        outbox.mark_failed(str(sender), stanza.get("id", ""), f"{sender.domain} refused it: {error.plain_words}")


def _chat_state(sender: BareJid, recipient: User, state: str) -> None:
    """XEP-0085: the remote person is typing (or stopped) in their conversation with `recipient`."""
    receive_chat_state(str(sender), recipient, state)


# --- presence ---------------------------------------------------------------------------------------------


def _presence(sender: BareJid, recipient: User, stanza_type: str, stanza: etree._Element) -> None:
    if stanza_type in stanzas.SUBSCRIPTION_TYPES:
        try:
            account_actions.receive_subscription(recipient, str(sender), stanza_type)
        except AccountError as err:
            logger.info("subscription %s from %s refused: %s", stanza_type, sender, err)
    elif stanza_type == "probe":
        account_actions.answer_probe(recipient, str(sender))
    elif stanza_type in ("", "unavailable"):
        record_remote_presence(recipient, str(sender), stanzas.presence_state(stanza))
    # Any other type is not RFC 6121 presence: ignored, as presence errors are never answered.


def record_remote_presence(recipient: User, jid: str, state: stanzas.RemotePresenceState) -> bool:
    """Keep the latest presence a remote contact sent, if `recipient` is subscribed to it (`to`/`both`); then
    every local user who sees that contact's presence is told. Presence from anyone else is dropped: nobody
    here asked for it. Returns whether anything changed.

    One row per bare JID: the latest presence of any of their devices wins (RFC 6121 §4.4.2 would aggregate
    per resource; with one device each, as typical here, it is the same, and the next presence corrects it)."""
    if not RosterItem.objects.filter(
        owner=recipient, jid=jid, subscription__in=[Subscription.TO, Subscription.BOTH]
    ).exists():
        return False
    with transaction.atomic():
        current = RemotePresence.objects.select_for_update().filter(jid=jid).first()
        values = {"available": state.available, "show": state.show, "status": state.status}
        if current is not None and all(getattr(current, name) == value for name, value in values.items()):
            return False
        RemotePresence.objects.update_or_create(jid=jid, defaults=values)
        audience = RosterItem.objects.filter(jid=jid, subscription__in=[Subscription.TO, Subscription.BOTH])
        notify_users(audience.values_list("owner_id", flat=True), events.roster_changed())
    return True


# --- replies ----------------------------------------------------------------------------------------------


def _reply(stanza: etree._Element, refusal: Refused, *, to: str | None = None) -> None:
    """Queue the RFC 6120 §8.3 error reply (none for presence, errors and IQ results)."""
    if stanzas.kind(stanza) == "presence":
        return
    reply = error_reply(stanza, refusal.condition, error_type=refusal.error_type, text=refusal.text or None)
    if reply is None:
        return
    if to is not None:
        reply.set("to", to)
    ours = reply.get("from", "")
    if ours.split("/", 1)[0].rpartition("@")[2].lower() != settings.IMWEB_DOMAIN:
        reply.set("from", settings.IMWEB_DOMAIN)  # a stanza to a domain not ours is answered by ours
    try:
        with transaction.atomic():
            outbox.enqueue(reply, recipient=reply.get("to"))
    except outbox.OutboxError as err:
        logger.info("no error reply for <%s> from %s: %s", stanzas.kind(stanza), stanza.get("from"), err)
