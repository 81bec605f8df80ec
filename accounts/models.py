"""Account data: the user (whose username is the localpart of their XMPP address) and their profile fields."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

from accounts.validators import USERNAME_MAX_LENGTH, USERNAME_VALIDATORS


def avatar_path(instance: User, filename: str) -> str:
    # Uploaded avatars are re-encoded to PNG by accounts.forms; the name never comes from the uploader.
    return f"avatars/{instance.pk}.png"


class Show(models.TextChoices):
    """Presence states, most available first; `invisible` appears offline to everyone."""

    AVAILABLE = "available", "Available"
    DND = "dnd", "Do not disturb"
    AWAY = "away", "Away"
    XA = "xa", "Extended away"
    INVISIBLE = "invisible", "Appear offline"
    OFFLINE = "offline", "Offline"


# What a user can choose; "offline" is what others see when no session is live.
CHOOSABLE_SHOWS = [choice for choice in Show.choices if choice[0] != Show.OFFLINE]


class User(AbstractUser):
    username = models.CharField(
        "username",
        max_length=USERNAME_MAX_LENGTH,
        unique=True,
        validators=USERNAME_VALIDATORS,
        help_text="Lowercase letters, digits, '.', '_' and '-'. It becomes your address: username@domain.",
        error_messages={"unique": "That username is taken."},
    )
    display_name = models.CharField(max_length=64, blank=True)
    status_message = models.CharField("status message", max_length=140, blank=True)
    avatar = models.ImageField(upload_to=avatar_path, blank=True)
    # Bumped on every avatar change, so the avatar URL changes and browsers never show a cached old picture.
    avatar_version = models.PositiveIntegerField(default=0, editable=False)

    # Presence the user chose (RFC 6121 <show/>, plus "invisible"); each open tab may still be idle → away.
    presence_show = models.CharField(max_length=16, choices=CHOOSABLE_SHOWS, default=Show.AVAILABLE)
    last_seen = models.DateTimeField(null=True, blank=True)
    # Privacy
    show_last_seen = models.BooleanField("show my last-seen time to my contacts", default=True)
    directory_visible = models.BooleanField("let people on this server find me by name", default=True)
    idle_away_minutes = models.PositiveSmallIntegerField("go away after this many idle minutes", default=5)
    send_read_markers = models.BooleanField("tell people when I have read their messages", default=True)
    send_typing = models.BooleanField("show people when I am typing", default=True)
    # Notifications
    email_missed_messages = models.BooleanField("email me about messages I have not read", default=True)
    # Set by an operator (imweb.dashboard.moderation.suspend) together with is_active=False: the person cannot
    # sign in, and the sign-in page tells them this reason.
    suspended_at = models.DateTimeField(null=True, blank=True, editable=False)
    suspended_reason = models.CharField(max_length=500, blank=True, editable=False)

    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique")]

    def __str__(self) -> str:
        return self.username

    @property
    def jid(self) -> str:
        """The user's bare XMPP address: username@IMWEB_DOMAIN."""
        return f"{self.username}@{settings.IMWEB_DOMAIN}"

    @property
    def name(self) -> str:
        """What the UI calls this person: the display name, else the username."""
        return self.display_name or self.username

    @property
    def avatar_url(self) -> str:
        return f"{reverse('avatar', args=[self.username])}?v={self.avatar_version}" if self.avatar else ""

    @property
    def initials(self) -> str:
        return (self.name[:1] or "?").upper()


class Subscription(models.TextChoices):
    """RFC 6121 §2.1.2.5, from the roster owner's side: `to` = I see their presence, `from` = they see mine."""

    NONE = "none"
    TO = "to"
    FROM = "from"
    BOTH = "both"


