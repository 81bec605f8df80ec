"""The path of a message from the commit to the sockets: read once, render once, publish once per person.

After the transaction that stored messages commits, `new_messages` reads what every recipient needs for all of
them at once (names, markers and unread counts: two queries for any batch), renders each message once for each
kind of viewer (members; the plain-links copy for someone whose copy waits in their Requests), renders the
conversation's list row once per way it looks (whose title, "You:", Requests), and publishes one event per
local participant with that payload (`accounts.events.message_new`). Each socket forwards the payload when it
is the next seq it expects (chat.cursor) and reads the database only to repair a gap.

The same holds for what changes a message after it was sent (`message_changed`: edits, deletions, reactions),
for markers (`receipt`: only the status lines that changed move), and for remote hops (`hops_changed`). Every
function here runs after a commit, on the committing thread; publishing itself happens off it
(accounts.events).

Room events ("alice invited bob", chat.actions.messages.record_event) take this same path: they are rows of
the numbered history, rendered by the same partial (its event variant) and published quietly.

Viewer-specific bits (the viewer's own message styling and tools, their own reaction chips) are not rendered
per viewer: static/js/chat.js marks them from the page's own address. Per person there is only the unread
count, which rides along as a number.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from accounts import events
from chat import fragments, queries
from chat.api.schemas import message_json
from chat.models import Conversation, Message, Participant
from federation import outbox

# A receipt re-renders the status lines of at most this many of the newest messages it covers (the ones on
# screen); older ones on screen read right after the next page load.
STATUS_WINDOW = 50


def _api_frame(event_type: str, message: Message, payload: dict[str, Any], **extra: object) -> str:
    frame = {"type": event_type, **extra, "conversation": message.conversation_id, "seq": message.seq}
    frame["message"] = payload
    return json.dumps(frame, default=str, ensure_ascii=False)


class _ApiText:
    """The API stream's JSON text of one message, in its two shapes: for its sender (with client_id) and for
    everyone else. Built on first use."""

    def __init__(self, message: Message, event_type: str, **extra: object) -> None:
        self.message, self.event_type, self.extra = message, event_type, extra
        self._texts: dict[bool, str] = {}

    def for_viewer(self, jid: str) -> str:
        own = jid == self.message.sender_jid
        if own not in self._texts:
            payload = message_json(self.message, jid if own else None)
            self._texts[own] = _api_frame(self.event_type, self.message, payload, **self.extra)
        return self._texts[own]


class _Fragment:
    """One message's HTML in its two shapes: with clickable links, and plain (Requests). Rendered on first use."""

    def __init__(self, conversation_id: int, message: Message) -> None:
        self.conversation_id, self.message = conversation_id, message
        self._html: dict[bool, str] = {}

    def html(self, plain: bool) -> str:
        if plain not in self._html:
            self._html[plain] = fragments.messages(self.conversation_id, [self.message], plain=plain)
        return self._html[plain]


def _summary_for(
    viewer: Participant, conversation: Conversation, members: Sequence[Participant], last: Message | None
) -> queries.ConversationSummary:
    peer = None
    peer_jid = ""
    if conversation.kind == Conversation.Kind.DIRECT:
        peer = next((p for p in members if p.jid != viewer.jid), None)
        peer_jid = peer.jid if peer is not None else queries.other_jid(conversation, viewer.jid)
    return queries.ConversationSummary(
        conversation=conversation, participant=viewer, last_message=last, unread=0, peer=peer, peer_jid=peer_jid
    )


class _Rows:
    """A conversation's list row as each member sees it, rendered once per distinct look (title, whether the
    last message is theirs, whether it waits in their Requests); the unread count travels as a number."""

    def __init__(
        self, conversation: Conversation, members: Sequence[Participant], last: Message | None, *, bump: bool
    ) -> None:
        self.conversation, self.members, self.last, self.bump = conversation, members, last, bump
        self._rows: dict[tuple[str, bool, bool], str] = {}

    def for_viewer(self, viewer: Participant) -> str:
        summary = _summary_for(viewer, self.conversation, self.members, self.last)
        mine = self.last is not None and self.last.sender_jid == viewer.jid
        key = (summary.title, mine, viewer.is_request)
        if key not in self._rows:
            self._rows[key] = fragments.row(summary, viewer_jid=viewer.jid, bump=self.bump)
        return self._rows[key]


