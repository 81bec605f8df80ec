"""Two-factor sign-in and signed-in sessions, around allauth's MFA and user-sessions apps.

- `two_factor_status` is what the profile page shows about a person's second factor.
- `SessionActivityMiddleware` keeps each session's last address and time seen, written at most once a minute per
  session (allauth's own middleware writes on every request, htmx ones included).
- `StaffTwoFactorMiddleware`: with IMWEB_REQUIRE_STAFF_2FA on, staff without an authenticator app are sent to
  set one up after they sign in, and the dashboard and Django's admin send them there until they have.
- `end_session` signs one of a person's other sessions out; every ending of sessions (that one, or "sign out
  everywhere else") goes through `UserSessionsAdapter`, which sends `sessions_ended` (the audit log listens) and
  tells the ended sessions' open sockets to close (`session_group`: a socket joins its session's group).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from allauth.account.models import EmailAddress
from allauth.core import context
from allauth.mfa.models import Authenticator
from allauth.usersessions.adapter import DefaultUserSessionsAdapter
from allauth.usersessions.internal.flows.sessions import end_sessions
from allauth.usersessions.models import UserSession
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from accounts.events import account_closed, session_group

logger = logging.getLogger(__name__)

# Sent after signed-in sessions were ended by their owner. Arguments: request, user, sessions (UserSession list).
sessions_ended = Signal()

# A session's "last seen" is refreshed at most this often.
ACTIVITY_EVERY_SECONDS = 60
# Set at sign-in on a staff member who must still set up two-factor sign-in: the next page takes them there.
SETUP_PENDING = "imweb_staff_2fa_setup"
SETUP_MESSAGE = "Set up two-factor sign-in: the dashboard and the admin need it for staff on this service."


@dataclass(frozen=True)
class TwoFactorStatus:
    """A person's second factor as the profile shows it."""

    enabled: bool
    recovery_codes_left: int
    can_enable: bool  # False while an email address is unverified (allauth refuses then)


def two_factor_status(user: object) -> TwoFactorStatus:
    """Whether `user` has an authenticator app, how many recovery codes they have left, and whether they may set
    one up now (every email address verified, so nobody can lock an address's owner out of an account)."""
    kinds = {a.type: a for a in Authenticator.objects.filter(user_id=user.pk)}
    codes = kinds.get(Authenticator.Type.RECOVERY_CODES)
    left = len(codes.wrap().get_unused_codes()) if codes is not None else 0
    unverified = EmailAddress.objects.filter(user_id=user.pk, verified=False).exists()
    return TwoFactorStatus(
        enabled=Authenticator.Type.TOTP in kinds, recovery_codes_left=left, can_enable=not unverified
    )


def has_totp(user: object) -> bool:
    return Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).exists()


def staff_needs_two_factor(user: object) -> bool:
    """True for a signed-in staff member who must set up an authenticator app before using staff pages."""
    return (
        settings.IMWEB_REQUIRE_STAFF_2FA
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_staff", False)
        and not has_totp(user)
    )


def setup_redirect(request: HttpRequest) -> HttpResponse:
    """Send the person to set up their authenticator app, saying why."""
    messages.warning(request, SETUP_MESSAGE)
    return HttpResponseRedirect(reverse("mfa_activate_totp"))


def mark_setup_pending(request: HttpRequest | None, user: object) -> None:
    """At sign-in: a staff member who must set up two-factor sign-in is taken there by the next page."""
    if request is not None and hasattr(request, "session") and staff_needs_two_factor(user):
        request.session[SETUP_PENDING] = True


class SessionActivityMiddleware:
    """Refresh the current session's address and last-seen time, at most once a minute per session."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.session.session_key if hasattr(request, "session") else None
        if key and request.user.is_authenticated:
            try:
                due = cache.add(f"usersession-seen:{key}", 1, timeout=ACTIVITY_EVERY_SECONDS)
            except Exception:  # an unreachable cache must not cost a page; the time is refreshed later
                logger.warning("could not check when this session was last seen", exc_info=True)
                due = False
            if due:
                UserSession.objects.create_from_request(request)
        return self.get_response(request)


class StaffTwoFactorMiddleware:
    """With IMWEB_REQUIRE_STAFF_2FA on: staff without an authenticator app are sent to set one up, right after
    signing in and whenever they open Django's admin (the dashboard checks in `access.staff_view`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.IMWEB_REQUIRE_STAFF_2FA and request.user.is_authenticated and request.user.is_staff:
            path = request.path
            if path.startswith(reverse("admin:index")) and staff_needs_two_factor(request.user):
                return setup_redirect(request)
            accounts = reverse("account_login").rsplit("/", 2)[0] + "/"
            pending = request.method == "GET" and request.session.get(SETUP_PENDING)
            if pending and not path.startswith(accounts) and not request.htmx:
                del request.session[SETUP_PENDING]
                if staff_needs_two_factor(request.user):
                    return setup_redirect(request)
        return self.get_response(request)


def end_session(request: HttpRequest, session_id: int) -> bool:
    """Sign out one of the person's other sessions (not this one: "Sign out" does that); False if there is no
    such session of theirs."""
    session = UserSession.objects.filter(pk=session_id, user_id=request.user.pk).first()
    if session is None or session.session_key == request.session.session_key:
        return False
    end_sessions(request, [session])
    return True


class UserSessionsAdapter(DefaultUserSessionsAdapter):
    """allauth's, which also closes the ended sessions' open sockets (a tab there says it was signed out and does
    not reconnect) and says which sessions were ended (`sessions_ended`)."""

    def end_sessions(self, sessions: list[UserSession]) -> None:
        sessions = list(sessions)
        super().end_sessions(sessions)
        layer = get_channel_layer()
        for session in sessions:
            try:
                async_to_sync(layer.group_send)(session_group(session.session_key), account_closed("signed_out"))
            except Exception:  # the session is ended all the same; its tabs find out when they next load a page
                logger.warning("could not close the sockets of an ended session", exc_info=True)
        if sessions:
            request = getattr(context, "request", None)
            sessions_ended.send(sender=UserSession, request=request, user=sessions[0].user, sessions=sessions)
