"""WebSocket URL routes, gathered from the apps."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