def _with_names(conversation: Conversation, members: list[Participant], items: Sequence[Message]) -> list[Participant]:
    """The participants whose names the messages need: the current members, and everyone who ever took part
    when a reply quotes someone who is no longer a member (one more query, only then)."""
    jids = {p.jid for p in members}
    if any(m.reply_to is not None and m.reply_to.sender_jid not in jids for m in items):
        return queries.participants_of(conversation.pk)
    return members


def new_messages(
    stored: Sequence[Message], members: dict[int, list[Participant]], reads: Sequence[tuple[Participant, int]] = ()
) -> None:
    """Publish messages just committed. `stored`: in seq order per conversation, each with `conversation`,
    `sender` and `reply_to` set; `members`: each conversation's current participants, with `user` loaded (and
    the writers' markers moved); `reads`: (writer, their read marker before) for writers who had unread
    messages, which writing read: those messages' senders see them read."""
    if not stored:
        return
    by_conversation: dict[int, list[Message]] = defaultdict(list)
    for message in stored:
        queries.without_reactions(message)  # just stored: nothing to read
        by_conversation[message.conversation_id].append(message)
    local = [p for pk in by_conversation for p in members[pk] if p.user_id is not None]
    unread = queries.unread_counts(p.pk for p in local)
    published: list[tuple[int | None, events.Event]] = []
    for pk, items in by_conversation.items():
        conversation = items[-1].conversation
        current = members[pk]
        remote = [p.jid for p in current if p.user_id is None]
        hops = {m.pk: [outbox.queued_hop(jid) for jid in remote if jid != m.sender_jid] for m in items}
        queries.decorate(conversation, items, participants=_with_names(conversation, current, items), hops=hops)
        rows = _Rows(conversation, current, items[-1], bump=True)
        for message in items:
            fragment = _Fragment(pk, message)
            api = _ApiText(message, "message")
            last = message is items[-1]
            for viewer in current:
                if viewer.user_id is None:
                    continue
                event = events.message_new(
                    pk,
                    message.seq,
                    html=fragment.html(plain=viewer.is_request),
                    api=api.for_viewer(viewer.jid),
                    row=rows.for_viewer(viewer) if last else "",
                    unread=unread.get(viewer.pk, 0),
                    quiet=viewer.is_request or message.is_event,
                    sender=message.sender_jid,
                )
                published.append((viewer.user_id, event))
    for writer, before in reads:
        conversation = writer.conversation
        published += _receipt_events(
            conversation, writer, "read", before, writer.last_read_seq, members[writer.conversation_id]
        )
    events.publish(published)


def message_changed(conversation_id: int, seq: int, change: str) -> None:
    """Publish a message that was edited, deleted or reacted to, as it is now, to the current members."""
    message = (
        Message.objects.filter(conversation_id=conversation_id, seq=seq)
        .select_related("conversation", "sender", "reply_to")
        .prefetch_related("reactions", "attachments")
        .first()
    )
    if message is None:
        return
    conversation = message.conversation
    everyone = queries.participants_of(conversation.pk)
    current = [p for p in everyone if p.left_at is None]
    queries.decorate(conversation, [message], participants=everyone)
    fragment = _Fragment(conversation.pk, message)
    api = _ApiText(message, "message_updated", change=change)
    # The list shows the newest message: its row changes with it (the preview, "message deleted").
    is_last = message.seq == conversation.last_seq
    rows = _Rows(conversation, current, message, bump=False) if is_last else None
    unread = queries.unread_counts(p.pk for p in current if p.user_id is not None) if is_last else {}
    published: list[tuple[int | None, events.Event]] = []
    for viewer in current:
        if viewer.user_id is None:
            continue
        event = events.message_changed(
            conversation.pk,
            seq,
            change=change,
            html=fragment.html(plain=viewer.is_request),
            api=api.for_viewer(viewer.jid),
            row=rows.for_viewer(viewer) if rows is not None else "",
            unread=unread.get(viewer.pk, 0),
        )
        published.append((viewer.user_id, event))
    events.publish(published)


