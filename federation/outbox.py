"""The outbox: the one interface `accounts` and `chat` use to reach another XMPP server. They say what happens
in the domain's words (`deliver_message`, `presence`, `probe`, `subscription`, `receipt`, `chat_state`) and build
no stanzas; this module builds them (federation.stanzas) and stores them.

Each of those but `chat_state` writes a row in the caller's transaction (`enqueue`) and, once that commits,
wakes the federation process (a channel-layer group send to `federation.wake`). A chat state (typing) is
ephemeral: never a row, it goes straight to the federation process, which sends it if it can and otherwise
forgets it, as a lost typing notification harms nobody. The process also polls the table every few seconds, so a lost
wake-up delays a stanza, never drops it. What happens next (in order per domain, backoff, retention) is
`federation.sender`'s job; what came back (a receipt, an error) is recorded here by `mark_delivered()` and
`mark_failed()`, and `hops()` tells the UI where each copy of a message is (chat registers with `watch_hops`
to hear when one moves).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import models, transaction
from django.utils import timezone
from lxml import etree

from federation import stanzas
from federation.models import BlockedAddress, OutboxItem, RemoteDomain
from federation.serialize import as_server_stanza, to_xml
from federation.stream import domain_of as stream_domain_of

logger = logging.getLogger("federation")

WAKE_GROUP = "federation.wake"
WAKE_EVENT = {"type": "federation.wake"}
EPHEMERAL_EVENT = "federation.ephemeral"
RECEIPTS_NS = "urn:xmpp:receipts"
CHATSTATES_NS = "http://jabber.org/protocol/chatstates"
SID_NS = "urn:xmpp:sid:0"
FINISHED = (OutboxItem.State.DELIVERED, OutboxItem.State.FAILED)


class OutboxError(ValueError):
    """A stanza that cannot go in the outbox; the message says why."""


def bare(jid: str) -> str:
    """The bare JID (no resource), lower-cased domain part as peers compare it."""
    jid = jid.split("/", 1)[0]
    local, at, domain = jid.rpartition("@")
    return f"{local}{at}{domain.lower()}"


def _kind(stanza: etree._Element) -> str:
    name = etree.QName(stanza).localname
    if name == "presence":
        return OutboxItem.Kind.PRESENCE
    if name != "message":
        return OutboxItem.Kind.OTHER
    namespaces = {etree.QName(child).namespace for child in stanza if isinstance(child.tag, str)}
    if any(etree.QName(child).localname == "body" for child in stanza if isinstance(child.tag, str)):
        return OutboxItem.Kind.MESSAGE
    if RECEIPTS_NS in namespaces:
        return OutboxItem.Kind.RECEIPT
    if CHATSTATES_NS in namespaces:
        return OutboxItem.Kind.CHATSTATE
    return OutboxItem.Kind.MESSAGE


def _stanza_id(stanza: etree._Element) -> str:
    """The id a receipt or an error will quote: XEP-0184 §4 answers with the stanza's id; origin-id if no id."""
    if stanza.get("id"):
        return stanza.get("id", "")
    origin = stanza.find(f"{{{SID_NS}}}origin-id")
    return origin.get("id", "") if origin is not None else ""


def enqueue(stanza: etree._Element, *, message: models.Model | None = None, recipient: str | None = None) -> OutboxItem:
    """Store `stanza` for its recipient's server inside the caller's transaction; wake the sender on commit.

    The destination domain is the domain of the stanza's `to`. `message` links the row to the chat message it
    carries (for the hop shown to the sender); `recipient` is the remote JID (default: the stanza's bare `to`).
    Raises OutboxError for a stanza without a usable `to`.
    """
    to = stanza.get("to") or ""
    domain = stream_domain_of(to)
    if domain is None:
        raise OutboxError(f"a stanza for another server needs a valid 'to' address, not {to!r}")
    try:
        # Stored as it goes on the wire (jabber:server, our serialiser), so operators can read it in the admin.
        text = to_xml(as_server_stanza(stanza)).decode()
    except ValueError as err:
        raise OutboxError(str(err)) from None
    address = bare(recipient or to)
    with transaction.atomic():
        remote, _ = RemoteDomain.objects.get_or_create(domain=domain)
        item = OutboxItem.objects.create(
            domain=remote,
            stanza=text,
            stanza_id=_stanza_id(stanza)[:255],
            kind=_kind(stanza),
            message=message,
            recipient=address,
        )
        if address_blocked(address):
            # Stored, so the sender sees why, but never sent.
            item.state = OutboxItem.State.FAILED
            item.error = f"{address} is blocked by this server's operator"
            item.save(update_fields=["state", "error"])
            return item
    transaction.on_commit(wake)
    return item


