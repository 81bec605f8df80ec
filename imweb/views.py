"""Operational endpoints that belong to no app: the health check and error pages."""

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static

from chat import batching
from imweb.supervisor import read_record

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 3.0


# SQLite needs room to grow its write-ahead log: with less than this free next to the database, sends fail.
MIN_FREE_BYTES = 4 * 1024 * 1024


def _check_database() -> None:
    """The database accepts writes: a row of Django's migration table is written back as it is, in a committed
    transaction (a read-only or unreachable database fails here, where a read would still pass); SQLite's disk has
    room to grow; and this process has not failed to store messages lately (a full disk may still take one
    small write while every message fails)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE django_migrations SET applied = applied WHERE id = (SELECT MIN(id) FROM django_migrations)"
        )
    if connection.vendor == "sqlite":
        stat = os.statvfs(Path(connection.settings_dict["NAME"]).parent)
        if stat.f_bavail * stat.f_frsize < MIN_FREE_BYTES:
            raise OSError("the disk under the database is full")
    if batching.storage_failed_recently():
        raise OSError("messages could not be stored in the last seconds")


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


def _processes() -> dict[str, dict[str, object]] | None:
    """Each process of the supervisor that runs this instance (`make run`), or None without one (scaled mode,
    where systemd or another manager watches the processes)."""
    record = read_record(Path(settings.VAR_DIR))
    if record is None:
        return None
    return {
        name: {"state": child.get("state"), "since": child.get("since"), "restarts": child.get("restarts")}
        for name, child in (record.get("children") or {}).items()
    }


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 when this web process can serve: the database accepts a write and the channel layer answers; 503
    otherwise. Under the supervisor it also lists every process; one that is restarting makes the status
    "degraded" (still 200: this process serves, and the supervisor is bringing the other back)."""
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
    body: dict[str, object] = {"status": "ok" if healthy else "error", "checks": checks}
    processes = _processes()
    if processes is not None:
        body["processes"] = processes
        if healthy and any(p["state"] != "running" for p in processes.values()):
            body["status"] = "degraded"
    return JsonResponse(body, status=200 if healthy else 503)


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """/favicon.ico, which browsers ask for on pages without an icon link (and some always): the SVG logo."""
    return HttpResponseRedirect(static("img/logo.svg"))


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", status=404)
