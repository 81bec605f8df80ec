"""Reading chat state for display: pages of messages, the conversation list, and what a message shows beyond its
row (sender name, reactions, delivery status, remote hops). Views, sockets (for catch-up), the API and the
delivery step read through here, and templates never query: whatever a template shows is attached here, with
a fixed number of queries for any number of messages.

Reads that take an id from outside check `chat.access.membership` first (the same NotFound for everyone who is
not a current participant).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Case, Count, F, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from accounts.models import RosterItem, Subscription, User
from chat.access import membership, parse_seq
from chat.errors import InvalidArgument
from chat.models import Attachment, Conversation, Message, Participant, Reaction
from federation import outbox

MAX_PAGE = 500
LIST_LIMIT = 200

# --- Pages of messages ------------------------------------------------------------------------------------


def _page_size(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument("limit must be a whole number, 1 or more.")
    return min(limit, MAX_PAGE)


def _messages(conversation_id: int) -> QuerySet[Message]:
    # Replies show what they answer and messages show their reactions: both loaded per page, not per message.
    return (
        Message.objects.filter(conversation_id=conversation_id)
        .select_related("reply_to")
        .prefetch_related("reactions", "attachments")
    )


def messages_after(user: User, conversation_id: int | str, after_seq: int, limit: int = 100) -> list[Message]:
    """Messages with seq > after_seq, oldest first, at most `limit` (capped at MAX_PAGE): the catch-up read.

    A client that gets a full page asks again from the last seq it got.
    """
    after = parse_seq(after_seq, "after_seq")
    size = _page_size(limit)
    mine = membership(user, conversation_id)
    return list(_messages(mine.conversation_id).filter(seq__gt=after).order_by("seq")[:size])


def messages_before(
    user: User, conversation_id: int | str, before_seq: int | None = None, limit: int = 50
) -> list[Message]:
    """The `limit` messages just before `before_seq` (the newest ones when None), oldest first.

    For scrolling up: pass the smallest seq on screen to get the page above it.
    """
    before = None if before_seq is None else parse_seq(before_seq, "before_seq")
    size = _page_size(limit)
    mine = membership(user, conversation_id)
    rows = _messages(mine.conversation_id)
    if before is not None:
        rows = rows.filter(seq__lt=before)
    page = list(rows.order_by("-seq")[:size])
    page.reverse()
    return page


# --- What a message shows ---------------------------------------------------------------------------------


def without_reactions(message: Message) -> None:
    """A message just stored has no reactions (and no files unless `with_files` said so): say so, so `decorate`
    reads none."""
    cache = getattr(message, "_prefetched_objects_cache", {})
    attachments = cache.get("attachments")
    message._prefetched_objects_cache = {
        "reactions": Reaction.objects.none(),
        "attachments": attachments if attachments is not None else Attachment.objects.none(),
    }


def with_files(message: Message, files: list[Attachment]) -> None:
    """A message just stored with these files: it shows them (`Message.files`) without reading them back. Kept
    as Django keeps a prefetched relation (a queryset holding its rows), so `message.attachments.all()` works
    too."""
    rows = Attachment.objects.filter(message=message)
    rows._result_cache, rows._prefetch_done = list(files), True
    message._prefetched_objects_cache = {**getattr(message, "_prefetched_objects_cache", {}), "attachments": rows}


def reactions_of(message: Message) -> Iterable[Reaction]:
    """The message's reactions, from what was prefetched when it was (without building a queryset)."""
    prefetched = getattr(message, "_prefetched_objects_cache", {}).get("reactions")
    return prefetched if prefetched is not None else message.reactions.all()


def participants_of(conversation_id: int) -> list[Participant]:
    """Everyone who ever took part (people who left still have names), with their accounts. One query."""
    return list(Participant.objects.filter(conversation_id=conversation_id).select_related("user"))


def display_name(participant: Participant) -> str:
    if participant.user is not None:
        return participant.user.name
    return participant.jid.partition("@")[0] or participant.jid


def shows_reads(participant: Participant) -> bool:
    """Whether this participant's read marker may be shown to others: not when they switched read markers off
    (people on other servers decide that on their own server, which simply sends no read markers)."""
    return participant.user is None or participant.user.send_read_markers


def status_of(message: Message, others: list[Participant], names: dict[str, str], is_room: bool) -> tuple[str, str]:
    """The sender's view of one of their messages: (label, title) from the other participants' markers."""
    if not others:
        return "Sent", ""
    readers = [p for p in others if p.last_read_seq >= message.seq and shows_reads(p)]
    delivered = any(p.last_delivered_seq >= message.seq or p.last_read_seq >= message.seq for p in others)
    if is_room:
        if readers:
            who = ", ".join(sorted(names.get(p.jid, p.jid) for p in readers))
            return f"Read by {len(readers)}", f"Read by {who}"
        return ("Delivered", "") if delivered else ("Sent", "")
    if readers:
        return "Read", ""
    return ("Delivered", "") if delivered else ("Sent", "")


