"""The user's WebSocket (one per open tab): a doorway that turns frames into action calls and events into
rendered fragments. It authenticates on connect, joins the user's group, and re-syncs everything it shows
on every (re)connect, so a missed push never leaves a screen stale.

Messages follow the delivery contract of `chat.actions.messages`: a `message.new` event is only a wake-up.
Each socket remembers, for the conversation its tab has open, the highest seq it has pushed, and on every
wake-up pushes exactly the stored messages after it (`messages_after`), so a dropped event is repaired by the
next one, and nothing is pushed twice. The tab tells the socket what it already has when it opens a
conversation (`conversation.open` with `after`), which is also what it says after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time

from channels.db import database_sync_to_async
from django.conf import settings
from django.template.loader import render_to_string

from accounts import actions
from accounts.contacts_views import render_contacts
from accounts.errors import AccountError
from accounts.events import UserGroupSocket, user_group
from accounts.models import User
from chat import actions as chat
from chat.actions.common import membership, parse_seq
from chat.actions.typing import TYPING_EXPIRES_SECONDS
from chat.errors import ChatError, NotFound
from chat.models import Message, Participant
from chat.views import render_conversation_list_top, render_list_top, render_messages, render_pane_head, render_statuses

logger = logging.getLogger(__name__)

# Comfortably above a 10,000-character message in UTF-8 (up to 4 bytes a character) plus the JSON around it.
MAX_FRAME_BYTES = 64 * 1024
CLOSE_UNAUTHENTICATED = 4401
# At most this many messages go out in one push; a longer gap is sent as several pushes in a row.
PUSH_PAGE = 100
# A tab says "typing" every few seconds; more often than this is ignored rather than fanned out.
TYPING_EVERY_SECONDS = 1.0
# The conversation list is re-rendered at most this often per socket: a burst of messages costs one render at
# its start and one at its end, not one each (the messages themselves are pushed at once).
LIST_EVERY_SECONDS = 0.5
# The socket keeps the user's row; it is read again after a contact-list event (profile, privacy and roster
# changes all send one) and at least this often.
USER_FRESH_SECONDS = 60.0
# Receipts re-render the statuses of the user's own messages among this many newest ones on screen.
STATUS_WINDOW = 50


def _render_error(text: str) -> str:
    return render_to_string("accounts/_feedback.html", {"error": text, "oob": True})


@database_sync_to_async
def _contacts_html(user: User) -> str:
    return render_contacts(None, user, oob=True)


@database_sync_to_async
def _list_html(user: User, open_id: int | None, row: int | None = None) -> tuple[str, int | None]:
    """The conversation list and its first conversation; with `row` (which was first on screen), that row
    alone when it still is (nothing moved)."""
    html = render_list_top(user, row, open_id=open_id) if row is not None else None
    if html is not None:
        return html, row
    return render_conversation_list_top(user, open_id=open_id, oob=True)


def _pushable(user: User, mine: Participant, after: int) -> tuple[str, int, set[str]]:
    """The messages after `after` as one inbox push, the highest seq in it (`after` when none), and who wrote
    them. `mine` is the socket's copy of the user's participation; messages_after checks it is still current."""
    items = chat.messages_after(user, mine.conversation_id, after, PUSH_PAGE)
    if not items:
        return "", after, set()
    return render_messages(user, mine, items, inbox=True), items[-1].seq, {m.sender_jid for m in items}


def _one_message(user: User, conversation_id: int, seq: int) -> str:
    mine = membership(user, conversation_id)
    return render_messages(user, mine, chat.messages_after(user, conversation_id, seq - 1, 1), inbox=True)


def _statuses(user: User, conversation_id: int, newest: int) -> str:
    mine = membership(user, conversation_id)
    low = max(0, newest - STATUS_WINDOW)
    items = chat.messages_after(user, conversation_id, low, STATUS_WINDOW)
    return render_statuses(user, mine, [m for m in items if m.sender_jid == user.jid])


def _one_status(user: User, conversation_id: int, seq: int) -> str:
    mine = membership(user, conversation_id)
    return render_statuses(user, mine, chat.messages_after(user, conversation_id, seq - 1, 1))


def _send(user: User, frame: dict[str, object]) -> Message:
    to = frame.get("conversation") if frame.get("conversation") not in (None, "") else frame.get("to")
    if not isinstance(to, (str, int)) or isinstance(to, bool):
        raise ChatError("Say which conversation (or which address) this message is for.")
    reply_to = frame.get("reply_to")
    return chat.send_message(
        user,
        to=to,
        body=frame.get("body"),  # type: ignore[arg-type]  (clean_body refuses anything but text)
        client_id=str(frame.get("client_id", "")),
        reply_to_seq=None if reply_to in (None, "") else reply_to,  # type: ignore[arg-type]
    )


class UserSocket(UserGroupSocket):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user_id: int = user.pk
        self.user_jid: str = user.jid
        self.user: User | None = user
        self.user_read_at = time.monotonic()
        # The user's participation in the open conversation (read on open, again when the conversation changes).
        self.mine: Participant | None = None
        self.resource = secrets.token_hex(12)
        self.heartbeat_task: asyncio.Task[None] | None = None
        # The conversation this tab shows, and per conversation the highest seq this socket has pushed.
        self.open_conversation: int | None = None
        self.last_sent: dict[int, int] = {}
        # Who is typing in the open conversation: jid → (name, monotonic time of their last refresh).
        self.typers: dict[str, tuple[str, float]] = {}
        self.list_sent_at = 0.0
        self.typing_sent_at = 0.0
        self.typing_key = ""
        self.list_task: asyncio.Task[None] | None = None
        # What the next list push must cover: the rows of these conversations, or (full) the whole list.
        self.list_rows: set[int] = set()
        self.list_full = False
        # The conversation at the top of the list this socket last sent.
        self.list_top: int | None = None
        # Subscribe first, then read state: an event between the two only causes one extra re-render.
        await self.channel_layer.group_add(user_group(self.user_id), self.channel_name)
        await self.accept()
        await database_sync_to_async(actions.open_session)(user, self.resource)
        # One frame: the contacts, the presence chooser and the conversation list, each swapped by id.
        await self.send(text_data=await _contacts_html(user) + await self._list(user))
        self.heartbeat_task = asyncio.ensure_future(self._heartbeat())

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "resource"):
            return
        for task in (self.heartbeat_task, self.list_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
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

    async def _user(self) -> User:
        """The user, read from the database at most every USER_FRESH_SECONDS or after a contact-list event."""
        if self.user is None or time.monotonic() - self.user_read_at > USER_FRESH_SECONDS:
            self.user = await database_sync_to_async(User.objects.get)(pk=self.user_id)
            self.user_read_at = time.monotonic()
        return self.user

    # --- Frames from the tab ------------------------------------------------------------------------------

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
            self.user = None  # a re-sync reads everything again
            user = await self._user()
            lists = await self._list(user)
            await self.send(text_data=await _contacts_html(user) + lists)
        elif kind == "message.send":
            await self._message_send(frame)
        elif kind == "conversation.open":
            await self._conversation_open(frame)
        elif kind == "conversation.close":
            self.open_conversation = None
            self.mine = None
        elif kind in ("typing.started", "typing.paused"):
            await self._typing(frame, kind == "typing.started")
        elif kind in ("mark.read", "mark.delivered"):
            await self._mark(frame, kind)
        else:
            await self.send(text_data=_render_error(f"Unknown request type {str(kind)[:40]!r}."))

    async def _message_send(self, frame: dict[str, object]) -> None:
        client_id = str(frame.get("client_id", ""))[:64]
        user = await self._user()
        try:
            message = await database_sync_to_async(_send)(user, frame)
        except (ChatError, AccountError) as exc:
            context = {"error": str(exc), "client_id": client_id, "conversation_id": frame.get("conversation", "")}
            await self.send(text_data=render_to_string("chat/_composer_error.html", context))
            return
        if message.conversation_id == self.open_conversation:
            # Do not wait for the wake-up (it may be lost): the sender sees the stored copy now.
            await self._push_new(message.conversation_id)
        else:
            # Sent from a tab that does not follow this conversation live (a first message to someone, or a
            # page scrolled back to a search hit): the tab opens the conversation's newest page to show it.
            html = render_to_string("chat/_opened.html", {"conversation_id": message.conversation_id})
            await self.send(text_data=html)

    async def _conversation_open(self, frame: dict[str, object]) -> None:
        user = await self._user()
        try:
            mine = await database_sync_to_async(membership)(user, frame.get("conversation"))
            after = parse_seq(frame.get("after", 0), "after")
        except ChatError as exc:
            await self.send(text_data=_render_error(str(exc)))
            return
        pk = mine.conversation_id
        self.open_conversation = pk
        self.mine = mine
        self.last_sent[pk] = after
        self.typers = {}
        await self._push_new(pk)

    async def _typing(self, frame: dict[str, object], started: bool) -> None:
        if started:
            # Throttled per conversation: a repeat for the same one is dropped, a frame naming another (or one
            # the user is not in, which must still be refused) goes through.
            now, key = time.monotonic(), str(frame.get("conversation"))[:40]
            if key == self.typing_key and now - self.typing_sent_at < TYPING_EVERY_SECONDS:
                return
            self.typing_sent_at, self.typing_key = now, key
        user = await self._user()
        try:
            await database_sync_to_async(chat.set_typing)(user, frame.get("conversation"), started)
        except ChatError as exc:
            await self.send(text_data=_render_error(str(exc)))

    async def _mark(self, frame: dict[str, object], kind: str) -> None:
        user = await self._user()
        mark = chat.mark_read if kind == "mark.read" else chat.mark_delivered
        try:
            await database_sync_to_async(mark)(user, frame.get("conversation"), frame.get("seq"))  # type: ignore[arg-type]
        except ChatError as exc:
            await self.send(text_data=_render_error(str(exc)))

    # --- Pushes -------------------------------------------------------------------------------------------

    async def _push_new(self, conversation_id: int) -> None:
        """Push the stored messages after the last one this socket sent for the open conversation."""
        mine = self.mine
        if conversation_id != self.open_conversation or mine is None:
            return
        user = await self._user()
        for _ in range(5):  # bounded: 5 pages of PUSH_PAGE; a longer gap is left to the next wake-up
            after = self.last_sent.get(conversation_id, 0)
            try:
                html, newest, senders = await database_sync_to_async(_pushable)(user, mine, after)
            except NotFound:
                self.open_conversation = None
                self.mine = None
                return
            if not html:
                return
            self.last_sent[conversation_id] = newest
            await self.send(text_data=html)
            if newest - after < PUSH_PAGE:
                # Whoever just wrote has stopped typing.
                if self.typers.keys() & senders:
                    self.typers = {jid: v for jid, v in self.typers.items() if jid not in senders}
                    await self._send_typing(conversation_id)
                return

    async def _refresh_list(self, row: int | None = None) -> None:
        """Re-render the conversation list now, or, if one went out less than LIST_EVERY_SECONDS ago, once
        at the end of that interval (however many events come meanwhile). With `row` (a new message there),
        only that conversation's row when nothing else changed meanwhile and it is still the first row."""
        if row is None:
            self.list_full = True
        else:
            self.list_rows.add(row)
        if self.list_task is not None:
            return
        wait = self.list_sent_at + LIST_EVERY_SECONDS - time.monotonic()
        if wait <= 0:
            await self._send_list()
        else:
            self.list_task = asyncio.ensure_future(self._list_later(wait))

    async def _send_list(self) -> None:
        rows, full = self.list_rows, self.list_full
        self.list_rows, self.list_full = set(), False
        self.list_sent_at = time.monotonic()
        row = next(iter(rows)) if len(rows) == 1 and not full else None
        await self.send(text_data=await self._list(await self._user(), row))

    async def _list(self, user: User, row: int | None = None) -> str:
        """The whole conversation list, or with `row` only that row when it was and still is the top one."""
        html, self.list_top = await _list_html(user, self.open_conversation, row if row == self.list_top else None)
        return html

    async def _list_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self.list_task = None
        try:
            await self._send_list()
        except Exception:  # the socket closed meanwhile; the next connect re-syncs
            logger.debug("conversation list push failed", exc_info=True)

    async def message_new(self, event: dict[str, object]) -> None:
        pk = int(event["conversation"])  # type: ignore[arg-type]
        await self._push_new(pk)
        await self._refresh_list(row=pk)

    async def conversation_request(self, event: dict[str, object]) -> None:
        await self.message_new(event)

    async def _message_changed(self, event: dict[str, object]) -> None:
        pk, seq = int(event["conversation"]), int(event["seq"])  # type: ignore[arg-type]
        if pk == self.open_conversation and seq <= self.last_sent.get(pk, 0):
            user = await self._user()
            with contextlib.suppress(NotFound):
                await self.send(text_data=await database_sync_to_async(_one_message)(user, pk, seq))

    async def message_edited(self, event: dict[str, object]) -> None:
        await self._message_changed(event)

    async def message_reactions(self, event: dict[str, object]) -> None:
        await self._message_changed(event)

    async def message_deleted(self, event: dict[str, object]) -> None:
        await self._message_changed(event)
        await self._refresh_list()

    async def _receipt(self, event: dict[str, object]) -> None:
        pk = int(event["conversation"])  # type: ignore[arg-type]
        if event.get("jid") == self.user_jid:  # this user read in another tab: unread counts changed
            await self._refresh_list()
            return
        if pk == self.open_conversation and self.last_sent.get(pk):
            user = await self._user()
            with contextlib.suppress(NotFound):
                html = await database_sync_to_async(_statuses)(user, pk, self.last_sent[pk])
                if html:
                    await self.send(text_data=html)

    async def receipt_read(self, event: dict[str, object]) -> None:
        await self._receipt(event)

    async def message_status(self, event: dict[str, object]) -> None:
        """A remote hop of one of the user's messages changed (handed over, failed): its status line again."""
        pk, seq = int(event["conversation"]), int(event["seq"])  # type: ignore[arg-type]
        if pk == self.open_conversation and seq <= self.last_sent.get(pk, 0):
            user = await self._user()
            with contextlib.suppress(NotFound):
                html = await database_sync_to_async(_one_status)(user, pk, seq)
                if html:
                    await self.send(text_data=html)

    async def receipt_delivered(self, event: dict[str, object]) -> None:
        await self._receipt(event)

    async def conversation_updated(self, event: dict[str, object]) -> None:
        user = await self._user()
        html = await self._list(user)
        if event.get("conversation") == self.open_conversation and self.open_conversation is not None:
            try:  # renamed, new topic, members, accepted: the header shows them, the messages use them
                self.mine = await database_sync_to_async(membership)(user, self.open_conversation)
                html += await database_sync_to_async(render_pane_head)(user, self.mine)
            except NotFound:
                self.open_conversation = self.mine = None
        await self.send(text_data=html)

    async def conversation_removed(self, event: dict[str, object]) -> None:
        if event.get("conversation") == self.open_conversation:
            self.open_conversation = self.mine = None
        await self.send(text_data=await self._list(await self._user()))

    async def typing_update(self, event: dict[str, object]) -> None:
        pk = event.get("conversation")
        jid = str(event.get("jid", ""))
        if pk != self.open_conversation or jid == self.user_jid:
            return
        if event.get("started"):
            self.typers[jid] = (str(event.get("name", jid)), time.monotonic())
        else:
            self.typers.pop(jid, None)
        await self._send_typing(pk)

    async def _send_typing(self, conversation_id: int) -> None:
        now = time.monotonic()
        self.typers = {j: v for j, v in self.typers.items() if now - v[1] < TYPING_EXPIRES_SECONDS}
        names = sorted(name for name, _ in self.typers.values())
        await self.send(
            text_data=render_to_string("chat/_typing.html", {"conversation_id": conversation_id, "names": names})
        )

    async def roster_changed(self, event: dict[str, object]) -> None:
        self.user = None  # the user's own profile or privacy settings may be what changed
        await self.send(text_data=await _contacts_html(await self._user()))
