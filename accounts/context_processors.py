"""Template context every page needs: this server's domain, and whether the user still has to verify their email."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def account_status(request: HttpRequest) -> dict[str, object]:
    """`imweb_domain` for every page; `unverified_email` (or None) for signed-in users."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"imweb_domain": settings.IMWEB_DOMAIN}
    from allauth.account.models import EmailAddress

    unverified = (
        EmailAddress.objects.filter(user=user, primary=True, verified=False).values_list("email", flat=True).first()
    )
    return {"imweb_domain": settings.IMWEB_DOMAIN, "unverified_email": unverified}
