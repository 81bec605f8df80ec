"""Waking sockets after a commit: actions name the users whose screens changed, consumers re-render for them.

Events carry no state. A consumer that misses one (the pub/sub layer may drop under load) is corrected by the
next event or by the full re-sync every (re)connecting socket gets, because the database is the truth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


async def _send_all(user_ids: set[int], event: dict[str, object]) -> None:
    layer = get_channel_layer()
    await asyncio.gather(*(layer.group_send(user_group(uid), event) for uid in user_ids))


def notify_users(user_ids: Iterable[int], event_type: str, **data: object) -> None:
    """After the current transaction commits, tell these users' open sockets that `event_type` happened."""
    ids = {uid for uid in user_ids if uid is not None}
    if not ids:
        return
    event = {"type": event_type, **data}

    def send() -> None:
        try:
            async_to_sync(_send_all)(ids, event)
        except Exception:  # the change is committed; a lost wake-up is repaired on the next re-sync
            logger.exception("could not publish %s to %d users", event_type, len(ids))

    transaction.on_commit(send)


class UserGroupSocket(AsyncWebsocketConsumer):
    """A socket in its user's group (`user_group`). Every socket kind of a user (the web UI's, the API stream)
    is in that group, so each also gets events meant for the others, and events newer than its process:
    Channels would close the socket on an event without a handler, so those are logged and skipped instead."""

    async def dispatch(self, message: dict) -> None:
        kind = str(message.get("type", ""))
        if not kind.startswith("websocket.") and getattr(self, kind.replace(".", "_"), None) is None:
            logger.debug("%s ignores event %r", type(self).__name__, kind[:60])
            return
        await super().dispatch(message)
