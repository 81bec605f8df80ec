"""What a user's open sockets are told after a commit: the catalogue of events, and the publisher.

Every event goes to the group of one user (`user_group`), which all of that user's sockets join: the web UI's
tabs (`chat.consumers.UserSocket`) and the API stream (`chat.api.stream.ApiStream`). An event about a message
carries its payload, rendered once for everyone who sees it the same way (`chat.delivery`): the sockets forward
it as it is when it is the next seq they expect, and read the database only to repair a gap (the pub/sub layer
may drop under load) or after a reconnect. The rare events about a whole list (`conversation.updated`,
`roster.changed`) carry no state: the sockets re-read what they show.

Publishing happens after the commit (`transaction.on_commit`), once per user, and off the database thread: the
web and federation processes bind their event loop (`bind_loop`), and a commit on a database thread hands its
events to that loop, which sends them in commit order while the thread goes on with the next transaction.
Elsewhere (the Celery worker, management commands, tests outside a loop) the commit sends them itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.db import transaction

logger = logging.getLogger(__name__)

Event = dict[str, Any]

# --- The catalogue ----------------------------------------------------------------------------------------
# Each name maps to a socket method (`message.new` → `message_new`); tests/chat/test_events.py checks that every
# socket kind handles every one of them.

MESSAGE_NEW = "message.new"  # a stored message: its fragment, its list row, the viewer's unread count
MESSAGE_CHANGED = "message.changed"  # edited, deleted or reacted to: its fragment again (same seq)
RECEIPT = "receipt"  # someone's read or delivery marker moved: the status lines it changes
MESSAGE_STATUS = "message.status"  # a remote copy of a message moved (handed over, failed): its status line
TYPING = "typing.update"  # ephemeral: never stored
# conversation.updated also tells one person alone that their own settings there (muted, pinned, marked unread)
# changed: their tabs re-read the list and header, their API streams the conversation (chat.actions.conversations).
CONVERSATION_UPDATED = "conversation.updated"  # created, joined, renamed, members changed, accepted: re-read it
CONVERSATION_REMOVED = "conversation.removed"  # the user left or was removed
ROSTER_CHANGED = "roster.changed"  # contacts, requests, presence or the user's own profile: re-read them
ACCOUNT_CLOSED = "account.closed"  # suspended or signed out everywhere by an operator: every socket closes
PROFILE_CHANGED = "profile.changed"  # someone's display name or avatar: what shows it on screen follows

EVENT_TYPES = (
    MESSAGE_NEW,
    MESSAGE_CHANGED,
    RECEIPT,
    MESSAGE_STATUS,
    TYPING,
    CONVERSATION_UPDATED,
    CONVERSATION_REMOVED,
    ROSTER_CHANGED,
    ACCOUNT_CLOSED,
    PROFILE_CHANGED,
)


def message_new(
    conversation: int, seq: int, *, html: str, api: str, row: str, unread: int, quiet: bool, sender: str
) -> Event:
    """`html`: the message as this viewer's kind sees it (plain links in Requests); `api`: the API stream's
    JSON text of it; `row`: the conversation's list row ("" when a later message of the same commit carries
    it); `unread`: the viewer's unread count there; `quiet`: it waits in their Requests (no sound)."""
    return {
        "type": MESSAGE_NEW,
        "conversation": conversation,
        "seq": seq,
        "html": html,
        "api": api,
        "row": row,
        "unread": unread,
        "quiet": quiet,
        "sender": sender,
    }


def message_changed(conversation: int, seq: int, *, change: str, html: str, api: str, row: str, unread: int) -> Event:
    """`change`: edited, deleted or reactions; `row`: the list row when the change shows there (the newest
    message's preview), else "", with the viewer's `unread` count."""
    return {
        "type": MESSAGE_CHANGED,
        "conversation": conversation,
        "seq": seq,
        "change": change,
        "html": html,
        "api": api,
        "row": row,
        "unread": unread,
    }


def receipt(conversation: int, seq: int, *, kind: str, jid: str, html: str, unread: int | None) -> Event:
    """`jid`'s `kind` (read, delivered) marker is now `seq`. `html`: the status lines of the messages whose
    status that changed; `unread`: for the reader's own sockets, their unread count there now (else None)."""
    return {
        "type": RECEIPT,
        "conversation": conversation,
        "seq": seq,
        "kind": kind,
        "jid": jid,
        "html": html,
        "unread": unread,
    }


def message_status(conversation: int, seq: int, *, html: str, hops: list[dict[str, str]]) -> Event:
    return {"type": MESSAGE_STATUS, "conversation": conversation, "seq": seq, "html": html, "hops": hops}


def typing(conversation: int, *, jid: str, name: str, started: bool) -> Event:
    return {"type": TYPING, "conversation": conversation, "jid": jid, "name": name, "started": started}


def conversation_updated(conversation: int) -> Event:
    return {"type": CONVERSATION_UPDATED, "conversation": conversation}


def conversation_removed(conversation: int) -> Event:
    return {"type": CONVERSATION_REMOVED, "conversation": conversation}


def roster_changed() -> Event:
    return {"type": ROSTER_CHANGED}


def account_closed(reason: str) -> Event:
    return {"type": ACCOUNT_CLOSED, "reason": reason}


def profile_changed(jid: str, *, name: str, avatar_url: str) -> Event:
    """`jid` is now called `name` and shows `avatar_url` ("" for none): to everyone who has them on screen (their
    own tabs, people who list them as a contact, the members of conversations they are in)."""
    return {"type": PROFILE_CHANGED, "jid": jid, "name": name, "avatar_url": avatar_url}


