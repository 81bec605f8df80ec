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
