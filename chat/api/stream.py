"""The API's event stream: a WebSocket at /api/v1/stream that sends a bot JSON events as they happen.

Authentication: a bearer token, in the upgrade request's `Authorization` header or as `?token=` (for clients
that cannot set headers; the query string ends up in access logs, so prefer the header). Cookies are never
read, so a browser page on another site cannot open a stream as its signed-in visitor; for the same reason
the stream needs no Origin check.

Delivery contract (chat.actions.messages, point 4, kept here on the client's behalf): the stream remembers
the last seq it sent per conversation (chat.cursor). A `message.new` event carries the message's JSON text,
made once by the delivery step; the stream forwards it when it is the next seq, drops a duplicate, and on a
gap first sends the stored messages it missed, read from the database (`messages_after`), so a lost push is
repaired by the next one and no message is sent twice. On connect it records where each conversation stands
(sent to the client in the `ready` event) and sends what comes after; a client that holds older messages
asks for the gap with `?since=<conversation>:<seq>,...` or a `{"type": "sync", "conversations": {"<id>":
<seq>}}` frame, and gets the catch-up first.

Events sent: ready, message, message_updated (edited, deleted, reactions), receipt, typing, presence,
contacts (the contact list changed: re-read GET /api/v1/contacts), conversation (joined, renamed, removed),
error, pong. Frames accepted: sync, read, delivered, typing, ping; each may carry a `ref` that the answer echoes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
from datetime import datetime

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from accounts import heartbeats
from accounts.actions.presence import Presence, close_session, open_session
from accounts.events import (
    CLOSE_ACCOUNT_CLOSED,
    CLOSE_TOO_MANY_SOCKETS,
    UserGroupSocket,
    claim_socket,
    release_socket,
    user_group,
)
from accounts.models import User
from accounts.roster import roster_view
from accounts.tokens import authenticate_token
from chat import actions, frames, queries
from chat.access import conversation_pk, membership, parse_seq
from chat.actions.typing import set_typing
from chat.api.auth import query_params, token_from_scope
from chat.api.errors import DOMAIN_ERRORS, describe
from chat.api.schemas import message_json, presence_out
from chat.cursor import Cursor, Verdict
from chat.errors import ChatError, InvalidArgument, NotFound
from chat.models import Message, Participant

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024
PAGE = 200
MAX_SYNC_CONVERSATIONS = 500
CLOSE_UNAUTHENTICATED = 4401


def _start_points(user: User, since: dict[int, int]) -> tuple[dict[int, int], list[int]]:
    """Per current conversation: the seq after which this stream sends messages (the newest one, unless the
    client asked for a catch-up from an older seq); and the asked-for conversations the user is not in."""
    rows = Participant.objects.filter(user=user, left_at__isnull=True).values_list(
        "conversation_id", "conversation__last_seq"
    )
    points = {pk: min(last_seq, since.get(pk, last_seq)) for pk, last_seq in rows}
    return points, sorted(pk for pk in since if pk not in points)


def _parse_since(text: str) -> tuple[dict[int, int], list[str]]:
    """`12:40,13:7` → {12: 40, 13: 7}, with a message for each part that is not `<conversation>:<seq>`."""
    wanted: dict[int, int] = {}
    problems = []
    for part in filter(None, text.split(",")[:MAX_SYNC_CONVERSATIONS]):
        conversation, _, seq = part.partition(":")
        try:
            wanted[conversation_pk(conversation)] = parse_seq(seq, "since")
        except (NotFound, InvalidArgument):
            problems.append(part[:40])
    return wanted, problems


def _baseline(user: User, pk: int, since: datetime) -> int | None:
    """For a conversation this stream did not know (a new one, or a room the user just joined): the seq of the
    last message stored before the stream connected, so everything newer is sent. None if not a member."""
    try:
        membership(user, pk)
    except NotFound:
        return None
    before = Message.objects.filter(conversation_id=pk, created_at__lt=since).order_by("-seq")
    return before.values_list("seq", flat=True).first() or 0


def _presence_key(presence: Presence | None) -> tuple | None:
    return None if presence is None else (presence.show, presence.status, presence.last_seen)


def _roster_state(user_id: int) -> tuple[dict[str, tuple], dict[str, Presence | None]]:
    """What the stream compares on every contact-list wake-up: the rows, and each contact's presence."""
    user = User.objects.get(pk=user_id)
    view = roster_view(user)
    rows: dict[str, tuple] = {}
    presence: dict[str, Presence | None] = {user.jid: view.me}
    for row in [*(r for group in view.groups for r in group.rows), *view.offline]:
        rows[row.jid] = (row.name, row.item.subscription, row.pending_out, tuple(row.group_names))
        presence[row.jid] = row.presence
    for request in view.requests:
        rows[f"request:{request.jid}"] = (request.message,)
    return rows, presence


