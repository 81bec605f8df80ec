"""Conversation data: conversations (1:1 and rooms), who is in them, their messages and reactions.

Every participant and every sender is a bare JID, so people on other XMPP servers fit in the same rows as
local users (their `user`/`sender` is null); only delivery differs. Rows change only through `chat.actions`.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.utils import timezone

# RFC 7622 allows 1023 bytes per part; accounts.RosterItem uses the same bound for a bare JID.
JID_MAX_LENGTH = 2047
ROOM_NAME_MAX = 64
TOPIC_MAX = 280
EMOJI_MAX_LENGTH = 64


class Conversation(models.Model):
    """A 1:1 conversation or a room, with its own message sequence.

    `last_seq` is the sequence number of the newest message: each send increments it in the same transaction
    as the insert, so a conversation's messages are numbered 1, 2, 3, ... with no gap, and a client that
    missed pushes asks for "everything after the seq I have".
    """

    class Kind(models.TextChoices):
        DIRECT = "direct", "Direct"
        ROOM = "room", "Room"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=ROOM_NAME_MAX, blank=True)
    topic = models.CharField(max_length=TOPIC_MAX, blank=True)
    # Direct conversations only: the two bare JIDs, sorted, joined by a space (which no JID contains), so
    # there is exactly one conversation per pair. Null for rooms (NULLs never collide in a unique index).
    direct_key = models.CharField(max_length=2 * JID_MAX_LENGTH + 1, null=True, blank=True, unique=True)
    last_seq = models.PositiveBigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="room", direct_key__isnull=True) | models.Q(kind="direct"),
                name="chat_conversation_room_has_no_direct_key",
            )
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.ROOM:
            return self.name or f"room {self.pk}"
        return f"direct {self.direct_key or self.pk}"


class Participant(models.Model):
    """Someone in a conversation, with their read and delivery markers (sequence numbers).

    `left_at` is set when they leave or are removed; the row stays so re-inviting keeps one row per JID.
    `is_request`: the conversation was started by someone not in their contacts, so it waits in their Requests
    folder, without notifications, until they accept it or reply.
    """

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    # No separate index on conversation: the unique (conversation, jid) index starts with it.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="participants", db_index=False
    )
    jid = models.CharField(max_length=JID_MAX_LENGTH)
    # Null for people on other servers. A deleted account takes its participations with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="participations"
    )
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)
    left_at = models.DateTimeField(null=True, blank=True)
    last_read_seq = models.PositiveBigIntegerField(default=0)
    last_delivered_seq = models.PositiveBigIntegerField(default=0)
    # The newest seq a missed-message email has told them about (chat.actions.missed_email): never twice.
    emailed_seq = models.PositiveBigIntegerField(default=0)
    is_request = models.BooleanField(default=False)
    # The person's own settings here, never shown to anyone else (chat.actions.conversations): muted (no
    # notification, sound or email; its unread count leaves the totals), pinned (listed first) and marked unread
    # (the read marker when they marked it: the row shows as unread until they open the conversation again or
    # the marker moves past it).
    muted = models.BooleanField(default=False)
    pinned_at = models.DateTimeField(null=True, blank=True)
    unread_mark_seq = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint("conversation", "jid", name="chat_participant_unique")]

    def __str__(self) -> str:
        return f"{self.jid} in {self.conversation_id}"

    @property
    def is_current(self) -> bool:
        return self.left_at is None


class Message(models.Model):
    """One message: numbered by `seq` within its conversation, deduplicated by (sender_jid, client_id).

    A deleted message stays as a tombstone (empty body, `deleted_at` set) so sequence numbers never gap and
    replies to it still point somewhere.

    A room event ("alice invited bob", `kind` EVENT) is a row of the same numbered history, so every tab, the
    API and catch-up by seq see it where it happened: `sender` is who acted, `body` the line as plain text
    (names as they were then), `event` what happened for programs ({"type": ..., and "jid" or "value"}).
    Events are never unread, emailed, searched, federated, edited, deleted or reacted to (chat.actions.conversations).
    """

    class Kind(models.TextChoices):
        MESSAGE = "message", "Message"
        EVENT = "event", "Room event"

    # No separate index on conversation: the unique (conversation, seq) index starts with it, and it is the
    # index every range read ("seq > n", "seq < n") uses.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False)
    seq = models.PositiveBigIntegerField()
    sender_jid = models.CharField(max_length=JID_MAX_LENGTH)
    # Null for people on other servers, and once the sender's account is deleted (sender_jid remains).
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Chosen by the sending client: a retried send (after a dropped connection) is stored once.
    client_id = models.UUIDField()
    body = models.TextField(blank=True)
    # Set by the send action to the same instant it stores as the conversation's last_message_at.
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # A tombstone left by an operator (imweb.dashboard.moderation.remove_message), not by the sender.
    removed_by_operator = models.BooleanField(default=False)
    reply_to = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.MESSAGE)
    event = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("conversation", "seq", name="chat_message_seq_unique"),
            models.UniqueConstraint("sender_jid", "client_id", name="chat_message_client_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq} from {self.sender_jid}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def is_event(self) -> bool:
        return self.kind == self.Kind.EVENT

    @property
    def files(self) -> list[Attachment]:
        """Its attachments in the order they were uploaded, from what was prefetched with it when it was (the
        pages and the delivery step prefetch them: chat.queries); none once deleted."""
        if self.is_deleted or self.is_event:
            return []
        prefetched = getattr(self, "_prefetched_objects_cache", {}).get("attachments")
        rows = prefetched if prefetched is not None else self.attachments.all()
        return sorted(rows, key=lambda f: f.pk or 0)


class Reaction(models.Model):
    """One person's emoji (or short :name:) on a message; a person may use several emoji on one message."""

    # No separate index on message: the unique (message, jid, emoji) index starts with it.
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions", db_index=False)
    jid = models.CharField(max_length=JID_MAX_LENGTH)
    emoji = models.CharField(max_length=EMOJI_MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint("message", "jid", "emoji", name="chat_reaction_unique")]

    def __str__(self) -> str:
        return f"{self.jid} {self.emoji} on {self.message_id}"


