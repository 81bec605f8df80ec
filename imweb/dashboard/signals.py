"""Security events written to the audit log as they happen elsewhere: sign-ins (with the address, for a
person's "recent sign-ins"), sign-in failures past the limit, two-factor sign-in turned on or off and new recovery
codes, sessions a person signed out, API token revocations, and changes made through Django's admin (which keeps
its own history too, editable there; ours is not)."""

from __future__ import annotations

import logging

from allauth.mfa.models import Authenticator
from allauth.mfa.signals import authenticator_added, authenticator_removed, authenticator_reset
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.events import account_closed, notify_users
from accounts.mfa import mark_setup_pending, sessions_ended
from accounts.models import ApiToken, User
from imweb.dashboard.audit import record

logger = logging.getLogger(__name__)

# The per-account part of allauth's login_failed limit ("5/5m/key" by default): the failure that reaches it
# is recorded once per window.
FAILURES_WINDOW_SECONDS = 300


def _failures_limit() -> int:
    spec = settings.ACCOUNT_RATE_LIMITS.get("login_failed", "")
    for part in spec.split(","):
        amount, _, rest = part.strip().partition("/")
        if rest.endswith("/key") and amount.isdigit():
            return int(amount)
    return 5


@receiver(user_logged_in)
def signed_in(sender: object, request: HttpRequest | None, user: User, **kwargs: object) -> None:
    record("login.success", actor=user, target=user.jid, request=request)
    mark_setup_pending(request, user)


@receiver(user_login_failed)
def sign_in_failed(sender: object, credentials: dict, request: HttpRequest | None = None, **kwargs: object) -> None:
    login = str(credentials.get("username") or credentials.get("email") or credentials.get("login") or "")[:150]
    if not login:
        return
    key = f"audit:login-failed:{login.lower()}"
    try:
        cache.add(key, 0, timeout=FAILURES_WINDOW_SECONDS)
        count = cache.incr(key)
    except Exception:  # an unreachable cache must not turn a failed sign-in into a 500
        logger.warning("could not count a failed sign-in for the audit log", exc_info=True)
        return
    if count == _failures_limit():
        record(
            "login.locked_out",
            target=login,
            details=f"{count} failed sign-ins in {FAILURES_WINDOW_SECONDS // 60} minutes: further ones are refused.",
            request=request,
            actor=None,
        )


@receiver(authenticator_added)
def two_factor_enabled(
    sender: object, request: HttpRequest | None, user: User, authenticator: Authenticator, **kwargs: object
) -> None:
    # Recovery codes are made along with the authenticator app: one entry for both.
    if authenticator.type == Authenticator.Type.TOTP:
        record("mfa.enabled", actor=user, target=user.jid, details="Authenticator app set up.", request=request)


@receiver(authenticator_removed)
def two_factor_disabled(
    sender: object, request: HttpRequest | None, user: User, authenticator: Authenticator, **kwargs: object
) -> None:
    if authenticator.type == Authenticator.Type.TOTP:
        record("mfa.disabled", actor=user, target=user.jid, details="Authenticator app removed.", request=request)


@receiver(authenticator_reset)
def recovery_codes_regenerated(
    sender: object, request: HttpRequest | None, user: User, authenticator: Authenticator, **kwargs: object
) -> None:
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        record(
            "mfa.recovery_codes_regenerated",
            actor=user,
            target=user.jid,
            details="New recovery codes; the old ones no longer work.",
            request=request,
        )


@receiver(sessions_ended)
def sessions_signed_out(
    sender: object, request: HttpRequest | None, user: User, sessions: list, **kwargs: object
) -> None:
    where = ", ".join(f"{session.ip} ({session.user_agent[:200] or 'unknown browser'})" for session in sessions)
    record(
        "session.signed_out",
        actor=user,
        target=user.jid,
        details=f"Signed out {len(sessions)} session(s): {where}."[:2000],
        request=request,
    )


@receiver(post_delete, sender=ApiToken)
def token_revoked(sender: object, instance: ApiToken, **kwargs: object) -> None:
    try:
        owner = instance.user.jid
    except User.DoesNotExist:  # the account itself is being deleted
        owner = f"user {instance.user_id}"
    record("token.revoke", target=owner, details=f"Token {instance.prefix}… ({instance.name or 'unnamed'}) revoked.")


@receiver(post_save, sender=LogEntry)
def admin_changed(sender: object, instance: LogEntry, created: bool, **kwargs: object) -> None:
    if not created:
        return
    verb = {1: "add", 2: "change", 3: "delete"}.get(instance.action_flag, "change")
    record(
        f"admin.{verb}",
        actor=instance.user,
        target=f"{instance.content_type} {instance.object_repr}"[:2047]
        if instance.content_type
        else instance.object_repr,
        details=instance.get_change_message(),
    )


@receiver(post_save, sender=User)
def deactivated(sender: object, instance: User, **kwargs: object) -> None:
    """However an account became inactive (the dashboard, Django's admin, a shell), its open tabs and streams
    close now instead of serving until they reload (closing closed sockets again is harmless)."""
    if not instance.is_active and not kwargs.get("raw"):
        notify_users([instance.pk], account_closed("suspended"))