class ApiStream(UserGroupSocket):
    async def connect(self) -> None:
        self.user: User | None = None
        token = token_from_scope(self.scope)
        row = await database_sync_to_async(authenticate_token)(token) if token else None
        await self.accept()
        if row is None:
            await self._send_error("unauthenticated", "Send a valid API token (Authorization: Bearer <token>).")
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not claim_socket(row.user.pk):
            await self._send_error("too_many_sockets", "Too many streams and tabs are open for this account.")
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        self.user = row.user
        self.token = token
        self.budget = frames.FrameBudget()
        self.connected_at = timezone.now()
        # Subscribe first, then read where conversations stand: a message stored in between is sent once,
        # by the catch-up or by its wake-up, never lost (the sent-seq map de-duplicates).
        await self.channel_layer.group_add(user_group(self.user.pk), self.channel_name)
        since, problems = _parse_since(query_params(self.scope).get("since", ""))
        self.cursor = Cursor()
        points, unknown = await database_sync_to_async(_start_points)(self.user, since)
        for pk, seq in points.items():
            self.cursor.follow(pk, seq)
        self.roster, self.presence = await database_sync_to_async(_roster_state)(self.user.pk)
        await self._send(
            {
                "type": "ready",
                "jid": self.user.jid,
                "conversations": {str(pk): seq for pk, seq in sorted(points.items())},
            }
        )
        for part in problems:
            await self._send_error("invalid_argument", f"Cannot catch up {part!r}: use <conversation>:<seq>.")
        for pk in unknown:
            await self._send_error("not_found", str(NotFound()), conversation=str(pk))
        for pk in sorted(points):
            await self._deliver(pk)
        # The stream is a connected client like a browser tab: while it is open the user is online.
        self.resource = f"api-{secrets.token_hex(10)}"
        await database_sync_to_async(open_session)(self.user, self.resource)
        heartbeats.for_loop().keep(self.resource, self._reopen_session)
        self.keepalive = asyncio.ensure_future(self._keep_alive())

    async def disconnect(self, code: int) -> None:
        if self.user is None:
            return
        release_socket(self.user.pk)
        await self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)
        keepalive = getattr(self, "keepalive", None)
        if keepalive is not None:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
            heartbeats.for_loop().drop(self.resource)
            await database_sync_to_async(close_session)(self.resource)

    async def _keep_alive(self) -> None:
        """End the stream once its token is revoked or its user deactivated (checked on the presence beat; the
        presence session itself is refreshed with the process's others, accounts.heartbeats)."""
        while True:
            await asyncio.sleep(settings.IMWEB_PRESENCE_HEARTBEAT_SECONDS)
            try:
                if await database_sync_to_async(authenticate_token)(self.token) is None:
                    await self._send_error("unauthenticated", "This token was revoked.")
                    await self.close(code=CLOSE_UNAUTHENTICATED)
                    return
            except Exception:
                logger.exception("API stream keep-alive failed for %s", self.resource)

    async def _reopen_session(self) -> None:
        await database_sync_to_async(open_session)(self.user, self.resource)

    async def account_closed(self, event: dict) -> None:
        """An operator suspended the account or ended its sessions: the stream ends at once (its token no longer
        works either)."""
        suspended = event.get("reason") == "suspended"
        text = "This account was suspended by the service's operators." if suspended else "Signed out by an operator."
        await self._send_error("account_closed", text)
        await self.close(code=CLOSE_ACCOUNT_CLOSED if suspended else CLOSE_UNAUTHENTICATED)

    # --- Sending ------------------------------------------------------------------------------------------

    async def _send(self, event: dict) -> None:
        await self.send(text_data=json.dumps(event, default=str, ensure_ascii=False))

    async def _send_error(self, code: str, message: str, ref: object = None, **extra: object) -> None:
        event = {"type": "error", "code": code, "message": message, **extra}
        if ref is not None:
            event["ref"] = ref
        await self._send(event)

    @database_sync_to_async
    def _page(self, pk: int, after: int) -> list[dict]:
        assert self.user is not None
        return [message_json(m, self.user.jid) for m in queries.messages_after(self.user, pk, after, PAGE)]

    async def _deliver(self, pk: int, *, asked: bool = False) -> None:
        """Send every stored message of conversation `pk` after the last one this stream sent, page by page.
        `asked`: the client asked for it (a sync), so its frame budget pays for the pages."""
        while True:
            after = self.cursor.last(pk)
            if after is None:
                return
            try:
                page = await self._page(pk, after)
            except NotFound:  # the user left or was removed meanwhile
                self.cursor.forget(pk)
                return
            for message in page:
                await self._send({"type": "message", "conversation": pk, "seq": message["seq"], "message": message})
                self.cursor.advance(pk, message["seq"])
            if asked:
                self.budget.charge(len(page) * frames.CATCH_UP_COST_PER_MESSAGE)
            if len(page) < PAGE:
                return

    async def _know(self, pk: object, seq: int | None = None) -> int | None:
        """The conversation id of an event, followed from its baseline when it is new to this stream (a first
        message, seq 1, needs no look-up)."""
        if not isinstance(pk, int):
            return None
        if not self.cursor.follows(pk):
            if seq == 1:
                self.cursor.follow(pk, 0)
                return pk
            baseline = await database_sync_to_async(_baseline)(self.user, pk, self.connected_at)
            if baseline is None:
                return None
            self.cursor.follow(pk, baseline)
        return pk

    # --- Events from the user's group (accounts.events) ---------------------------------------------------

    async def message_new(self, event: dict) -> None:
        seq = event.get("seq")
        pk = await self._know(event.get("conversation"), seq)
        if pk is None or not isinstance(seq, int):
            return
        verdict = self.cursor.offer(pk, seq)
        if verdict is Verdict.FORWARD:
            await self.send(text_data=event["api"])
            self.cursor.advance(pk, seq)
        elif verdict is Verdict.GAP:
            await self._deliver(pk)

    async def message_changed(self, event: dict) -> None:
        pk = event.get("conversation")
        if isinstance(pk, int) and self.cursor.follows(pk):
            await self.send(text_data=event["api"])

    async def message_status(self, event: dict) -> None:
        """A remote hop of one of the user's messages changed (handed over, failed): where each copy is now."""
        pk, seq = event.get("conversation"), event.get("seq")
        if isinstance(pk, int) and self.cursor.follows(pk):
            await self._send({"type": "status", "conversation": pk, "seq": seq, "hops": event.get("hops", [])})

    async def receipt(self, event: dict) -> None:
        await self._send(
            {
                "type": "receipt",
                "kind": event.get("kind"),
                "conversation": event.get("conversation"),
                "seq": event.get("seq"),
                "jid": event.get("jid"),
            }
        )

    async def typing_update(self, event: dict) -> None:
        if event.get("jid") == self.user.jid:
            return
        await self._send(
            {
                "type": "typing",
                "conversation": event.get("conversation"),
                "jid": event.get("jid"),
                "name": event.get("name"),
                "state": "started" if event.get("started") else "paused",
            }
        )

    async def conversation_updated(self, event: dict) -> None:
        pk = await self._know(event.get("conversation"))
        if pk is not None:
            await self._send({"type": "conversation", "change": "updated", "conversation": pk})

    async def conversation_removed(self, event: dict) -> None:
        pk = event.get("conversation")
        if isinstance(pk, int):
            self.cursor.forget(pk)
            await self._send({"type": "conversation", "change": "removed", "conversation": pk})

    async def roster_changed(self, event: dict) -> None:
        """The contact list or someone's presence changed (the event does not say which): compare and tell."""
        assert self.user is not None
        rows, presence = await database_sync_to_async(_roster_state)(self.user.pk)
        if rows != self.roster:
            await self._send({"type": "contacts"})
        for jid, now in presence.items():
            if _presence_key(now) != _presence_key(self.presence.get(jid)):
                out = presence_out(now)
                await self._send(
                    {
                        "type": "presence",
                        "jid": jid,
                        "show": out.show if out else "unknown",
                        "status": out.status if out else "",
                    }
                )
        self.roster, self.presence = rows, presence

    async def profile_changed(self, event: dict) -> None:
        """Someone's display name or avatar changed (a contact, a member of a conversation, or the user)."""
        await self._send(
            {
                "type": "profile",
                "jid": event.get("jid"),
                "name": event.get("name"),
                "avatar_url": event.get("avatar_url"),
            }
        )

    # --- Frames from the client ---------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None:
            return
        try:
            frame = frames.decode(text_data, bytes_data, MAX_FRAME_BYTES)
        except frames.FrameError as exc:
            await self._send_error(exc.code, str(exc))
            return
        ref = frame.get("ref")
        wait = self.budget.spend()
        if wait:
            await self._send_error(
                "slow_down", f"Too many frames at once. Try again in {math.ceil(wait)} s.", retry_after=math.ceil(wait)
            )
            return
        if ref is not None and not (isinstance(ref, (str, int)) and len(str(ref)) <= 64):
            await self._send_error("invalid_frame", "ref must be a string or number of at most 64 characters.")
            return
        kind = frame["type"]
        handler = {
            "sync": self._sync_frame,
            "read": self._marker,
            "delivered": self._marker,
            "typing": self._typing_frame,
            "ping": self._ping,
        }.get(kind)
        if handler is None:
            await self._send_error("unknown_type", f"Unknown frame type {kind[:40]!r}.", ref)
            return
        try:
            await handler(frame, ref)
        except DOMAIN_ERRORS as exc:
            error = describe(exc)
            await self._send_error(error.code, error.message, ref)

    async def _ping(self, frame: dict, ref: object) -> None:
        await self._send({"type": "pong", **({"ref": ref} if ref is not None else {})})

    async def _sync_frame(self, frame: dict, ref: object) -> None:
        wanted = frame.get("conversations")
        if not isinstance(wanted, dict) or len(wanted) > MAX_SYNC_CONVERSATIONS:
            raise InvalidArgument(
                f'sync needs "conversations": {{"<id>": <seq>, ...}}, at most {MAX_SYNC_CONVERSATIONS} of them.'
            )
        for key, seq in wanted.items():
            try:
                pk = conversation_pk(key)
                after = parse_seq(seq, "seq")
                await database_sync_to_async(membership)(self.user, pk)
            except ChatError as exc:
                error = describe(exc)
                await self._send_error(error.code, error.message, ref, conversation=str(key)[:40])
                continue
            # Rewind to what the client holds, then send everything after it (de-duplicated by seq from then on).
            self.cursor.follow(pk, after)
            await self._deliver(pk, asked=True)
        await self._send({"type": "synced", **({"ref": ref} if ref is not None else {})})

    async def _marker(self, frame: dict, ref: object) -> None:
        action = actions.mark_read if frame["type"] == "read" else actions.mark_delivered
        conversation = frame.get("conversation")
        seq = await database_sync_to_async(action)(self.user, conversation, frame.get("seq"))
        answer = {"type": f"{frame['type']}_marker", "conversation": conversation_pk(conversation), "seq": seq}
        await self._send({**answer, **({"ref": ref} if ref is not None else {})})

    async def _typing_frame(self, frame: dict, ref: object) -> None:
        state = frame.get("state")
        if state not in ("started", "paused"):
            raise InvalidArgument('typing needs "state": "started" or "paused".')
        await database_sync_to_async(set_typing)(self.user, frame.get("conversation"), state == "started")