# Closing code of a socket whose account an operator suspended (or whose password they reset): not retried.
CLOSE_ACCOUNT_CLOSED = 4403


# --- Publishing -------------------------------------------------------------------------------------------


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def session_group(session_key: str) -> str:
    """The group of the sockets opened by one signed-in session, so that signing that session out closes them
    (named by a hash of its key, which is a credential and so stays out of the layer's names)."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:32]


def publish(events: Iterable[tuple[int | None, Event]]) -> None:
    """After the current transaction commits (at once outside one), send each event to its user's group."""
    batch = [(user_id, event) for user_id, event in events if user_id is not None]
    if batch:
        transaction.on_commit(lambda: _dispatch(batch))


def notify_users(user_ids: Iterable[int | None], event: Event) -> None:
    """The same event to each of these users (each once)."""
    publish((user_id, event) for user_id in dict.fromkeys(user_ids))


_loop: asyncio.AbstractEventLoop | None = None
_waiting: deque[list[tuple[int, Event]]] = deque()
_draining: asyncio.Task[None] | None = None


def bind_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Publish from `loop` from now on (the process's serving loop; the latest one bound wins)."""
    global _loop
    _loop = loop


def _dispatch(batch: list[tuple[int, Event]]) -> None:
    loop = _loop
    if loop is not None and loop.is_running() and not loop.is_closed():
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            _enqueue(batch)
        else:
            loop.call_soon_threadsafe(_enqueue, batch)
        return
    try:
        async_to_sync(_send)(batch)
    except Exception:  # committed; a lost event is repaired by the next one or a reconnect (catch-up by seq)
        logger.exception("could not publish %d events", len(batch))


def _enqueue(batch: list[tuple[int, Event]]) -> None:
    """On the bound loop: queue the batch for the one draining task, which keeps commit order and ends when
    nothing is waiting (so no task outlives the work)."""
    global _draining
    _waiting.append(batch)
    if _draining is None or _draining.done():
        _draining = asyncio.get_running_loop().create_task(_drain(), context=contextvars.Context())


async def _drain() -> None:
    while _waiting:
        batch = _waiting.popleft()
        try:
            await _send(batch)
        except Exception:
            logger.exception("could not publish %d events", len(batch))


async def _send(batch: list[tuple[int, Event]]) -> None:
    layer = get_channel_layer()
    if isinstance(layer, RedisPubSubChannelLayer):
        await _publish_pipelined(layer, batch)
        return
    for user_id, event in batch:
        await layer.group_send(user_group(user_id), event)


async def _publish_pipelined(layer: RedisPubSubChannelLayer, batch: list[tuple[int, Event]]) -> None:
    """What `group_send` does for each event (serialise, PUBLISH to the group's channel), with every PUBLISH of
    the batch in one pipeline per Redis shard instead of one round trip each (a commit of 100 messages is 200
    publishes). It uses channels_redis's own naming, sharding, serialiser and connection (pinned 4.3.0: see
    requirements.txt), so subscribers cannot tell the difference."""
    inner = layer._get_layer()
    by_shard: dict[object, list[tuple[str, bytes]]] = {}
    for user_id, event in batch:
        channel = inner._get_group_channel_name(user_group(user_id))
        by_shard.setdefault(inner._get_shard(channel), []).append((channel, layer.serialize(event)))
    for shard, messages in by_shard.items():
        async with shard._lock:
            shard._ensure_redis()
            pipe = shard._redis.pipeline(transaction=False)
            for channel, data in messages:
                pipe.publish(channel, data)
            await pipe.execute()


# Open sockets per person in this process (a cap: IMWEB_MAX_SOCKETS_PER_PERSON), counted by `claim_socket`.
_sockets_of: dict[int, int] = {}
CLOSE_TOO_MANY_SOCKETS = 4429


def claim_socket(user_id: int) -> bool:
    """Count one more open socket of this person here, unless they are at the cap (then count nothing)."""
    from django.conf import settings

    if _sockets_of.get(user_id, 0) >= settings.IMWEB_MAX_SOCKETS_PER_PERSON:
        return False
    _sockets_of[user_id] = _sockets_of.get(user_id, 0) + 1
    return True


def release_socket(user_id: int) -> None:
    left = _sockets_of.get(user_id, 0) - 1
    if left > 0:
        _sockets_of[user_id] = left
    else:
        _sockets_of.pop(user_id, None)


class UserGroupSocket(AsyncWebsocketConsumer):
    """A socket in its user's group (`user_group`). Every socket kind of a user (the web UI's, the API stream)
    is in that group, so each also gets events meant for the others, and events newer than its process:
    Channels would close the socket on an event without a handler, so those are logged and skipped instead.

    Channels' own dispatch first runs `close_old_connections` on the database thread for every event, so each
    push to each socket queued behind the process's database work (a send batch, someone's page): at a few
    hundred messages a second that was most of a push's latency. Our handlers reach the database only through
    `database_sync_to_async`, which closes old connections around each call itself, so dispatch goes straight
    to the handler."""

    async def websocket_connect(self, message: dict) -> None:
        bind_loop(asyncio.get_running_loop())
        await super().websocket_connect(message)

    async def dispatch(self, message: dict) -> None:
        kind = str(message.get("type", ""))
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            if kind.startswith("websocket."):
                raise ValueError(f"No handler for message type {kind}")
            logger.debug("%s ignores event %r", type(self).__name__, kind[:60])
            return
        await handler(message)