def _statuses(conversation: Conversation, everyone: list[Participant], items: list[Message]) -> str:
    queries.decorate(conversation, items, participants=everyone)
    return fragments.statuses(conversation.pk, items)


def own_statuses(mine: Participant, upto: int) -> str:
    """The status lines of the newest STATUS_WINDOW messages `mine`'s person sent up to seq `upto`: what a page
    rendered may have moved on (Delivered, Read) before the page's socket was listening, and a receipt is pushed
    only once. Sent to a socket when its tab opens the conversation (it says what it holds up to `upto`)."""
    if upto <= 0 or mine.user_id is None:
        return ""
    items = list(
        Message.objects.filter(conversation_id=mine.conversation_id, sender_id=mine.user_id, seq__lte=upto)
        .filter(deleted_at__isnull=True)
        .select_related("reply_to")
        .prefetch_related("reactions")
        .order_by("-seq")[:STATUS_WINDOW]
    )
    if not items:
        return ""
    return _statuses(mine.conversation, queries.participants_of(mine.conversation_id), items[::-1])


def receipt(reader: Participant, kind: str, before: int, after: int) -> None:
    """`reader`'s `kind` marker (read, delivered) moved from `before` to `after`: the senders of the messages in
    between see their new status; the reader's own screens, their unread count."""
    everyone = queries.participants_of(reader.conversation_id)
    published = _receipt_events(reader.conversation, reader, kind, before, after, everyone)
    if kind == "read" and reader.user_id is not None:
        count = queries.unread_counts([reader.pk]).get(reader.pk, 0)
        own = events.receipt(reader.conversation_id, after, kind=kind, jid=reader.jid, html="", unread=count)
        published.append((reader.user_id, own))
    events.publish(published)


def _receipt_events(
    conversation: Conversation, reader: Participant, kind: str, before: int, after: int, everyone: list[Participant]
) -> list[tuple[int | None, events.Event]]:
    """What the others see when `reader`'s marker moves: the status lines of the messages it passed (the newest
    STATUS_WINDOW of them), once for all. A read marker of someone who keeps read markers private reaches others
    as a delivery marker (their status says Delivered); a conversation in the reader's Requests tells nobody."""
    me = next((p for p in everyone if p.pk == reader.pk), reader)
    others = [p for p in everyone if p.left_at is None and p.user_id is not None and p.pk != reader.pk]
    if not others or reader.is_request or after <= before:
        return []
    covered = list(
        Message.objects.filter(conversation=conversation, seq__gt=before, seq__lte=after, sender__isnull=False)
        .filter(deleted_at__isnull=True)
        .exclude(sender_jid=reader.jid)
        .select_related("reply_to")
        .prefetch_related("reactions")
        .order_by("-seq")[:STATUS_WINDOW]
    )
    html = _statuses(conversation, everyone, covered[::-1]) if covered else ""
    shown = kind if kind != "read" or queries.shows_reads(me) else "delivered"
    event = events.receipt(conversation.pk, after, kind=shown, jid=reader.jid, html=html, unread=None)
    return [(p.user_id, event) for p in others]


def hops_changed(message_ids: Iterable[int]) -> None:
    """Remote copies of these messages moved (handed over, delivered, failed): their senders' status lines."""
    found = (
        Message.objects.filter(pk__in=list(message_ids), sender__isnull=False)
        .select_related("conversation", "reply_to")
        .prefetch_related("reactions")
    )
    by_conversation: dict[int, list[Message]] = defaultdict(list)
    for message in found:
        by_conversation[message.conversation_id].append(message)
    published: list[tuple[int | None, events.Event]] = []
    for items in by_conversation.values():
        conversation = items[0].conversation
        queries.decorate(conversation, items, participants=queries.participants_of(conversation.pk))
        for message in items:
            wire = [
                {"recipient": h.recipient, "state": h.state, "domain": h.domain, "error": h.error, "text": h.text}
                for h in message.hops
            ]
            html = fragments.statuses(conversation.pk, [message])
            event = events.message_status(conversation.pk, message.seq, html=html, hops=wire)
            published.append((message.sender_id, event))
    events.publish(published)
