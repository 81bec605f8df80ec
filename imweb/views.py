"""Operational endpoints that belong to no app: the health check and error pages."""

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 3.0


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _check_channel_layer() -> None:
    # A real round trip through the layer: what a WebSocket push needs to work.
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "health.ping"})
    message = await layer.receive(channel)
    # The pub/sub layer unsubscribes a channel when a receive on it is cancelled (its documented clean-up
    # path, as when a consumer exits); do that so health checks leave no subscriptions behind.
    waiter = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    if message.get("type") != "health.ping":
        raise RuntimeError("the channel layer returned a different message")


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 with each component "ok" when the database and the channel layer answer; 503 otherwise."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(sync_to_async(_check_database)(), HEALTH_TIMEOUT_SECONDS)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001  (any failure is a failed check, reported by name)
        logger.warning("health: database check failed: %s", exc)
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        await asyncio.wait_for(_check_channel_layer(), HEALTH_TIMEOUT_SECONDS)
        checks["channel_layer"] = "ok"
    except Exception as exc:  # noqa: BLE001
        logger.warning("health: channel layer check failed: %s", exc)
        checks["channel_layer"] = f"error: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", status=404)
