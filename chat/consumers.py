"""The user's WebSocket (one per open tab): a doorway that turns frames into action calls and forwards what the
delivery step published. It authenticates on connect, joins the user's group, and re-syncs what the page shows
on every (re)connect, so a missed push never leaves a screen stale.

Messages follow the delivery contract of `chat.actions.messages`. A `message.new` event carries the message
already rendered (chat.delivery); for the conversation its tab has open, the socket forwards it as it is when
it is the next seq it expects (chat.cursor), drops a duplicate, and on a gap catches up from the database
first. The tab tells the socket what it already holds when it opens a conversation (`conversation.open` with
`after`), which is also what it says after a reconnect. Every other conversation only moves its list row and
unread count, which ride on the same event. Nothing here reads the database for a push in the common case.

Every other signed-in page (Profile, search results, settings) opens the same socket with `?presence=1`
(static/js/presence.js): a presence session and nothing more. It skips the chat's first frame and every
event that only redraws the chat, takes idle/active frames, marks what arrives for its user delivered (their
device has it), and says when their own name or avatar changed, in JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.utils.html import format_html

from accounts import actions, events, heartbeats
from accounts.contacts_views import render_contacts
from accounts.events import (
    CLOSE_ACCOUNT_CLOSED,
    CLOSE_TOO_MANY_SOCKETS,
    UserGroupSocket,
    claim_socket,
    release_socket,
    session_group,
    user_group,
)
from accounts.models import User
from chat import actions as chat
from chat import batching, delivery, fragments, frames, queries
from chat.access import membership, parse_seq
from chat.actions.messages import SendRequest, Sent
from chat.actions.typing import TYPING_EXPIRES_SECONDS
from chat.cursor import Cursor, Verdict
from chat.errors import ChatError, NotFound, SlowDown, StorageUnavailable
from chat.models import Participant
from imweb import ratelimit

logger = logging.getLogger(__name__)

# Comfortably above a 10,000-character message in UTF-8 (up to 4 bytes a character) plus the JSON around it.
MAX_FRAME_BYTES = 64 * 1024
CLOSE_UNAUTHENTICATED = 4401
TOO_MANY_SOCKETS = "imweb is open in too many tabs at once; close some and reload this one."
# A catch-up sends pages of this many messages, at most CATCH_UP_PAGES of them for one gap or open; the rest
# of a longer gap is caught up at the next push (the cursor sees the gap again) or when the tab scrolls.
CATCH_UP_PAGE = 200
# Close codes of a socket whose page is going away (1001: navigation, reload, a closed tab) or whose connection
# dropped (1006), and how long its presence session outlives it so that the next page can take over unseen.
LEAVING_CODES = frozenset({1001, 1006})
LEAVING_GRACE_SECONDS = 3.0
# How long after its wait a refused send may take to come back before later sends stop waiting for it.
HELD_SEND_GRACE_SECONDS = 30
CATCH_UP_PAGES = 5
# A tab says "typing" every few seconds; more often than this is ignored rather than fanned out.
TYPING_EVERY_SECONDS = 1.0
# The contact list is re-rendered at most this often per socket: a burst of presence changes (people coming
# online after a restart) costs one render at its start and one at its end.
CONTACTS_EVERY_SECONDS = 0.5
# The socket keeps the user's row; it is read again after a contact-list event (profile, privacy and roster
# changes all send one) and at least this often.
USER_FRESH_SECONDS = 60.0
# What a presence-only socket (`/ws/?presence=1`) does with events: only these reach a handler; the rest only
# redraw the chat, which that page does not show.
PRESENCE_EVENTS = frozenset({events.MESSAGE_NEW, events.ACCOUNT_CLOSED, events.PROFILE_CHANGED})
PRESENCE_FRAMES = frozenset({"presence.idle", "presence.active"})


def _presence_only(scope: dict) -> bool:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return query.get("presence", [""])[0] == "1"


@database_sync_to_async
def _contacts_html(user: User) -> str:
    return render_contacts(None, user, oob=True)


@database_sync_to_async
def _list_html(user: User, open_id: int | None) -> str:
    return fragments.conversation_list_for(user, open_id=open_id, oob=True)


def _catch_up_page(user: User, mine: Participant, after: int) -> tuple[str, int]:
    """The stored messages after `after` (one page) as this user sees them, and the highest seq in it."""
    items = queries.messages_after(user, mine.conversation_id, after, CATCH_UP_PAGE)
    if not items:
        return "", after
    return fragments.messages_for(user, mine, items), items[-1].seq


class UserSocket(UserGroupSocket):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user_id: int = user.pk
        self.user_jid: str = user.jid
        self.claimed = claim_socket(user.pk)
        if not self.claimed:
            await self.accept()
            await self.send(text_data=fragments.error(TOO_MANY_SOCKETS))
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        self.user: User | None = user
        self.user_read_at = time.monotonic()
        self.presence_only = _presence_only(self.scope)
        # Presence-only: the newest seq per conversation to mark delivered, and the task that does it.
        self.to_deliver: dict[int, int] = {}
        self.delivered: dict[int, int] = {}
        self.deliver_task: asyncio.Task[None] | None = None
        # The conversation this tab shows, the user's participation in it, and how far this socket has sent it.
        self.open_conversation: int | None = None
        self.mine: Participant | None = None
        self.cursor = Cursor()
        self.budget = frames.FrameBudget()
        self.resource = secrets.token_hex(12)
        self.contacts_task: asyncio.Task[None] | None = None
        self.contacts_sent_at = 0.0
        # Who is typing in the open conversation: jid → (name, monotonic time of their last refresh).
        self.typers: dict[str, tuple[str, float]] = {}
        self.typing_sent_at = 0.0
        self.typing_key = ""
        # The first send refused for now and not yet sent again, and until when (ratelimit.clock time) it was told
        # to wait: see _message_send.
        self.held_send = ""
        self.held_until = 0.0
        # Subscribe first, then read state: an event between the two only causes one extra re-render.
        await self.channel_layer.group_add(user_group(self.user_id), self.channel_name)
        # And the group of the signed-in session it came with: signing that session out closes it (accounts.mfa).
        key = getattr(self.scope.get("session"), "session_key", None)
        self.session_group = session_group(key) if key else None
        if self.session_group:
            await self.channel_layer.group_add(self.session_group, self.channel_name)
        await self.accept()
        await database_sync_to_async(actions.open_session)(user, self.resource)
        if not self.presence_only:
            # One frame: the contacts, the presence chooser and the conversation list, each swapped by id.
            await self.send(text_data=await _contacts_html(user) + await _list_html(user, None))
        heartbeats.for_loop().keep(self.resource, self._reopen_session)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "claimed", False):
            release_socket(self.user_id)
        if not hasattr(self, "resource"):
            return
        heartbeats.for_loop().drop(self.resource)
        for task in (self.contacts_task, self.deliver_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.channel_layer.group_discard(user_group(self.user_id), self.channel_name)
        if getattr(self, "session_group", None):
            await self.channel_layer.group_discard(self.session_group, self.channel_name)
        if code in LEAVING_CODES:
            # The page went (a link, a reload) or the network dropped: the next page's socket is usually a moment
            # away. Keeping the session a little longer means contacts (and remote servers, which would be sent
            # an unavailable and an available presence) see no Offline blink on every click.
            with contextlib.suppress(asyncio.CancelledError):  # the process stopping: close it now all the same
                await asyncio.sleep(LEAVING_GRACE_SECONDS)
        await database_sync_to_async(actions.close_session)(self.resource)

    async def _reopen_session(self) -> None:
        """The sweeper closed this tab's presence session (the database was out of reach): online again."""
        user = await database_sync_to_async(User.objects.get)(pk=self.user_id)
        await database_sync_to_async(actions.open_session)(user, self.resource)

    async def _user(self) -> User:
        """The user, read from the database at most every USER_FRESH_SECONDS or after a contact-list event."""
        if self.user is None or time.monotonic() - self.user_read_at > USER_FRESH_SECONDS:
            self.user = await database_sync_to_async(User.objects.get)(pk=self.user_id)
            self.user_read_at = time.monotonic()
        return self.user

    async def _push(self, *parts: str) -> None:
        html = fragments.inbox(*parts)
        if html:
            await self.send(text_data=html)

    # --- Frames from the tab ------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = frames.decode(text_data, bytes_data, MAX_FRAME_BYTES)
        except frames.FrameError as exc:
            text = (
                f"That was too large (over {MAX_FRAME_BYTES // 1024} KB)."
                if exc.code == "frame_too_large"
                else "The server did not understand that request."
            )
            await self.send(text_data=fragments.error(text))
            return
        kind = frame["type"]
        if self.presence_only and kind not in PRESENCE_FRAMES:
            return  # a page without the chat asks for nothing else; it gets no HTML to place either
        wait = self.budget.spend() if kind != "message.send" else 0.0  # sends have their own limits
        if wait:
            if self.presence_only:
                return
            await self.send(text_data=fragments.error(f"Too many requests at once. Try again in {math.ceil(wait)} s."))
            return
        if kind in ("presence.idle", "presence.active"):
            await database_sync_to_async(actions.set_session_idle)(self.resource, kind == "presence.idle")
        elif kind == "sync":
            self.user = None  # a re-sync reads everything again
            user = await self._user()
            lists = await _list_html(user, self.open_conversation)
            await self.send(text_data=await _contacts_html(user) + lists)
            self.budget.charge(frames.SYNC_COST)
        elif kind == "message.send":
            await self._message_send(frame)
        elif kind == "conversation.open":
            await self._conversation_open(frame)
        elif kind == "conversation.close":
            self._close_conversation()
        elif kind in ("typing.started", "typing.paused"):
            await self._typing(frame, kind == "typing.started")
        elif kind in ("mark.read", "mark.delivered"):
            await self._mark(frame, kind)
        else:
            await self.send(text_data=fragments.error(f"Unknown request type {str(kind)[:40]!r}."))

    async def _message_send(self, frame: dict[str, object]) -> None:
        client_id = str(frame.get("client_id", ""))[:64]
        user = await self._user()
        to = frame.get("conversation") if frame.get("conversation") not in (None, "") else frame.get("to")
        if not isinstance(to, (str, int)) or isinstance(to, bool):
            result: object = ChatError("Say which conversation (or which address) this message is for.")
        elif self._held_back(client_id):
            result = SlowDown(max(1, math.ceil(self.held_until - ratelimit.clock())))
        else:
            files = frame.get("attachments") or ()
            request = SendRequest(user, to, frame.get("body"), client_id, frame.get("reply_to"), files)
            try:
                result = await batching.send(request)
            except Exception:  # a fault of ours: the tab keeps the message and retries it (same client id)
                logger.exception("a send from %s failed", self.user_jid)
                result = StorageUnavailable()
        if isinstance(result, Exception):
            retry_after = getattr(result, "retry_after", None)
            if retry_after and not self.held_send:
                self.held_send, self.held_until = client_id, ratelimit.clock() + retry_after
            error = fragments.composer_error(str(result), client_id, frame.get("conversation", ""), retry_after)
            await self.send(text_data=error)
            return
        assert isinstance(result, Sent)
        message = result.message
        if message.conversation_id != self.open_conversation:
            # Sent from a tab that does not follow this conversation live (a first message to someone, or a
            # page scrolled back to a search hit): the tab opens the conversation's newest page to show it.
            await self.send(text_data=fragments.opened(message.conversation_id))
        elif not result.created and self.cursor.offer(message.conversation_id, message.seq) is not Verdict.DUPLICATE:
            # A retry of a message already stored whose first push this socket never sent: send what it missed.
            await self._catch_up()

    def _held_back(self, client_id: str) -> bool:
        """Whether this send must wait for an earlier one. A send refused for now (too fast, or the storage away)
        waits in the tab, which sends it again after the wait, with what was written after it, in the order they
        were written. Nothing written later may be stored before it, even when the rate window gets room while
        later sends are still arriving: those are refused too until the refused one comes back (or, should it
        never come back, a while after its wait ended)."""
        if not self.held_send:
            return False
        if client_id == self.held_send or ratelimit.clock() > self.held_until + HELD_SEND_GRACE_SECONDS:
            self.held_send = ""
            return False
        return True

    async def _conversation_open(self, frame: dict[str, object]) -> None:
        user = await self._user()
        try:
            mine = await database_sync_to_async(membership)(user, frame.get("conversation"))
            after = parse_seq(frame.get("after", 0), "after")
        except ChatError as exc:
            await self.send(text_data=fragments.error(str(exc)))
            return
        self._close_conversation()
        self.open_conversation, self.mine = mine.conversation_id, mine
        self.cursor.follow(mine.conversation_id, after)
        await self._catch_up(asked=True)
        # The statuses of the tab's own messages it already holds, as they are now (they may have moved while
        # the page loaded, before this socket listened).
        await self._push(await database_sync_to_async(delivery.own_statuses)(mine, after))

    def _close_conversation(self) -> None:
        if self.open_conversation is not None:
            self.cursor.forget(self.open_conversation)
        self.open_conversation = self.mine = None
        self.typers = {}

    async def _catch_up(self, *, asked: bool = False) -> None:
        """Send the open conversation's stored messages after the last one this socket sent (bounded). `asked`:
        the tab asked for it (opening the conversation), so its frame budget pays for what is rendered."""
        mine, pk = self.mine, self.open_conversation
        if mine is None or pk is None:
            return
        user = await self._user()
        for _ in range(CATCH_UP_PAGES):
            after = self.cursor.last(pk) or 0
            try:
                html, newest = await database_sync_to_async(_catch_up_page)(user, mine, after)
            except NotFound:  # no longer a member
                self._close_conversation()
                return
            if not html:
                return
            self.cursor.advance(pk, newest)
            await self._push(html)
            if asked:
                self.budget.charge((newest - after) * frames.CATCH_UP_COST_PER_MESSAGE)
            if newest - after < CATCH_UP_PAGE:
                return

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
            await self.send(text_data=fragments.error(str(exc)))

    async def _mark(self, frame: dict[str, object], kind: str) -> None:
        user = await self._user()
        mark = chat.mark_read if kind == "mark.read" else chat.mark_delivered
        try:
            await database_sync_to_async(mark)(user, frame.get("conversation"), frame.get("seq"))  # type: ignore[arg-type]
        except ChatError as exc:
            await self.send(text_data=fragments.error(str(exc)))

    # --- Events from the user's group (accounts.events) ---------------------------------------------------

    async def dispatch(self, message: dict) -> None:
        """A presence-only socket hears only PRESENCE_EVENTS; a new message from someone else is marked
        delivered there (the page does not show it, but the person's device has it)."""
        kind = message.get("type")
        if getattr(self, "presence_only", False) and kind in events.EVENT_TYPES:
            if kind == events.MESSAGE_NEW:
                self._deliver_later(message)
                return
            if kind not in PRESENCE_EVENTS:
                return
        await super().dispatch(message)

    def _deliver_later(self, event: dict[str, object]) -> None:
        if event.get("sender") == self.user_jid or event.get("quiet"):
            return  # one's own message, or one waiting in Requests (those say nothing until accepted)
        pk, seq = int(event["conversation"]), int(event["seq"])  # type: ignore[arg-type]
        if seq <= max(self.to_deliver.get(pk, 0), self.delivered.get(pk, 0)):
            return
        self.to_deliver[pk] = seq
        if self.deliver_task is None:
            self.deliver_task = asyncio.ensure_future(self._deliver_markers())

    async def _deliver_markers(self) -> None:
        """Move the delivery markers collected meanwhile, one call per conversation (a burst costs one)."""
        try:
            while self.to_deliver:
                pk, seq = self.to_deliver.popitem()
                self.delivered[pk] = seq
                try:
                    await database_sync_to_async(chat.mark_delivered)(await self._user(), pk, seq)
                except ChatError:  # no longer a member
                    pass
        except Exception:  # the database is out of reach: the chat page marks them when it opens
            logger.warning("could not mark messages delivered for %s", self.user_jid, exc_info=True)
        finally:
            self.deliver_task = None

    def _row(self, event: dict[str, object]) -> list[str]:
        row = str(event.get("row") or "")
        if not row:
            return []
        return [row, fragments.unread_badge(int(event["conversation"]), int(event.get("unread") or 0))]  # type: ignore[arg-type]

    async def message_new(self, event: dict[str, object]) -> None:
        pk, seq = int(event["conversation"]), int(event["seq"])  # type: ignore[arg-type]
        parts: list[str] = []
        typing = ""
        if pk == self.open_conversation:
            verdict = self.cursor.offer(pk, seq)
            if verdict is Verdict.FORWARD:
                parts.append(str(event["html"]))
                self.cursor.advance(pk, seq)
            elif verdict is Verdict.GAP:
                await self._catch_up()
            sender = str(event.get("sender", ""))
            if sender in self.typers and verdict is not Verdict.DUPLICATE:  # whoever just wrote stopped typing
                del self.typers[sender]
                typing = self._typing_line(pk)
        html = fragments.inbox(*parts, *self._row(event)) + typing
        if html:
            await self.send(text_data=html)

    async def message_changed(self, event: dict[str, object]) -> None:
        pk, seq = int(event["conversation"]), int(event["seq"])  # type: ignore[arg-type]
        parts = []
        if pk == self.open_conversation and seq <= (self.cursor.last(pk) or 0):
            parts.append(str(event["html"]))
        await self._push(*parts, *self._row(event))

    async def receipt(self, event: dict[str, object]) -> None:
        pk = int(event["conversation"])  # type: ignore[arg-type]
        parts = []
        if event.get("unread") is not None:  # this user read in another tab: their unread count moved
            parts.append(fragments.unread_badge(pk, int(event["unread"])))  # type: ignore[arg-type]
        if pk == self.open_conversation and event.get("html"):
            parts.append(str(event["html"]))
        await self._push(*parts)

    async def message_status(self, event: dict[str, object]) -> None:
        """A remote hop of one of the user's messages changed (handed over, failed): its status line again."""
        if event.get("conversation") == self.open_conversation and event.get("html"):
            await self._push(str(event["html"]))

    async def conversation_updated(self, event: dict[str, object]) -> None:
        user = await self._user()
        html = await _list_html(user, self.open_conversation)
        if event.get("conversation") == self.open_conversation:
            html += await self._pane_head(user)
        await self.send(text_data=html)

    async def _pane_head(self, user: User) -> str:
        """The open conversation's header again (renamed, new topic, members, accepted, someone's new name),
        with the membership the messages use; "" when none is open or the user is no longer a member."""
        if self.open_conversation is None:
            return ""
        try:
            self.mine = await database_sync_to_async(membership)(user, self.open_conversation)
            return await database_sync_to_async(fragments.pane_head_for)(user, self.mine)
        except NotFound:
            self._close_conversation()
            return ""

    async def profile_changed(self, event: dict[str, object]) -> None:
        """Someone on screen has a new display name or avatar: the conversation list and the open header again
        (their titles), and the new values for static/js/chat.js to put on the messages shown (data-sender)."""
        jid, name, avatar = str(event.get("jid", "")), str(event.get("name", "")), str(event.get("avatar_url", ""))
        if jid == self.user_jid:
            self.user = None  # one's own name: the socket's copy of the user is stale
        if self.presence_only:
            if jid == self.user_jid:  # the page's top bar shows it
                await self.send(
                    text_data=json.dumps({"type": "profile", "jid": jid, "name": name, "avatar_url": avatar})
                )
            return
        user = await self._user()
        html = await _list_html(user, self.open_conversation) + await self._pane_head(user)
        live = format_html(
            '<div hx-swap-oob="beforeend:body"><span class="live-profile" hidden data-jid="{}" data-name="{}"'
            ' data-avatar="{}"></span></div>',
            jid,
            name,
            avatar,
        )
        await self.send(text_data=html + live)

    async def conversation_removed(self, event: dict[str, object]) -> None:
        if event.get("conversation") == self.open_conversation:
            self._close_conversation()
        await self.send(text_data=await _list_html(await self._user(), self.open_conversation))

    async def typing_update(self, event: dict[str, object]) -> None:
        pk = event.get("conversation")
        jid = str(event.get("jid", ""))
        if pk != self.open_conversation or jid == self.user_jid or self.open_conversation is None:
            return
        if event.get("started"):
            self.typers[jid] = (str(event.get("name", jid)), time.monotonic())
        else:
            self.typers.pop(jid, None)
        await self.send(text_data=self._typing_line(self.open_conversation))

    def _typing_line(self, conversation_id: int) -> str:
        now = time.monotonic()
        self.typers = {j: v for j, v in self.typers.items() if now - v[1] < TYPING_EXPIRES_SECONDS}
        return fragments.typing(conversation_id, sorted(name for name, _ in self.typers.values()))

    async def roster_changed(self, event: dict[str, object]) -> None:
        """Contacts, requests, presence or the user's own profile changed: the contact list again, at most
        every CONTACTS_EVERY_SECONDS (the last change of a burst is always shown)."""
        self.user = None  # the user's own profile or privacy settings may be what changed
        if self.contacts_task is not None:
            return
        wait = self.contacts_sent_at + CONTACTS_EVERY_SECONDS - time.monotonic()
        if wait <= 0:
            await self._send_contacts()
        else:
            self.contacts_task = asyncio.ensure_future(self._contacts_later(wait))

    async def account_closed(self, event: dict[str, object]) -> None:
        """An operator suspended the account (4403) or signed it out everywhere (4401): the tab says so and does
        not reconnect; a new socket is refused anyway, the session being gone."""
        suspended = event.get("reason") == "suspended"
        await self.close(code=CLOSE_ACCOUNT_CLOSED if suspended else CLOSE_UNAUTHENTICATED)

    async def _send_contacts(self) -> None:
        self.contacts_sent_at = time.monotonic()
        await self.send(text_data=await _contacts_html(await self._user()))

    async def _contacts_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self.contacts_task = None
        try:
            await self._send_contacts()
        except Exception:  # the socket closed meanwhile; the next connect re-syncs
            logger.debug("contact list push failed", exc_info=True)
