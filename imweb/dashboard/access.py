"""Who may use the dashboard: staff only, and for each kind of action its permission (superusers have all).

Every dashboard view is wrapped in `staff_view`: anonymous people are sent to sign in, signed-in people who are
not staff (or staff without the view's permission) get 403, and nobody learns more than that. With
IMWEB_REQUIRE_STAFF_2FA on, staff without an authenticator app are sent to set one up first (accounts.mfa).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from accounts.mfa import setup_redirect, staff_needs_two_factor

VIEW = "dashboard.view_dashboard"
MODERATE = "dashboard.moderate"
FEDERATION = "dashboard.manage_federation"
AUDIT = "dashboard.view_auditentry"

View = Callable[..., HttpResponse]


def allowed(user: Any, permission: str = VIEW) -> bool:
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.has_perm(VIEW) and user.has_perm(permission)


def staff_view(permission: str = VIEW) -> Callable[[View], View]:
    def wrap(view: View) -> View:
        @functools.wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not allowed(request.user, permission):
                raise PermissionDenied("This page is for the service's operators.")
            if staff_needs_two_factor(request.user):
                return setup_redirect(request)
            return view(request, *args, **kwargs)

        checked.dashboard_permission = permission  # type: ignore[attr-defined]  (read by the access tests)
        return checked

    return wrap