def address_blocked(jid: str) -> bool:
    """True if this server's operator blocked the remote address `jid` for everyone here (nothing goes to it,
    nothing from it is accepted)."""
    return BlockedAddress.objects.filter(jid=jid.lower()).exists()


# --- What accounts and chat send, in their words ------------------------------------------------------------


def deliver_message(message: models.Model, recipients: Iterable[str], files: Sequence[tuple[str, str]] = ()) -> None:
    """Queue a stored chat message for each of these remote bare JIDs, linked to it (its sender sees the hop).
    Our stanza id and XEP-0359 origin-id are the message's client_id: the peer de-duplicates a re-delivery by
    it, and its receipt (XEP-0184) quotes it back. `files`: (url, name) of each attached file, as the
    recipient's client may open it (chat.files_public.shared_files: signed links that need no session), sent
    as XEP-0066 out-of-band links."""
    for jid in recipients:
        stanza = stanzas.chat_message(message.sender_jid, jid, message.body, str(message.client_id), files)
        enqueue(stanza, message=message, recipient=jid)


def presence(from_jid: str, to_jid: str, show: str, status: str = "") -> None:
    """Queue `from_jid`'s presence (imweb's show values: offline and invisible go as unavailable)."""
    enqueue(stanzas.presence_for_show(from_jid, to_jid, show, status), recipient=to_jid)


def probe(from_jid: str, to_jid: str) -> None:
    """Queue a presence probe (RFC 6121 §4.3): what is `to_jid`'s presence now?"""
    enqueue(stanzas.presence(from_jid, to_jid, type_="probe"), recipient=to_jid)


def subscription(from_jid: str, to_jid: str, presence_type: str) -> None:
    """Queue a subscription presence (subscribe, subscribed, unsubscribe, unsubscribed) or `unavailable`."""
    enqueue(stanzas.presence(from_jid, to_jid, type_=presence_type), recipient=to_jid)


def receipt(from_jid: str, to_jid: str, received_id: str) -> None:
    """Queue a XEP-0184 receipt for the message `received_id` that `to_jid` sent us."""
    enqueue(stanzas.receipt(from_jid, to_jid, received_id), recipient=to_jid)


def chat_state(from_jid: str, to_jid: str, state: str) -> None:
    """Tell `to_jid` that `from_jid` is composing (or paused, ...): XEP-0085, sent after the current transaction
    commits if the federation process can, never stored."""
    stanza = stanzas.chat_state(from_jid, to_jid, state)
    domain = stream_domain_of(to_jid)
    if domain is None:
        raise OutboxError(f"a stanza for another server needs a valid 'to' address, not {to_jid!r}")
    event = {"type": EPHEMERAL_EVENT, "domain": domain, "stanza": to_xml(as_server_stanza(stanza)).decode()}
    transaction.on_commit(lambda: publish(event))


# --- Storing and waking ------------------------------------------------------------------------------------


def wake() -> None:
    """Tell the federation process there is something to send (a hint only: it polls anyway)."""
    publish(dict(WAKE_EVENT))


