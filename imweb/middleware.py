"""HTTP middleware that belongs to no app: static files, the Content-Security-Policy header, and no caching of
private pages.

Each works in both of Django's modes. Under Daphne every request is handled asynchronously, and one sync-only
middleware in the chain makes Django run that part in a thread for every request, API sends included (measured
as most of an API send's time under load, bench/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from whitenoise.middleware import WhiteNoiseMiddleware

Handler = Callable[[HttpRequest], HttpResponse] | Callable[[HttpRequest], Awaitable[HttpResponse]]


class _BothModes:
    """A middleware Django may call synchronously or asynchronously, whichever the chain around it is in."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._async_call(request)
        return self.finish(request, self.get_response(request))  # type: ignore[arg-type]

    async def _async_call(self, request: HttpRequest) -> HttpResponse:
        return self.finish(request, await self.get_response(request))  # type: ignore[misc]

    def finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        return response


class StaticFilesMiddleware(_BothModes):
    """WhiteNoise for the files under STATIC_URL, and nothing at all for every other request. WhiteNoise's own
    middleware is sync-only, so in front of everything it put each request, static or not, through a thread."""

    def __init__(self, get_response: Handler) -> None:
        super().__init__(get_response)
        self.whitenoise = WhiteNoiseMiddleware(get_response=lambda request: None)
        self.prefix = settings.STATIC_URL

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if not request.path_info.startswith(self.prefix):
            return self.get_response(request)
        if self.is_async:
            return self._serve_async(request)
        return self.whitenoise(request) or self.get_response(request)  # type: ignore[return-value]

    async def _serve_async(self, request: HttpRequest) -> HttpResponse:
        response = await sync_to_async(self.whitenoise)(request)
        return response if response is not None else await self.get_response(request)  # type: ignore[misc]


class ContentSecurityPolicyMiddleware(_BothModes):
    """Adds one fixed, strict CSP header to every response.

    Django 5.2 has no CSP support of its own; the policy here is a single constant with no nonces or
    per-view variations (the UI has no inline scripts or styles), so a dependency would add nothing.
    """

    def finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class PrivatePagesMiddleware(_BothModes):
    """Whatever a signed-in person is shown is theirs alone: `Cache-Control: private, no-store` unless the view
    chose its own caching (avatars, static files), so no shared cache and no back-forward cache of a shared
    computer keeps someone's conversations after they sign out."""

    def finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "Cache-Control" not in response.headers:
            patch_cache_control(response, private=True, no_store=True)
        return response
