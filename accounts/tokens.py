"""API tokens: issuing, checking and revoking the bearer tokens bots and integrations use on the JSON API.

A token is `imweb_` + 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored, so the token
itself is shown once, when it is issued. Checking a token is one indexed query; `last_used_at` is written at
most once a minute per token, so a busy bot does not turn every request into a database write.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.errors import AccountError
from accounts.models import ApiToken, User

TOKEN_PREFIX = "imweb_"
TOKEN_NAME_MAX = 64
# Longer than any token we issue, short enough that hashing a hostile header costs nothing.
TOKEN_MAX_LENGTH = 128
LAST_USED_RESOLUTION = timedelta(minutes=1)
DEFAULT_MAX_TOKENS_PER_USER = 50


class InvalidTokenName(AccountError):
    pass


def max_tokens_per_user() -> int:
    return getattr(settings, "IMWEB_API_MAX_TOKENS_PER_USER", DEFAULT_MAX_TOKENS_PER_USER)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean_token_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidTokenName("A token name must be text.")
    text = name.strip()
    if len(text) > TOKEN_NAME_MAX:
        raise InvalidTokenName(f"A token name can be at most {TOKEN_NAME_MAX} characters long.")
    if any(not ch.isprintable() for ch in text):
        raise InvalidTokenName("A token name must be one line without control characters.")
    return text


def issue_token(user: User, name: str = "") -> tuple[ApiToken, str]:
    """A new token for `user`: the stored row and the token itself (shown once, never stored).

    A user keeps at most `IMWEB_API_MAX_TOKENS_PER_USER` tokens; issuing one more revokes the least recently
    used, so a bot that logs in on every start never piles up rows nor locks itself out.
    """
    label = clean_token_name(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        row = ApiToken.objects.create(user=user, name=label, key_hash=token_hash(token), prefix=token[:12])
        keep = list(
            ApiToken.objects.filter(user=user)
            .order_by("-last_used_at", "-created_at", "-pk")
            .values_list("pk", flat=True)[: max_tokens_per_user()]
        )
        ApiToken.objects.filter(user=user).exclude(pk__in=[*keep, row.pk]).delete()
    return row, token


def authenticate_token(token: str) -> ApiToken | None:
    """The live token row (with its active user loaded) for a presented token, else None."""
    if not token or len(token) > TOKEN_MAX_LENGTH or not token.isascii():
        return None
    row = ApiToken.objects.select_related("user").filter(key_hash=token_hash(token), user__is_active=True).first()
    if row is None:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


def revoke_token(user: User, token_id: int) -> bool:
    """Revoke one of the user's tokens; False when they have no token with that id."""
    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    return bool(deleted)


def tokens_of(user: User) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user).order_by("-created_at"))
