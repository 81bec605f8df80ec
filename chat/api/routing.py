"""WebSocket routes of the API: the event stream. Served without the Origin check and session middleware the
web UI's socket has, because the stream authenticates only by token (see chat.api.stream)."""

from django.urls import path

from chat.api.stream import ApiStream

websocket_urlpatterns = [path("api/v1/stream", ApiStream.as_asgi())]
