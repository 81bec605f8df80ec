"""Username rules: a username is the localpart of the user's XMPP address, so it follows localpart rules."""

import re

from django.core.exceptions import ValidationError

USERNAME_MAX_LENGTH = 64
_ALLOWED = re.compile(r"[a-z0-9._-]")

# Names that mean a role or a service on a mail/XMPP domain (RFC 2142 and common practice), or that would
# let someone impersonate the operator.
RESERVED_USERNAMES = frozenset(
    {
        "abuse", "admin", "administrator", "anonymous", "api", "help", "hostmaster", "imweb", "info",
        "mailer-daemon", "moderator", "noc", "no-reply", "noreply", "operator", "postmaster", "root",
        "security", "server", "staff", "support", "sysadmin", "system", "webmaster", "www", "xmpp",
    }
)  # fmt: skip


def validate_username_length(value: str) -> None:
    if len(value) > USERNAME_MAX_LENGTH:
        raise ValidationError(
            f"Usernames can be at most {USERNAME_MAX_LENGTH} characters long (this one has {len(value)}).",
            code="username_too_long",
        )


def validate_username_characters(value: str) -> None:
    bad = sorted({ch for ch in value if not _ALLOWED.fullmatch(ch)})
    if bad:
        shown = " ".join("space" if ch == " " else repr(ch) for ch in bad)
        raise ValidationError(
            f"Usernames may contain only lowercase letters a-z, digits, '.', '_' and '-'. Not allowed: {shown}.",
            code="username_invalid_characters",
        )


def validate_username_not_reserved(value: str) -> None:
    if value.lower() in RESERVED_USERNAMES:
        raise ValidationError(f"The username '{value}' is reserved. Please choose another.", code="username_reserved")


# The list allauth's ACCOUNT_USERNAME_VALIDATORS names, and the User model's username field uses.
USERNAME_VALIDATORS = [validate_username_length, validate_username_characters, validate_username_not_reserved]
