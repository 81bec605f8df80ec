"""The outbox: the one interface `accounts` and `chat` use to send a stanza to another XMPP server.

`enqueue()` writes a row in the caller's transaction and, once that commits, wakes the federation process (a
channel-layer group send to `federation.wake`). The process also polls the table every few seconds, so a lost
wake-up delays a stanza, never drops it. What happens next (in order per domain, backoff, retention) is
`federation.sender`'s job; what came back (a receipt, an error) is recorded here by `mark_delivered()` and
`mark_failed()`, and `hop()` tells the UI where each copy of a message is.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone
from lxml import etree

from accounts.events import notify_users
from federation.models import OutboxItem, RemoteDomain
from federation.serialize import to_xml
from federation.service import as_server_stanza
from federation.stream import domain_of as stream_domain_of

if TYPE_CHECKING:
    from chat.models import Message

logger = logging.getLogger("federation")

WAKE_GROUP = "federation.wake"
WAKE_EVENT = {"type": "federation.wake"}
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


def enqueue(stanza: etree._Element, *, message: Message | None = None, recipient: str | None = None) -> OutboxItem:
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
    with transaction.atomic():
        remote, _ = RemoteDomain.objects.get_or_create(domain=domain)
        item = OutboxItem.objects.create(
            domain=remote,
            stanza=text,
            stanza_id=_stanza_id(stanza)[:255],
            kind=_kind(stanza),
            message=message,
            recipient=bare(recipient or to),
        )
    transaction.on_commit(wake)
    return item


def wake() -> None:
    """Tell the federation process there is something to send (a hint only: it polls anyway)."""
    publish(dict(WAKE_EVENT))


def publish(event: dict[str, str]) -> None:
    """Send `event` to the federation process's `federation.wake` group; a lost event only delays work."""
    try:
        async_to_sync(get_channel_layer().group_send)(WAKE_GROUP, event)
    except Exception:
        logger.exception("could not reach the federation process with %s", event.get("type"))


def notify_senders(items: Iterable[OutboxItem]) -> None:
    """Tell the senders' screens that a message's remote hop changed.

    A copy that became `delivered` is a delivery receipt like a local one: `receipt.delivered` (every socket
    kind already re-renders or forwards it). Other hop changes (handed over, failed) are `message.status`,
    published only once the sockets in the user's group handle it: Channels closes a socket that gets an event
    it has no handler for. Until then those hops show on the next render or re-sync (the database is the truth).
    """
    status_supported = _status_event_supported()
    for item in items:
        message = item.message
        if message is None or message.sender_id is None:
            continue
        data = {"conversation": message.conversation_id, "seq": message.seq}
        if item.state == OutboxItem.State.DELIVERED:
            notify_users([message.sender_id], "receipt.delivered", jid=item.recipient, **data)
        elif status_supported:
            notify_users([message.sender_id], "message.status", **data)


@functools.cache
def _status_event_supported() -> bool:
    from chat.api.stream import ApiStream
    from chat.consumers import UserSocket

    return all(hasattr(socket, "message_status") for socket in (UserSocket, ApiStream))


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


def hop(message: Message) -> list[Hop]:
    """The remote hops of `message`, one per remote recipient, oldest row first."""
    rows = OutboxItem.objects.filter(message=message).values_list("recipient", "state", "domain__domain", "error")
    return [Hop(recipient, state, domain, error) for recipient, state, domain, error in rows]
