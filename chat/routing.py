"""WebSocket routes of the chat app."""

from django.urls import path

from chat.consumers import UserSocket

websocket_urlpatterns = [path("ws/", UserSocket.as_asgi())]