def decorate(
    conversation: Conversation,
    items: Iterable[Message],
    *,
    viewer_jid: str | None = None,
    participants: list[Participant] | None = None,
    hops: dict[int, list[outbox.Hop]] | None = None,
) -> list[Message]:
    """Attach what `chat/_message.html` shows beyond the row: sender name and avatar (picture URL, else the
    initial), reactions grouped (with who), the delivery status of messages from local senders (as their sender
    sees it) and their remote hops.

    `viewer_jid` marks the viewer's own messages and reactions; without it (a push rendered once for everyone)
    static/js/chat.js marks them from the page's own address. At most two queries for any number of messages
    (participants, unless given, and hops when someone is on another server); reactions and replies come
    prefetched.
    """
    items = list(items)
    if not items:
        return items
    everyone = participants_of(conversation.pk) if participants is None else participants
    names = {p.jid: display_name(p) for p in everyone}
    # The avatar beside a message: the sender's picture (local accounts, already loaded with the participants).
    pictures = {p.jid: p.user.avatar_url for p in everyone if p.user is not None}
    current = [p for p in everyone if p.left_at is None]
    is_room = conversation.kind == Conversation.Kind.ROOM
    if hops is None:
        remote = any(p.user_id is None for p in everyone)
        hops = outbox.hops([m.pk for m in items if m.sender_id is not None]) if remote else {}
    for message in items:
        message.sender_name = names.get(message.sender_jid, message.sender_jid.partition("@")[0])
        message.sender_avatar_url = pictures.get(message.sender_jid, "")
        message.sender_initials = (message.sender_name[:1] or "?").upper()
        message.is_mine = viewer_jid is not None and message.sender_jid == viewer_jid
        chips: dict[str, list[str]] = defaultdict(list)
        for reaction in reactions_of(message):
            chips[reaction.emoji].append(reaction.jid)
        message.chips = [
            {
                "emoji": emoji,
                "count": len(who),
                "jids": " ".join(who),
                "mine": viewer_jid in who,
                "who": ", ".join(names.get(j, j) for j in who),
            }
            for emoji, who in chips.items()
        ]
        # Room events ("alice invited bob") are lines of the history, nobody's message: no status, no markers.
        message.has_status = message.sender_id is not None and not message.is_deleted and not message.is_event
        if message.has_status:
            others = [p for p in current if p.jid != message.sender_jid]
            message.status_label, message.status_title = status_of(message, others, names, is_room)
            message.hops = hops.get(message.pk, [])
        if message.reply_to is not None:
            reply = message.reply_to
            reply.sender_name = names.get(reply.sender_jid, reply.sender_jid.partition("@")[0])
    return items


# --- The conversation list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationSummary:
    """One row of a user's conversation list."""

    conversation: Conversation
    participant: Participant  # the user's own: role, markers, is_request
    last_message: Message | None  # with `sender` loaded
    unread: int  # messages after the user's read marker, not theirs, not deleted, not room events
    peer: Participant | None  # direct conversations: the other side (with `user` loaded when local)
    peer_jid: str  # direct conversations: the other side's address, even if their account is gone
    # Read for this one viewer (their list, their API): the row may show their own settings (muted, pinned,
    # marked unread). False for a row a push renders once for everyone (chat.delivery): it shows none, and
    # static/js/chat.js keeps them from the row it replaces.
    personal: bool = False

    @property
    def id(self) -> int:
        return self.conversation.pk

    @property
    def muted(self) -> bool:
        return self.personal and self.participant.muted

    @property
    def pinned(self) -> bool:
        return self.personal and self.participant.pinned_at is not None

    @property
    def marked_unread(self) -> bool:
        """Marked as unread, and not read since (the read marker has not moved past where it was then)."""
        mark = self.participant.unread_mark_seq
        return self.personal and mark is not None and self.participant.last_read_seq <= mark

    @property
    def is_request(self) -> bool:
        return self.participant.is_request

    @property
    def is_room(self) -> bool:
        return self.conversation.kind == Conversation.Kind.ROOM

    @property
    def title(self) -> str:
        if self.is_room:
            return self.conversation.name
        if self.peer is not None and self.peer.user is not None:
            return self.peer.user.name
        return self.peer_jid


def other_jid(conversation: Conversation, jid: str) -> str:
    """The other side of a direct conversation, from its key (their participant row may be gone)."""
    others = [other for other in (conversation.direct_key or "").split(" ") if other and other != jid]
    return others[0] if others else ""


