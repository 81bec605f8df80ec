"""WebSocket URL routes, gathered from the apps."""

from chat.api.routing import websocket_urlpatterns as api_routes
from chat.routing import websocket_urlpatterns as chat_routes

websocket_urlpatterns = [*chat_routes]
# Token-authenticated sockets (bots, integrations): no Origin check, no session cookie (see imweb.asgi).
token_websocket_urlpatterns = [*api_routes]