def publish(event: dict[str, str]) -> None:
    """Send `event` to the federation process's `federation.wake` group; a lost event only delays work."""
    try:
        async_to_sync(get_channel_layer().group_send)(WAKE_GROUP, event)
    except Exception:
        logger.exception("could not reach the federation process with %s", event.get("type"))


# Who is told when remote hops of messages change: chat registers its delivery step here (chat.apps), so the
# outbox tells the senders' screens without importing chat (chat uses the outbox, never the other way round).
_hop_watchers: list[Callable[[list[int]], None]] = []


def watch_hops(watcher: Callable[[list[int]], None]) -> None:
    """Call `watcher(message_ids)` after each commit that changed remote hops of those messages."""
    if watcher not in _hop_watchers:
        _hop_watchers.append(watcher)


def notify_senders(items: Iterable[OutboxItem]) -> None:
    """After the current transaction commits, tell the watchers which messages' remote hops changed."""
    ids = sorted({item.message_id for item in items if item.message_id is not None})
    if not ids:
        return

    def tell() -> None:
        for watcher in _hop_watchers:
            try:
                watcher(ids)
            except Exception:  # committed; the hop shows on the next render or re-sync
                logger.exception("could not tell senders about %d messages' hops", len(ids))

    transaction.on_commit(tell)


def mark_delivered(recipient: str, stanza_id: str) -> int:
    """A receipt (XEP-0184 `<received id=.../>`) came back from `recipient`: its copy is delivered.

    Returns how many rows changed (0 for a receipt we do not know, which is harmless and ignored).
    """
    if not stanza_id:
        return 0
    with transaction.atomic():
        items = list(
            OutboxItem.objects.select_related("message")
            .select_for_update()
            .filter(recipient=bare(recipient), stanza_id=stanza_id)
            .exclude(state__in=FINISHED)
        )
        now = timezone.now()
        for item in items:
            item.state = OutboxItem.State.DELIVERED
            item.delivered_at = now
            item.sent_at = item.sent_at or now
            item.save(update_fields=["state", "delivered_at", "sent_at"])
        notify_senders(items)
    return len(items)


def mark_failed(recipient: str, stanza_id: str, reason: str) -> int:
    """The remote server answered one of our stanzas with an error: its copy failed, `reason` in plain words."""
    if not stanza_id:
        return 0
    with transaction.atomic():
        items = list(
            OutboxItem.objects.select_related("message")
            .select_for_update()
            .filter(recipient=bare(recipient), stanza_id=stanza_id)
            .exclude(state=OutboxItem.State.FAILED)
        )
        for item in items:
            item.state = OutboxItem.State.FAILED
            item.error = reason
            item.save(update_fields=["state", "error"])
        notify_senders(items)
    return len(items)


@dataclass(frozen=True)
class Hop:
    """Where one remote copy of a message is: for the sender's eyes."""

    recipient: str
    state: str
    domain: str
    error: str

    @property
    def text(self) -> str:
        if self.state == OutboxItem.State.DELIVERED:
            return "delivered"
        if self.state == OutboxItem.State.SENT:
            return f"handed to {self.domain}"
        if self.state == OutboxItem.State.FAILED:
            return f"failed: {self.error}" if self.error else "failed"
        return "queued"


def hops(message_ids: Iterable[int]) -> dict[int, list[Hop]]:
    """The remote hops of these messages, one per remote recipient, oldest row first. One query."""
    ids = list(message_ids)
    found: dict[int, list[Hop]] = {pk: [] for pk in ids}
    if not ids:
        return found
    rows = (
        OutboxItem.objects.filter(message_id__in=ids)
        .order_by("id")
        .values_list("message_id", "recipient", "state", "domain__domain", "error")
    )
    for message_id, recipient, state, domain, error in rows:
        found[message_id].append(Hop(recipient, state, domain, error))
    return found


def queued_hop(recipient: str) -> Hop:
    """The hop of a copy just queued for `recipient` (what `hops` reads right after the commit)."""
    return Hop(bare(recipient), OutboxItem.State.QUEUED, bare(recipient).rpartition("@")[2], "")
