"""Profile actions: display name, status message, avatar, account deletion."""

from __future__ import annotations

import logging
import unicodedata

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from accounts import events, signals
from accounts.actions.presence import presence_audience
from accounts.actions.roster import farewell_remote_contacts
from accounts.avatars import check_avatar_size, normalise_avatar
from accounts.errors import InvalidProfile
from accounts.events import notify_users
from accounts.models import RosterItem, User

logger = logging.getLogger(__name__)

DISPLAY_NAME_MAX = 64
STATUS_MESSAGE_MAX = 140


def _clean_text(field: str, label: str, value: str, limit: int) -> str:
    value = unicodedata.normalize("NFC", value.strip())
    if len(value) > limit:
        raise InvalidProfile(field, f"{label} can be at most {limit} characters long (this one has {len(value)}).")
    # Control and bidi-override characters make names that render deceptively; letters, emoji and
    # ordinary punctuation are all fine.
    if any(unicodedata.category(ch) in {"Cc", "Cf"} and ch not in "\u200d" for ch in value):
        raise InvalidProfile(field, f"{label} contains invisible control characters. Please remove them.")
    return value


def _listing(user: User) -> list[int]:
    """Local users who list this user as a contact, whether or not they see their presence."""
    return list(RosterItem.objects.filter(jid=user.jid).values_list("owner_id", flat=True))


def profile_audience(user: User) -> list[int]:
    """Local users who may have this user's name or avatar on screen, each once: the user (their other tabs),
    everyone who lists them as a contact, and whoever the apps built on accounts add (chat: the current members
    of conversations they are in, accounts.signals.profile_viewers)."""
    others = [pk for _, ids in signals.profile_viewers.send(sender=User, user=user) for pk in ids]
    return list(dict.fromkeys([user.pk, *_listing(user), *others]))


def _announce_profile(user: User) -> None:
    """On commit: the new name and avatar to every screen that shows them (chat.consumers re-renders the lists
    and the open conversation's header; static/js/chat.js updates the messages already on screen)."""
    notify_users(profile_audience(user), events.profile_changed(user.jid, name=user.name, avatar_url=user.avatar_url))


def update_profile(user: User, *, display_name: str, status_message: str) -> User:
    """Set the user's display name and status message (the "away message" shown to contacts)."""
    display_name = _clean_text("display_name", "The display name", display_name, DISPLAY_NAME_MAX)
    status_message = _clean_text("status_message", "The status message", status_message, STATUS_MESSAGE_MAX)
    with transaction.atomic():
        renamed = User.objects.filter(pk=user.pk).values_list("display_name", flat=True).first() != display_name
        user.display_name = display_name
        user.status_message = status_message
        user.save(update_fields=["display_name", "status_message"])
        # Contacts see the name and the status message in their lists; everyone who lists them sees the name.
        audience = presence_audience(user)
        if renamed:
            audience += _listing(user)
            _announce_profile(user)
        notify_users(audience, events.roster_changed())
    return user


IDLE_MINUTES_RANGE = (1, 240)


def update_privacy(
    user: User,
    *,
    show_last_seen: bool,
    directory_visible: bool,
    idle_away_minutes: int,
    send_read_markers: bool | None = None,
    send_typing: bool | None = None,
    email_missed_messages: bool | None = None,
) -> User:
    """Privacy and presence preferences: last-seen visibility, directory listing, auto-away delay, whether
    read markers and typing notifications are sent, and whether unread messages are emailed (None leaves those
    three as they are)."""
    low, high = IDLE_MINUTES_RANGE
    if not low <= idle_away_minutes <= high:
        raise InvalidProfile("idle_away_minutes", f"Choose between {low} and {high} minutes.")
    with transaction.atomic():
        user.show_last_seen = show_last_seen
        user.directory_visible = directory_visible
        user.idle_away_minutes = idle_away_minutes
        fields = ["show_last_seen", "directory_visible", "idle_away_minutes"]
        if send_read_markers is not None:
            user.send_read_markers = send_read_markers
            fields.append("send_read_markers")
        if send_typing is not None:
            user.send_typing = send_typing
            fields.append("send_typing")
        if email_missed_messages is not None:
            user.email_missed_messages = email_missed_messages
            fields.append("email_missed_messages")
        user.save(update_fields=fields)
        notify_users(presence_audience(user), events.roster_changed())  # last seen may have appeared or vanished
    return user


def set_avatar(user: User, upload: UploadedFile) -> User:
    """Check an uploaded image and store it as the user's avatar (256x256 PNG)."""
    check_avatar_size(upload.size)
    png = normalise_avatar(upload)
    with transaction.atomic():
        old_name = user.avatar.name
        user.avatar.save(f"{user.pk}.png", ContentFile(png), save=False)
        user.avatar_version += 1
        user.save(update_fields=["avatar", "avatar_version"])
        _announce_profile(user)
        notify_users(_listing(user), events.roster_changed())  # contact lists show the picture
    if old_name and old_name != user.avatar.name:
        user.avatar.storage.delete(old_name)
    return user


def remove_avatar(user: User) -> User:
    if user.avatar:
        name = user.avatar.name
        with transaction.atomic():
            user.avatar = ""
            user.avatar_version += 1
            user.save(update_fields=["avatar", "avatar_version"])
            _announce_profile(user)
            notify_users(_listing(user), events.roster_changed())
        user.avatar.storage.delete(name)
    return user


def delete_account(user: User) -> None:
    """Delete the account and everything that belongs to it.

    Its own rows cascade; other people's contact entries and requests for its address are removed too, and
    remote contacts' servers are told to drop their subscriptions, so whoever registers the username later
    inherits no one's consent. The avatar file goes after the commit.
    """
    avatar_name = user.avatar.name if user.avatar else ""
    storage = user.avatar.storage
    username = user.username
    with transaction.atomic():
        others = list(RosterItem.objects.filter(jid=user.jid).values_list("owner_id", flat=True))
        RosterItem.objects.filter(jid=user.jid).delete()
        farewell_remote_contacts(user)
        user.delete()
        if avatar_name:
            transaction.on_commit(lambda: storage.delete(avatar_name))
        notify_users(others, events.roster_changed())
    logger.info("account %s deleted", username)
