"""HTTP middleware that belongs to no app: the Content-Security-Policy header, and no caching of private pages."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control


class ContentSecurityPolicyMiddleware:
    """Adds one fixed, strict CSP header to every response.

    Django 5.2 has no CSP support of its own; the policy here is a single constant with no nonces or
    per-view variations (the UI has no inline scripts or styles), so a dependency would add nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class PrivatePagesMiddleware:
    """Whatever a signed-in person is shown is theirs alone: `Cache-Control: private, no-store` unless the view
    chose its own caching (avatars, static files), so no shared cache and no back-forward cache of a shared
    computer keeps someone's conversations after they sign out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "Cache-Control" not in response.headers:
            patch_cache_control(response, private=True, no_store=True)
        return response
