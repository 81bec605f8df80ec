"""The ASGI entry point served by Daphne: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imweb.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry loaded above)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from imweb.proxy import SameOriginValidator, TrustedProxyMiddleware, parse_networks  # noqa: E402
from imweb.routing import token_websocket_urlpatterns, websocket_urlpatterns  # noqa: E402

routes = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Token-authenticated sockets first: they read no cookie, so they need no Origin check (and bots send
        # no Origin); every other socket is the browser's, authenticated by its session.
        "websocket": URLRouter(
            [
                *token_websocket_urlpatterns,
                re_path(r"^", SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))),
            ]
        ),
    }
)
# The client's address and scheme, as our own reverse proxies report them (IMWEB_TRUSTED_PROXIES), for everything.
application = TrustedProxyMiddleware(routes, parse_networks(settings.IMWEB_TRUSTED_PROXIES))