def conversations_for(user: User, *, limit: int | None = None) -> list[ConversationSummary]:
    """The user's current conversations, the ones they pinned first, then by most recent activity, each with its
    last message and unread count; conversations they left are not included, requests are (flagged). Three
    queries, whatever the count.
    """
    unread = (
        Message.objects.filter(
            conversation_id=OuterRef("conversation_id"),
            seq__gt=OuterRef("last_read_seq"),
            deleted_at__isnull=True,
            kind=Message.Kind.MESSAGE,
        )
        .exclude(sender_jid=user.jid)
        .order_by()
        .values("conversation_id")
        .annotate(count=Count("pk"))
        .values("count")
    )
    rows = (
        Participant.objects.filter(user=user, left_at__isnull=True)
        .select_related("conversation")
        .annotate(
            unread=Coalesce(Subquery(unread, output_field=IntegerField()), 0),
            activity=Coalesce("conversation__last_message_at", "conversation__created_at"),
            unpinned=Case(When(pinned_at__isnull=True, then=Value(1)), default=Value(0), output_field=IntegerField()),
        )
        .order_by("unpinned", "-activity", "-conversation_id")
    )
    mine = list(rows if limit is None else rows[:limit])
    ids = [p.conversation_id for p in mine]
    direct_ids = [p.conversation_id for p in mine if p.conversation.kind == Conversation.Kind.DIRECT]
    # The newest message of each: its seq is the conversation's counter, so the unique index finds it.
    last = {
        m.conversation_id: m
        for m in Message.objects.filter(conversation_id__in=ids, seq=F("conversation__last_seq")).select_related(
            "sender"
        )
    }
    peers = {
        p.conversation_id: p
        for p in Participant.objects.filter(conversation_id__in=direct_ids).exclude(user=user).select_related("user")
    }
    summaries = []
    for p in mine:
        conversation = p.conversation
        peer = peers.get(conversation.pk)
        peer_jid = ""
        if conversation.kind == Conversation.Kind.DIRECT:
            peer_jid = peer.jid if peer else other_jid(conversation, user.jid)
        summaries.append(
            ConversationSummary(
                conversation=conversation,
                participant=p,
                last_message=last.get(conversation.pk),
                unread=p.unread,
                peer=peer,
                peer_jid=peer_jid,
                personal=True,
            )
        )
    return summaries


def unread_counts(participant_ids: Iterable[int]) -> dict[int, int]:
    """Participant id → messages after their read marker, not theirs, not deleted, not room events. One query
    for all.

    Plain SQL: the range condition must sit in the join so the (conversation, seq) index reads only the unread
    messages; the ORM's aggregate with a filter joins every message of the conversation and filters after.
    """
    ids = [int(pk) for pk in participant_ids]
    if not ids:
        return {}
    participants, messages = Participant._meta.db_table, Message._meta.db_table
    marks = ", ".join(["%s"] * len(ids))
    sql = (
        f"SELECT p.id, COUNT(m.id) FROM {participants} p LEFT JOIN {messages} m"  # noqa: S608  (table names)
        " ON m.conversation_id = p.conversation_id AND m.seq > p.last_read_seq"
        " AND m.deleted_at IS NULL AND m.sender_jid <> p.jid AND m.kind = %s"
        f" WHERE p.id IN ({marks}) GROUP BY p.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Message.Kind.MESSAGE.value, *ids])
        counts = dict(cursor.fetchall())
    return {pk: counts.get(pk, 0) for pk in ids}


def conversation_list(user: User) -> dict[str, object]:
    """What `chat/_conversation_list.html` needs: the list split into chats (pinned ones apart) and Requests, and
    unread totals (muted conversations keep their count on their row, out of the totals)."""
    summaries = conversations_for(user, limit=LIST_LIMIT)
    chats = [s for s in summaries if not s.is_request]
    requests = [s for s in summaries if s.is_request]
    return {
        "chats": chats,
        "pinned_chats": [s for s in chats if s.pinned],
        "other_chats": [s for s in chats if not s.pinned],
        "chat_requests": requests,
        "unread_total": sum(s.unread for s in chats if not s.muted),
    }


# --- The open conversation's header -----------------------------------------------------------------------


def members_of(conversation: Conversation) -> list[Participant]:
    rows = Participant.objects.filter(conversation=conversation, left_at__isnull=True).select_related("user")
    return sorted(rows, key=lambda p: (p.role != Participant.Role.OWNER, p.joined_at, p.pk))


def head(user: User, mine: Participant) -> dict[str, object]:
    """What `chat/_pane_head.html` needs: the title, the topic and, in rooms, members and settings."""
    conversation = mine.conversation
    members = members_of(conversation)
    is_room = conversation.kind == Conversation.Kind.ROOM
    peer = next((p for p in members if p.user_id != user.pk), None) if not is_room else None
    if is_room:
        title = conversation.name
    elif peer is not None and peer.user is not None:
        title = peer.user.name
    else:
        title = other_jid(conversation, user.jid) or "Conversation"
    invitable: list[RosterItem] = []
    if is_room and mine.role == Participant.Role.OWNER:
        inside = {p.jid for p in members}
        invitable = [item for item in room_candidates(user) if item.jid not in inside]
    return {
        "conversation": conversation,
        "mine": mine,
        "is_room": is_room,
        "is_owner": mine.role == Participant.Role.OWNER,
        "title": title,
        "peer": peer,
        "members": members,
        "invitable": invitable,
        "user": user,
    }


def room_candidates(user: User) -> list[RosterItem]:
    """Who the user may put in a room: mutual contacts."""
    return list(RosterItem.objects.filter(owner=user, subscription=Subscription.BOTH).order_by("jid"))