class RosterGroup(models.Model):
    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="roster_groups")
    name = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint("owner", "name", name="accounts_rostergroup_unique")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RosterItem(models.Model):
    """One row per (owner, other JID): a contact in the list, a request waiting in Requests, or both.

    `listed`: shown in the owner's contact list (they added it, or accepted it).
    `ask_out`: the owner asked to see the other's presence and is waiting (RFC 6121 "pending out").
    `pending_in`: the other asked to see the owner's presence and waits for an answer ("pending in").
    """

    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="roster")
    jid = models.CharField(max_length=2047)
    name = models.CharField("nickname", max_length=64, blank=True)
    subscription = models.CharField(max_length=4, choices=Subscription.choices, default=Subscription.NONE)
    listed = models.BooleanField(default=False)
    ask_out = models.BooleanField(default=False)
    pending_in = models.BooleanField(default=False)
    request_message = models.CharField(max_length=280, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    groups = models.ManyToManyField(RosterGroup, blank=True, related_name="items")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint("owner", "jid", name="accounts_rosteritem_unique")]
        indexes = [models.Index(fields=["jid"])]

    def __str__(self) -> str:
        return f"{self.owner.username} → {self.jid} ({self.subscription})"

    @property
    def sees_presence(self) -> bool:
        return self.subscription in (Subscription.TO, Subscription.BOTH)

    @property
    def shares_presence(self) -> bool:
        return self.subscription in (Subscription.FROM, Subscription.BOTH)

    @property
    def domain(self) -> str:
        return self.jid.rpartition("@")[2]

    @property
    def is_remote(self) -> bool:
        return self.domain != settings.IMWEB_DOMAIN


class BlockedJid(models.Model):
    """XEP-0191: a bare JID (`bob@example.org`) or a whole domain (`example.org`) this user blocks."""

    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocked")
    jid = models.CharField(max_length=2047)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint("owner", "jid", name="accounts_blockedjid_unique")]
        ordering = ["jid"]

    def __str__(self) -> str:
        return f"{self.owner.username} blocks {self.jid}"


class PresenceSession(models.Model):
    """One connected tab or device. A user is online while they have a live session; rows whose heartbeat
    stopped (a crashed web process) are swept by a periodic task."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="presence_sessions")
    resource = models.CharField(max_length=64, unique=True)
    idle = models.BooleanField(default=False)
    connected_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user.username}/{self.resource}"


class ApiToken(models.Model):
    """A bearer token for the JSON API (`Authorization: Bearer <token>`).

    Only the SHA-256 of the token is stored: the token is shown once, when it is issued, and a copy of the
    database lets nobody in. A token stops working when it is revoked or its user is deactivated or deleted.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=64, blank=True)
    # Hex SHA-256 of the whole token; the token has 256 bits of randomness, so no salt or slow hash is needed.
    key_hash = models.CharField(max_length=64, unique=True)
    # The token's first characters, shown in lists so people can tell their tokens apart.
    prefix = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user.username}: {self.name or self.prefix}"


def export_path(instance: DataExport, filename: str) -> str:
    # Never a name from outside: the export's own unguessable token, under exports/ of the "attachments" storage.
    return f"exports/{instance.token}.zip"


def export_token() -> str:
    import secrets

    return secrets.token_urlsafe(24)


def exports_storage() -> object:
    """The storage exports live in: the "attachments" one (imweb.settings), under exports/."""
    from django.core.files.storage import storages

    return storages["attachments"]


class DataExport(models.Model):
    """One archive of everything that is a person's (accounts.export builds it, in the background): asked for by
    the person, or by an operator from the dashboard (`by_operator`; then only staff may download it). The zip
    lives in the "attachments" storage under exports/ until `expires_at`, when a beat task deletes it."""

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        RUNNING = "running", "Being prepared"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    token = models.CharField(max_length=64, unique=True, default=export_token)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="data_exports")
    requested_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    by_operator = models.BooleanField(default=False)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # 0-100, moved on by the task as it goes
    file = models.FileField(storage=exports_storage, upload_to=export_path, max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "by_operator", "-created_at"], name="accounts_export_user_idx")]

    def __str__(self) -> str:
        return f"export of {self.user_id} ({self.state}, {self.progress}%)"

    @property
    def is_active(self) -> bool:
        """Queued or being prepared: asking again returns this one instead of starting a second."""
        return self.state in (self.State.QUEUED, self.State.RUNNING)

    @property
    def is_ready(self) -> bool:
        return self.state == self.State.READY and bool(self.file)


def _remove_export_file(sender: type[DataExport], instance: DataExport, **kwargs: object) -> None:
    """A deleted export (and every export of a deleted account) takes its zip out of storage."""
    if instance.file:
        instance.file.delete(save=False)


models.signals.post_delete.connect(_remove_export_file, sender=DataExport, dispatch_uid="accounts_export_file")
