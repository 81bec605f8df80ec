"""The user's WebSocket (one per open tab): a doorway that turns frames into action calls and events into
rendered fragments. It authenticates on connect, joins the user's group, and re-syncs everything it shows
on every (re)connect, so a missed push never leaves a screen stale."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.template.loader import render_to_string

from accounts import actions
from accounts.contacts_views import render_contacts
from accounts.events import user_group
from accounts.models import User

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024
CLOSE_UNAUTHENTICATED = 4401


def _render_error(text: str) -> str:
    return render_to_string("accounts/_feedback.html", {"error": text, "oob": True})


@database_sync_to_async
def _contacts_html(user_id: int) -> str:
    user = User.objects.get(pk=user_id)
    return render_contacts(None, user, oob=True)


class UserSocket(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user_id: int = user.pk
        self.resource = secrets.token_hex(12)
        self.heartbeat_task: asyncio.Task[None] | None = None
        # Subscribe first, then read state: an event between the two only causes one extra re-render.
        await self.channel_layer.group_add(user_group(self.user_id), self.channel_name)
        await self.accept()
        await database_sync_to_async(actions.open_session)(user, self.resource)
        await self.send(text_data=await _contacts_html(self.user_id))
        self.heartbeat_task = asyncio.ensure_future(self._heartbeat())

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "resource"):
            return
        if self.heartbeat_task is not None:
            self.heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.heartbeat_task
        await self.channel_layer.group_discard(user_group(self.user_id), self.channel_name)
        await database_sync_to_async(actions.close_session)(self.resource)

    async def _heartbeat(self) -> None:
        interval = settings.IMWEB_PRESENCE_HEARTBEAT_SECONDS
        while True:
            await asyncio.sleep(interval)
            try:
                alive = await database_sync_to_async(actions.heartbeat)(self.resource)
                if not alive:  # swept while the database was unreachable: come back online
                    user = await database_sync_to_async(User.objects.get)(pk=self.user_id)
                    await database_sync_to_async(actions.open_session)(user, self.resource)
            except Exception:
                logger.exception("presence heartbeat failed for %s", self.resource)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw.encode()) > MAX_FRAME_BYTES:
            await self.send(text_data=_render_error(f"That was too large (over {MAX_FRAME_BYTES // 1024} KB)."))
            return
        try:
            frame = json.loads(raw)
            kind = frame["type"]
        except (ValueError, KeyError, TypeError):
            await self.send(text_data=_render_error("The server did not understand that request."))
            return
        if kind in ("presence.idle", "presence.active"):
            await database_sync_to_async(actions.set_session_idle)(self.resource, kind == "presence.idle")
        elif kind == "sync":
            await self.send(text_data=await _contacts_html(self.user_id))
        else:
            await self.send(text_data=_render_error(f"Unknown request type {str(kind)[:40]!r}."))

    async def roster_changed(self, event: dict[str, object]) -> None:
        await self.send(text_data=await _contacts_html(self.user_id))
