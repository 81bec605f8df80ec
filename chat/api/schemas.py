"""What the API reads and writes: request bodies, response shapes (they become the OpenAPI document), and the
functions that turn stored rows into them. The stream sends the same shapes, so a bot parses one format."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Literal

from ninja import Field, Schema
from pydantic import StrictBool, StrictInt, StrictStr

from accounts.actions.presence import Presence
from accounts.models import ApiToken, User
from accounts.roster import ContactRow, RequestRow
from chat.models import Message
from chat.queries import ConversationSummary, reactions_of

PREVIEW_CHARS = 200


# --- Errors -----------------------------------------------------------------------------------------------


class ErrorDetail(Schema):
    code: str = Field(description="Stable, machine-readable: not_found, slow_down, invalid_message, ...")
    message: str = Field(description="A sentence for people, saying what to fix.")
    details: object | None = None


class ErrorOut(Schema):
    error: ErrorDetail


# --- Tokens -----------------------------------------------------------------------------------------------


class TokenIn(Schema):
    username: str = Field(description="Username or email address.", max_length=254)
    password: str = Field(max_length=4096)
    name: str = Field("", description="A label for the token, e.g. the bot's name.", max_length=64)


class TokenOut(Schema):
    id: int
    name: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    created_at: datetime
    last_used_at: datetime | None
    current: bool = Field(description="The token this request was made with.")


class IssuedTokenOut(Schema):
    token: str = Field(description="Send it as `Authorization: Bearer <token>`. Shown only this once.")
    id: int
    name: str
    created_at: datetime


def token_out(row: ApiToken, current: ApiToken | None) -> TokenOut:
    return TokenOut(
        id=row.pk,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        current=current is not None and row.pk == current.pk,
    )


# --- People, contacts, presence ---------------------------------------------------------------------------


class PresenceOut(Schema):
    show: str = Field(description="available, away, xa, dnd or offline")
    status: str
    last_seen: datetime | None


class MeOut(Schema):
    jid: str
    username: str
    display_name: str
    status_message: str
    chosen_show: str = Field(description="The state the user chose (may be invisible).")
    presence: PresenceOut = Field(description="What the user's contacts see.")


class PresenceIn(Schema):
    show: Literal["available", "away", "xa", "dnd", "invisible"]
    status: str | None = Field(None, description="Status message; omitted keeps the current one.", max_length=1000)


class ContactOut(Schema):
    jid: str
    name: str
    subscription: str = Field(description="RFC 6121: none, to (I see them), from (they see me), both.")
    pending_out: bool = Field(description="I asked them and wait for their answer.")
    groups: list[str]
    presence: PresenceOut | None = Field(description="Null unless they share presence with me.")


class RequestOut(Schema):
    jid: str
    name: str
    message: str
    requested_at: datetime | None


class ContactsOut(Schema):
    contacts: list[ContactOut]
    requests: list[RequestOut] = Field(description="People asking to be my contacts.")
    blocked: list[str] = Field(description="Blocked addresses and servers.")


class ContactIn(Schema):
    jid: str = Field(max_length=3071)
    message: str = Field("", description="A note shown with the request.", max_length=1000)


def presence_out(presence: Presence | None) -> PresenceOut | None:
    if presence is None:
        return None
    return PresenceOut(show=presence.show, status=presence.status, last_seen=presence.last_seen)


def me_out(user: User, presence: Presence) -> MeOut:
    return MeOut(
        jid=user.jid,
        username=user.username,
        display_name=user.display_name,
        status_message=user.status_message,
        chosen_show=user.presence_show,
        presence=presence_out(presence),
    )


def contact_out(row: ContactRow) -> ContactOut:
    return ContactOut(
        jid=row.jid,
        name=row.name,
        subscription=row.item.subscription,
        pending_out=row.pending_out,
        groups=row.group_names,
        presence=presence_out(row.presence),
    )


def request_out(row: RequestRow) -> RequestOut:
    return RequestOut(jid=row.jid, name=row.name, message=row.message, requested_at=row.requested_at)


# --- Messages and conversations ---------------------------------------------------------------------------


class ReactionOut(Schema):
    emoji: str
    count: int
    jids: list[str]


class AttachmentOut(Schema):
    name: str
    kind: Literal["image", "file"] = Field(
        description="`image`: a picture (a thumbnail may follow). `file`: any other."
    )
    content_type: str = Field(description="Found from the content; empty for a file on another server not opened yet.")
    size: int = Field(description="Bytes; 0 for a file on another server not opened yet.")
    url: str = Field(description="Where the message's participants open it (with their session or token).")
    thumbnail_url: str = Field(description="A small WebP of a picture, once made; else empty.")
    remote: bool = Field(description="Shared by link from another server: fetched when first opened.")


class UploadOut(Schema):
    token: str = Field(description="Send it in `attachments` of POST /messages (unsent uploads go after a day).")
    name: str
    size: int
    content_type: str = Field(description="Found from the content, never from the name.")
    kind: Literal["image", "file"]
    url: str = Field(description="GET /api/v1/files/{token} opens it with a token; this path, with a session.")


class MessageOut(Schema):
    conversation: int
    seq: int
    id: int
    kind: Literal["message", "event"] = Field(
        description="`message`: something someone wrote. `event`: a line of a room's history (someone created the"
        " room, invited, left, removed someone, renamed it, changed the topic): `sender` is who did it, `body` the"
        " line as plain text, `event` what happened. Events are numbered like messages but are never unread, and"
        " cannot be edited, deleted, reacted to or replied to."
    )
    event: dict[str, str] | None = Field(
        description="Events only: `type` (created, invited, left, removed, renamed, topic) and, as the type needs,"
        " `jid` (who was invited or removed), `value` (the new name or topic), `owner` (who became an owner when"
        " the last one left). Null for messages."
    )
    sender: str = Field(description="The sender's bare JID.")
    body: str = Field(description="Plain text; empty once deleted.")
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    removed_by_operator: bool = Field(description="Deleted by the server's operators, not by its sender.")
    reply_to: int | None = Field(description="The seq of the message this one answers.")
    reactions: list[ReactionOut]
    attachments: list[AttachmentOut] = Field(description="The files it carries, in the order they were uploaded.")
    client_id: uuid.UUID | None = Field(description="The id the sending client chose; only on one's own messages.")


class MessagesOut(Schema):
    messages: list[MessageOut]


class MessageIn(Schema):
    to: StrictInt | StrictStr = Field(description="A bare JID (user@domain) or a conversation id.")
    body: str
    client_id: uuid.UUID = Field(description="Chosen by the client; a retry with the same id is stored once.")
    reply_to: int | None = Field(None, description="The seq of a message in the same conversation.")
    attachments: list[str] = Field(
        default_factory=list,
        description="Tokens of your own uploads not sent yet (POST /files/, at most 10); `body` may then be empty.",
    )


class EditIn(Schema):
    body: str


class ReactionIn(Schema):
    emoji: str = Field(max_length=256)


class MarkerIn(Schema):
    seq: StrictInt | StrictStr = Field(description="Everything up to this seq.")


class MarkerOut(Schema):
    conversation: int
    seq: int = Field(description="The marker after the call (markers never move back).")


class PreviewOut(Schema):
    seq: int
    kind: Literal["message", "event"] = Field(description="As in a message: `event` for a line of a room's history.")
    sender: str
    body: str = Field(description=f"At most {PREVIEW_CHARS} characters.")
    created_at: datetime
    deleted: bool


class ConversationOut(Schema):
    id: int
    kind: Literal["direct", "room"]
    name: str = Field(description="The room's name, or the other person's name.")
    topic: str
    peer: str | None = Field(description="Direct conversations: the other side's JID.")
    role: str
    request: bool = Field(description="Waiting in my Requests: started by someone not in my contacts.")
    unread: int
    last_seq: int
    last_read_seq: int
    last_message: PreviewOut | None
    muted: bool = Field(description="I muted it: no notification and no missed-message email.")
    pinned: bool = Field(description="I pinned it: listed first.")
    marked_unread: bool = Field(description="I marked it as unread (until I open or read it).")


class ConversationSettingsIn(Schema):
    """My own settings for a conversation; each one left out stays as it is."""

    muted: StrictBool | None = None
    pinned: StrictBool | None = None
    marked_unread: StrictBool | None = Field(
        None, description="true: mark as unread; false: mark as read (everything in it counts as read)."
    )


def _reactions(message: Message) -> list[dict[str, object]]:
    by_emoji: dict[str, list[str]] = defaultdict(list)
    for reaction in sorted(reactions_of(message), key=lambda r: (r.created_at, r.pk)):
        by_emoji[reaction.emoji].append(reaction.jid)
    return [{"emoji": emoji, "count": len(jids), "jids": jids} for emoji, jids in by_emoji.items()]


def _iso(moment: datetime | None) -> str | None:
    """A timestamp as the API writes it everywhere (pydantic's JSON form: UTC as "Z")."""
    if moment is None:
        return None
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def message_json(message: Message, viewer_jid: str | None) -> dict[str, object]:
    """A message as `viewer_jid` sees it (the client id only on their own messages; None: nobody's own), in
    MessageOut's shape, ready for JSON. Built by hand: the delivery step makes one for every new message, and
    validating it through the schema cost as much as the rest of its JSON (the endpoints still validate)."""
    reply = message.reply_to
    return {
        "conversation": message.conversation_id,
        "seq": message.seq,
        "id": message.pk,
        "kind": message.kind,
        "event": message.event,
        "sender": message.sender_jid,
        "body": message.body,
        "created_at": _iso(message.created_at),
        "edited_at": _iso(message.edited_at),
        "deleted": message.is_deleted,
        "removed_by_operator": message.removed_by_operator,
        "reply_to": reply.seq if reply is not None else None,
        "reactions": _reactions(message),
        "attachments": [
            {
                "name": f.name,
                "kind": f.kind,
                "content_type": f.content_type,
                "size": f.size,
                "url": f.url,
                "thumbnail_url": f.thumbnail_url,
                "remote": f.is_remote,
            }
            for f in message.files
        ],
        "client_id": str(message.client_id) if message.sender_jid == viewer_jid else None,
    }


def message_out(message: Message, viewer_jid: str | None) -> MessageOut:
    """A message as `viewer_jid` sees it, as the endpoints answer it."""
    return MessageOut(**message_json(message, viewer_jid))


def conversation_out(summary: ConversationSummary) -> ConversationOut:
    conversation = summary.conversation
    last = summary.last_message
    preview = None
    if last is not None:
        preview = PreviewOut(
            seq=last.seq,
            kind=last.kind,
            sender=last.sender_jid,
            body=last.body[:PREVIEW_CHARS],
            created_at=last.created_at,
            deleted=last.is_deleted,
        )
    return ConversationOut(
        id=conversation.pk,
        kind=conversation.kind,
        name=summary.title,
        topic=conversation.topic,
        peer=summary.peer_jid or None,
        role=summary.participant.role,
        request=summary.is_request,
        unread=summary.unread,
        last_seq=conversation.last_seq,
        last_read_seq=summary.participant.last_read_seq,
        last_message=preview,
        muted=summary.muted,
        pinned=summary.pinned,
        marked_unread=summary.marked_unread,
    )
