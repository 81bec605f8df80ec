"""What every chat action shares: event names, reading ids, the membership check, and text rules.

Authorization lives in `membership()`: only a current participant may read or write a conversation, and
whoever is not one gets the same `NotFound` as for an id that does not exist, whatever the id looks like.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings

from accounts.jid import BareJid
from accounts.models import User
from chat.errors import InvalidArgument, InvalidMessage, MessageTooLong, NotFound, RemoteNotSupported
from chat.models import Conversation, Message, Participant
from federation import outbox, stanzas

# Events published (on commit) to the users' groups; each carries `conversation` (an id) and, where it is
# about one message, `seq`. Names map to consumer methods (`message.new` → `message_new`).
MESSAGE_NEW = "message.new"  # a new message a participant should be told about (sound, badge)
CONVERSATION_REQUEST = "conversation.request"  # a new message in a conversation waiting in their Requests: quiet
MESSAGE_EDITED = "message.edited"
MESSAGE_DELETED = "message.deleted"
MESSAGE_REACTIONS = "message.reactions"
RECEIPT_READ = "receipt.read"  # also carries `jid`: whose marker moved
RECEIPT_DELIVERED = "receipt.delivered"
CONVERSATION_UPDATED = "conversation.updated"  # created, joined, renamed, members changed, accepted
CONVERSATION_REMOVED = "conversation.removed"  # the user left or was removed: drop it from their screens

DEFAULT_MESSAGE_MAX_CHARS = 10_000
# Ids and sequence numbers are PostgreSQL bigints; anything larger cannot exist.
MAX_BIGINT = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")
# Characters XML 1.0 cannot carry (C0 controls other than tab and newlines, lone surrogates, U+FFFE/U+FFFF):
# refusing them here keeps every stored message deliverable over XMPP, and PostgreSQL refuses NUL anyway.
_UNSENDABLE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def message_max_chars() -> int:
    return getattr(settings, "IMWEB_MESSAGE_MAX_CHARS", DEFAULT_MESSAGE_MAX_CHARS)


def conversation_pk(value: object) -> int:
    """The conversation id in `value` (an int, or a string of ASCII digits), else NotFound.

    Ids come from URLs and frames, so anything is possible; every malformed shape gets the same NotFound as a
    well-formed id of a conversation the user is not in.
    """
    if isinstance(value, bool):
        raise NotFound
    if isinstance(value, int):
        pk = value
    elif isinstance(value, str) and _ASCII_DIGITS.fullmatch(value):
        pk = int(value)
    else:
        raise NotFound
    if not 1 <= pk <= MAX_BIGINT:
        raise NotFound
    return pk


def parse_seq(value: object, name: str = "seq") -> int:
    """A sequence number (≥ 0) given as an int or a string of ASCII digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        seq = value
    elif isinstance(value, str) and _ASCII_DIGITS.fullmatch(value):
        seq = int(value)
    else:
        raise InvalidArgument(f"{name} must be a whole number, 0 or more.")
    if not 0 <= seq <= MAX_BIGINT:
        raise InvalidArgument(f"{name} must be a whole number, 0 or more.")
    return seq


def membership(user: User, conversation_id: object) -> Participant:
    """The user's current participation (with its conversation), or NotFound. One query."""
    pk = conversation_pk(conversation_id)
    if not getattr(user, "is_authenticated", False):
        raise NotFound
    participant = (
        Participant.objects.select_related("conversation")
        .filter(conversation_id=pk, user=user, left_at__isnull=True)
        .first()
    )
    if participant is None:
        raise NotFound
    return participant


def current_members(conversation: Conversation) -> list[Participant]:
    return list(Participant.objects.filter(conversation=conversation, left_at__isnull=True))


def local_user_ids(participants: Iterable[Participant]) -> list[int]:
    return [p.user_id for p in participants if p.user_id is not None]


def clean_body(body: object) -> str:
    """A message body as stored: newlines normalised, trailing whitespace stripped, within the limit."""
    if not isinstance(body, str):
        raise InvalidMessage("A message must be text.")
    text = body.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    if not text:
        raise InvalidMessage("A message cannot be empty.")
    limit = message_max_chars()
    if len(text) > limit:
        raise MessageTooLong(len(text), limit)
    if _UNSENDABLE.search(text):
        raise InvalidMessage("This message contains invisible control characters that cannot be sent.")
    return text


def clean_line(value: object, label: str, limit: int, *, required: bool) -> str:
    """A one-line text field (room name, topic): stripped, within `limit`, no control characters."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{label} must be text.")
    text = value.strip()
    if required and not text:
        raise InvalidArgument(f"{label} cannot be empty.")
    if len(text) > limit:
        raise InvalidArgument(f"{label} can be at most {limit} characters long (this one has {len(text)}).")
    if any(ch in "\n\r\t" for ch in text) or _UNSENDABLE.search(text):
        raise InvalidArgument(f"{label} must be one line without control characters.")
    return text


def refuse_remote(jid: BareJid) -> None:
    """Rooms are local for now: a member on another server would need XEP-0045 (multi-user chat) federation,
    which this server does not speak. Direct conversations with remote people go through `remote_delivery`."""
    if not jid.is_local:
        raise RemoteNotSupported(jid.domain)


def remote_delivery(message: Message, participants: list[Participant]) -> None:
    """The one place a stored message leaves for other servers: one outbox row per remote participant, written
    in the sender's transaction (DESIGN.md, "The flow of a message"), linked to the message so its sender sees
    the hop. Our stanza id and XEP-0359 origin-id are the message's client_id: the peer de-duplicates a
    re-delivery by it, and its receipt (XEP-0184) quotes it back. Messages that came from another server are
    not forwarded anywhere (only direct conversations have remote members)."""
    if message.sender_id is None:
        return
    for participant in participants:
        if participant.user_id is None and participant.jid != message.sender_jid:
            stanza = stanzas.chat_message(message.sender_jid, participant.jid, message.body, str(message.client_id))
            outbox.enqueue(stanza, message=message, recipient=participant.jid)
