"""Presence heartbeats of one process, written together: every connected socket (a browser tab, an API stream)
keeps a presence session alive (accounts.actions.presence), and instead of one database write per socket every
IMWEB_PRESENCE_HEARTBEAT_SECONDS, the process refreshes all of its sessions in one UPDATE on that beat.

A session the sweeper closed meanwhile (this process could not reach the database for a while) is opened again,
so its person comes back online; a socket that goes away stops being refreshed at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections.abc import Awaitable, Callable

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.actions.presence import refresh_sessions

logger = logging.getLogger(__name__)

Reopen = Callable[[], Awaitable[None]]


class Heartbeats:
    """One per event loop (`for_loop`): the resources of this process's sockets, refreshed on one beat."""

    def __init__(self) -> None:
        self.sessions: dict[str, Reopen] = {}
        self.task: asyncio.Task[None] | None = None

    def keep(self, resource: str, reopen: Reopen) -> None:
        """Refresh `resource` on every beat; `reopen()` opens it again if it was swept."""
        self.sessions[resource] = reopen
        if self.task is None or self.task.done():
            # A context of its own: the task outlives the socket that started it (see chat.batching).
            self.task = asyncio.get_running_loop().create_task(self._beat(), context=contextvars.Context())

    def drop(self, resource: str) -> None:
        self.sessions.pop(resource, None)

    async def _beat(self) -> None:
        interval = settings.IMWEB_PRESENCE_HEARTBEAT_SECONDS
        while self.sessions:
            await asyncio.sleep(interval)
            await self.beat()

    async def beat(self) -> None:
        """Refresh every kept session now (one UPDATE), and reopen the ones that were swept."""
        resources = list(self.sessions)
        if not resources:
            return
        try:
            alive = await database_sync_to_async(refresh_sessions)(resources)
        except Exception:
            logger.exception("presence heartbeats failed for %d sessions", len(resources))
            return
        for resource in resources:
            reopen = self.sessions.get(resource)
            if resource not in alive and reopen is not None:
                try:
                    await reopen()
                except Exception:
                    logger.exception("could not reopen the presence session %s", resource)


_beats: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Heartbeats] = weakref.WeakKeyDictionary()


def for_loop() -> Heartbeats:
    loop = asyncio.get_running_loop()
    beats = _beats.get(loop)
    if beats is None:
        beats = _beats[loop] = Heartbeats()
    return beats
