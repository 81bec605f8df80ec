"""Sends that arrive together are stored together: the sockets and the JSON API of one process hand their sends
to one `SendBatcher`, which stores what gathered in one transaction (`chat.actions.send_messages`) and answers
each sender with its own result.

When the batcher is idle, the first send waits WINDOW_SECONDS for company; while a batch is being stored, the
next one gathers by itself, so a busy process commits large batches and a quiet one adds at most a couple of
milliseconds. A commit costs about as much as all the other work of a message together on SQLite here
(bench/RESULTS.md), so this is what lets the embedded default keep up under load.

Writers never fail for a busy database: a batch that meets "database is locked" (another process holding
SQLite's write lock past the busy timeout) is tried again, a few times, before its senders get an error.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import weakref
from collections.abc import Sequence

from channels.db import database_sync_to_async
from django.db import DatabaseError, OperationalError

from chat.actions.messages import SendRequest, SendResult, send_messages
from chat.errors import StorageUnavailable

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 0.002
BATCH_LIMIT = 200
LOCKED_RETRIES = 5
LOCKED_PAUSE_SECONDS = 0.2


_storage_failed_at: float | None = None
STORAGE_FAILURE_SHOWN_SECONDS = 10.0


def storage_failed_recently() -> bool:
    """Whether this process failed to store messages lately (for /healthz: a read or a one-row write may still
    pass on a full disk while every send fails)."""
    return _storage_failed_at is not None and time.monotonic() - _storage_failed_at < STORAGE_FAILURE_SHOWN_SECONDS


def _store(requests: Sequence[SendRequest]) -> list[SendResult]:
    for attempt in range(LOCKED_RETRIES + 1):
        try:
            return send_messages(requests)
        except DatabaseError as exc:
            if not isinstance(exc, OperationalError) or "locked" not in str(exc) or attempt == LOCKED_RETRIES:
                # A full disk, a read-only or unreachable database: each sender hears that nothing was stored
                # and when to try again (the browser does it by itself, with the same client id).
                logger.error("could not store %d messages: %s", len(requests), exc)
                global _storage_failed_at
                _storage_failed_at = time.monotonic()
                return [StorageUnavailable() for _ in requests]
            logger.warning("sending %d messages met a locked database; trying again", len(requests))
            # A blocking pause is right here: this runs on the database thread, which is what is waiting.
            time.sleep(LOCKED_PAUSE_SECONDS * (attempt + 1))
    raise AssertionError("unreachable")


class SendBatcher:
    """One per event loop (`for_loop`): see the module docstring."""

    def __init__(self) -> None:
        self.pending: list[tuple[SendRequest, asyncio.Future[SendResult]]] = []
        self.task: asyncio.Task[None] | None = None

    async def send(self, request: SendRequest) -> SendResult:
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self.pending.append((request, future))
        if self.task is None:
            # A context of its own: the task outlives the request or socket that started it, and a request's
            # context carries its own database thread (asgiref's ThreadSensitiveContext), which ends with it.
            self.task = asyncio.get_running_loop().create_task(self._run(), context=contextvars.Context())
        return await future

    async def _run(self) -> None:
        try:
            await asyncio.sleep(WINDOW_SECONDS)
            while self.pending:
                batch, self.pending = self.pending[:BATCH_LIMIT], self.pending[BATCH_LIMIT:]
                try:
                    results = await database_sync_to_async(_store)([request for request, _ in batch])
                except Exception as exc:
                    logger.exception("could not store %d messages", len(batch))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self.task = None


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SendBatcher] = weakref.WeakKeyDictionary()


def for_loop() -> SendBatcher:
    """The running loop's batcher."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = SendBatcher()
    return batcher


async def send(request: SendRequest) -> SendResult:
    """Store one send with whatever else arrives at the same moment in this process."""
    return await for_loop().send(request)