class MissedEmailCheck(models.Model):
    """A missed-message email may be due for this person at `due_at` (chat.actions.missed_email); null when
    nothing is waiting. Kept in the database, written with the message that makes it due, so a restart or a lost
    Valkey delays the email (until the next sweep) but never loses it. `version` moves on with every message,
    so a sweep that read the row before a new message came cannot clear it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    due_at = models.DateTimeField(null=True, db_index=True)
    version = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"missed-message check for {self.user_id} at {self.due_at}"


def attachment_token() -> str:
    """The unguessable name of an attachment in every URL (no sequential ids leave the server)."""
    return secrets.token_urlsafe(24)


def attachments_storage() -> Storage:
    """Where attachment files live: Django's storage named "attachments" (imweb.settings: the local file system
    under IMWEB_VAR_DIR by default, an S3-compatible store when configured)."""
    return storages["attachments"]


def attachment_path(instance: Attachment, filename: str) -> str:
    # The stored name never comes from the uploader: the token (and the original name is a field).
    return f"files/{instance.token[:2]}/{instance.token}"


def thumbnail_path(instance: Attachment, filename: str) -> str:
    return f"thumbs/{instance.token[:2]}/{instance.token}.webp"


class Attachment(models.Model):
    """A file shared in a conversation: uploaded by a local person (then attached to the message they send), or
    shared from another server by link (XEP-0066; `remote_url` set, `file` empty until someone opens it).

    Until its message is sent (`message` null) only the uploader can see it; after that, the participants of the
    message's conversation. It goes with its message (a deletion removes the file) and with its uploader's
    account; the files in storage go with the row (chat.signals)."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"  # a raster image checked by Pillow: shown as a thumbnail
        FILE = "file", "File"  # anything else allowed: a card with name, type and size

    token = models.CharField(max_length=64, unique=True, default=attachment_token)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments"
    )
    message = models.ForeignKey(Message, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.FILE)
    name = models.CharField(max_length=255)  # as the uploader named it, shown and offered for download
    content_type = models.CharField(max_length=100)  # found from the content, never from the name
    size = models.PositiveBigIntegerField(default=0)  # bytes; 0 for a remote file not fetched yet
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(storage=attachments_storage, upload_to=attachment_path, max_length=255, blank=True)
    thumbnail = models.FileField(storage=attachments_storage, upload_to=thumbnail_path, max_length=255, blank=True)
    remote_url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.token[:6]}…)"

    @property
    def is_image(self) -> bool:
        return self.kind == self.Kind.IMAGE

    @property
    def is_remote(self) -> bool:
        return bool(self.remote_url)

    @property
    def url(self) -> str:
        """Where participants open it (chat.files.file_url)."""
        from chat.files import file_url  # chat.files builds on these models

        return file_url(self)

    @property
    def thumbnail_url(self) -> str:
        return f"/files/{self.token}/thumb" if self.thumbnail else ""

    @property
    def size_label(self) -> str:
        from chat.files import size_label

        return size_label(self.size) if self.size else ""

    @property
    def type_label(self) -> str:
        """What kind of file it is, for a person ("PDF document", "JPEG image"); a remote file: by its name."""
        from chat.files import type_label

        label = type_label(self.content_type) if self.content_type else "File"
        extension = self.name.rpartition(".")[2] if "." in self.name else ""
        if label == "File" and extension and len(extension) <= 5:
            return f"{extension.upper()} file"
        return label

    @property
    def host(self) -> str:
        """The server a remote file is on (shown on its card)."""
        return urlsplit(self.remote_url).hostname or "" if self.remote_url else ""
