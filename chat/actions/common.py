"""What every chat action shares: the membership check and reading ids (from chat.access), text rules, and the
one place a stored message leaves for other servers."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings

from accounts.jid import BareJid
from chat import files_public
from chat.access import MAX_BIGINT, conversation_pk, membership, parse_seq
from chat.errors import InvalidArgument, InvalidMessage, MessageTooLong, RemoteNotSupported
from chat.models import Conversation, Message, Participant
from federation import outbox

__all__ = ["MAX_BIGINT", "conversation_pk", "membership", "parse_seq"]

# Characters XML 1.0 cannot carry (C0 controls other than tab and newlines, lone surrogates, U+FFFE/U+FFFF):
# refusing them here keeps every stored message deliverable over XMPP, and PostgreSQL refuses NUL anyway.
_UNSENDABLE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def message_max_chars() -> int:
    return settings.IMWEB_MESSAGE_MAX_CHARS


def current_members(conversation: Conversation) -> list[Participant]:
    return list(Participant.objects.filter(conversation=conversation, left_at__isnull=True))


def local_user_ids(participants: Iterable[Participant]) -> list[int]:
    return [p.user_id for p in participants if p.user_id is not None]


def clean_body(body: object, *, allow_empty: bool = False) -> str:
    """A message body as stored: newlines normalised, trailing whitespace stripped, within the limit. Empty only
    when `allow_empty` (a message that carries files)."""
    if allow_empty and body is None:
        body = ""
    if not isinstance(body, str):
        raise InvalidMessage("A message must be text.")
    text = body.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    if not text and not allow_empty:
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
    in the sender's transaction, linked to the message so its sender sees the hop. Messages that came from
    another server are not forwarded anywhere (only direct conversations have remote members)."""
    if message.sender_id is None:
        return
    remote = [p.jid for p in participants if p.user_id is None and p.jid != message.sender_jid]
    if remote:
        # A file goes to another server as a link (XEP-0066) that opens without a session (chat.files_public).
        outbox.deliver_message(message, remote, files_public.shared_files(message) if message.files else ())
