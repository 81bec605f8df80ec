"""Conversation actions: the conversation list, Requests, and rooms (create, invite, leave, remove, rename).

Rooms are built from mutual contacts: whoever creates a room is its owner and may add only people who share
presence with them both ways (`subscription` both) and who do not block them. Owners invite, remove, rename
and set the topic; any member may leave. A room always keeps an owner while it has members: when the last
owner leaves, the longest-standing member becomes one. Only current members read or write a room.

Each of these changes is recorded in the room's history as an event ("alice invited bob"), numbered like a
message and shown live in every member's open tab (chat.actions.messages.record_event), so whoever reads the
room later knows who came, who went and who changed what.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import events
from accounts.events import notify_users
from accounts.jid import parse_bare_jid
from accounts.models import BlockedJid, RosterItem, Subscription, User
from chat.actions.common import (
    clean_line,
    current_members,
    local_user_ids,
    membership,
    refuse_remote,
)
from chat.actions.messages import mark_read, record_event
from chat.errors import ChatError, InvalidArgument, NotAContact, NotAllowed
from chat.models import ROOM_NAME_MAX, TOPIC_MAX, Conversation, Message, Participant
from chat.queries import ConversationSummary, conversations_for, display_name
from chat.rendering import strip_bidi_controls

__all__ = ["ConversationSummary", "conversations_for"]

DEFAULT_ROOM_MAX_MEMBERS = 500


def room_max_members() -> int:
    return getattr(settings, "IMWEB_ROOM_MAX_MEMBERS", DEFAULT_ROOM_MAX_MEMBERS)


def accept_conversation_request(user: User, conversation_id: int | str) -> Participant:
    """Move a conversation out of the user's Requests: from now on its messages notify them as usual.

    Accepting one that is not (or no longer) a request changes nothing. The sender is not told.
    """
    with transaction.atomic():
        mine = membership(user, conversation_id)
        if mine.is_request:
            mine.is_request = False
            mine.save(update_fields=["is_request"])
            notify_users([user.pk], events.conversation_updated(mine.conversation_id))
    return mine


# --- Rooms ------------------------------------------------------------------------------------------------


def _addable(owner: User, jids: list[str]) -> dict[str, User]:
    """The local accounts behind `jids`, each a mutual contact of `owner` who does not block them, else
    NotAContact naming every one that is not (a block looks like a missing contact, on purpose)."""
    if not jids:
        return {}
    contacts = set(
        RosterItem.objects.filter(owner=owner, jid__in=jids, subscription=Subscription.BOTH).values_list(
            "jid", flat=True
        )
    )
    by_jid = {u.jid: u for u in User.objects.filter(username__in=[j.partition("@")[0] for j in jids], is_active=True)}
    blockers = set(
        BlockedJid.objects.filter(owner__in=by_jid.values(), jid__in=[owner.jid, settings.IMWEB_DOMAIN]).values_list(
            "owner_id", flat=True
        )
    )
    blocked_by_owner = set(BlockedJid.objects.filter(owner=owner, jid__in=jids).values_list("jid", flat=True))
    if blocked_by_owner:
        raise ChatError(f"You have blocked {', '.join(sorted(blocked_by_owner))}. Unblock them first.")
    missing = [j for j in jids if j not in contacts or j not in by_jid or by_jid[j].pk in blockers]
    if missing:
        raise NotAContact(missing)
    return {j: by_jid[j] for j in jids}


def _member_jids(owner: User, texts: Sequence[str]) -> list[str]:
    jids: list[str] = []
    for text in texts:
        jid = parse_bare_jid(text)
        refuse_remote(jid)
        if str(jid) != owner.jid and str(jid) not in jids:
            jids.append(str(jid))
    return jids


def _room_membership(user: User, conversation_id: int | str, *, owner: bool) -> Participant:
    mine = membership(user, conversation_id)
    if mine.conversation.kind != Conversation.Kind.ROOM:
        raise InvalidArgument("That is a conversation between two people, not a room.")
    if owner and mine.role != Participant.Role.OWNER:
        raise NotAllowed("Only the room's owners can do that.")
    return mine


def _record(room: Conversation, actor: User, text: str, **event: str) -> Message:
    """Inside the action's transaction: the room's history says what `actor` did (the line `text`; `event`
    says it for programs: its type, and the jid or value concerned), and every current member's tabs show it."""
    members = list(Participant.objects.filter(conversation=room, left_at__isnull=True).select_related("user"))
    # Names and topics may carry bidi overrides, which would turn the rest of the line around.
    return record_event(room, actor, strip_bidi_controls(text), event, members)


def create_room(user: User, name: str, topic: str = "", members: Sequence[str] = ()) -> Conversation:
    """Create a room owned by `user` with these members (bare JIDs of mutual contacts). Everyone is told.

    Raises InvalidArgument (name, topic, too many members), InvalidJid, RemoteNotSupported, NotAContact.
    """
    name = clean_line(name, "A room name", ROOM_NAME_MAX, required=True)
    topic = clean_line(topic, "A topic", TOPIC_MAX, required=False)
    jids = _member_jids(user, members)
    limit = room_max_members()
    if len(jids) + 1 > limit:
        raise InvalidArgument(f"A room can have at most {limit} members (this one would have {len(jids) + 1}).")
    with transaction.atomic():
        people = _addable(user, jids)
        room = Conversation.objects.create(kind=Conversation.Kind.ROOM, name=name, topic=topic)
        Participant.objects.bulk_create(
            [
                Participant(conversation=room, jid=user.jid, user=user, role=Participant.Role.OWNER),
                *(Participant(conversation=room, jid=jid, user=person) for jid, person in people.items()),
            ]
        )
        _record(room, user, f"{user.name} created the room “{name}”", type="created", value=name)
        notify_users([user.pk, *(p.pk for p in people.values())], events.conversation_updated(room.pk))
    return room


def invite(owner: User, conversation_id: int | str, jid_text: str) -> Participant:
    """Add a mutual contact to a room the caller owns. They see the room's history; their unread count starts
    at zero. Someone who left or was removed comes back as a member."""
    jid = parse_bare_jid(jid_text)
    refuse_remote(jid)
    with transaction.atomic():
        mine = _room_membership(owner, conversation_id, owner=True)
        room = mine.conversation
        existing = Participant.objects.filter(conversation=room, jid=str(jid)).first()
        if existing is not None and existing.is_current:
            raise ChatError(f"{jid} is already in this room.")
        person = _addable(owner, [str(jid)])[str(jid)]
        members = current_members(room)
        limit = room_max_members()
        if len(members) >= limit:
            raise InvalidArgument(f"A room can have at most {limit} members.")
        fields = {
            "user": person,
            "role": Participant.Role.MEMBER,
            "left_at": None,
            "last_read_seq": room.last_seq,
            "last_delivered_seq": room.last_seq,
            "is_request": False,
        }
        if existing is None:
            added = Participant.objects.create(conversation=room, jid=str(jid), **fields)
        else:
            for field, value in fields.items():
                setattr(existing, field, value)
            existing.joined_at = timezone.now()
            existing.save()
            added = existing
        _record(room, owner, f"{owner.name} invited {person.name}", type="invited", jid=str(jid))
        notify_users([*local_user_ids(members), person.pk], events.conversation_updated(room.pk))
    return added


def _depart(participant: Participant, remaining: list[Participant]) -> Participant | None:
    """Inside a transaction: `participant` is out; if they were the last owner, the longest-standing member
    takes over, so a room with members always has someone who can manage it. Returns that new owner, if any."""
    participant.left_at = timezone.now()
    participant.save(update_fields=["left_at"])
    heir = None
    if participant.role == Participant.Role.OWNER and not any(p.role == Participant.Role.OWNER for p in remaining):
        heir = min(remaining, key=lambda p: (p.joined_at, p.pk), default=None)
        if heir is not None:
            heir.role = Participant.Role.OWNER
            heir.save(update_fields=["role"])
    conversation_id = participant.conversation_id
    notify_users(local_user_ids(remaining), events.conversation_updated(conversation_id))
    notify_users([participant.user_id], events.conversation_removed(conversation_id))
    return heir


def leave(user: User, conversation_id: int | str) -> None:
    """Leave a room: it disappears from the user's list and they can no longer read it."""
    with transaction.atomic():
        mine = _room_membership(user, conversation_id, owner=False)
        remaining = [p for p in current_members(mine.conversation) if p.pk != mine.pk]
        heir = _depart(mine, remaining)
        text = f"{user.name} left"
        if heir is None:
            _record(mine.conversation, user, text, type="left")
        else:
            text += f"; {display_name(heir)} is now an owner"
            _record(mine.conversation, user, text, type="left", owner=heir.jid)


def remove_member(owner: User, conversation_id: int | str, jid_text: str) -> None:
    """Remove someone from a room the caller owns (to leave it yourself, use `leave`)."""
    jid = parse_bare_jid(jid_text)
    with transaction.atomic():
        mine = _room_membership(owner, conversation_id, owner=True)
        if str(jid) == owner.jid:
            raise InvalidArgument("To leave the room yourself, use Leave.")
        members = current_members(mine.conversation)
        target = next((p for p in members if p.jid == str(jid)), None)
        if target is None:
            raise ChatError(f"{jid} is not in this room.")
        _depart(target, [p for p in members if p.pk != target.pk])
        line = f"{owner.name} removed {display_name(target)}"
        _record(mine.conversation, owner, line, type="removed", jid=target.jid)


def _update_room(owner: User, conversation_id: int | str, field: str, value: str, line: str) -> Conversation:
    """Set the room's `field` to `value` and record `line` in its history (only when the value changed)."""
    with transaction.atomic():
        mine = _room_membership(owner, conversation_id, owner=True)
        room = mine.conversation
        changed = getattr(room, field) != value
        setattr(room, field, value)
        room.save(update_fields=[field])
        if changed:
            _record(room, owner, line, type="renamed" if field == "name" else "topic", value=value)
        notify_users(local_user_ids(current_members(room)), events.conversation_updated(room.pk))
    return room


def rename_room(owner: User, conversation_id: int | str, name: str) -> Conversation:
    """Rename a room the caller owns."""
    name = clean_line(name, "A room name", ROOM_NAME_MAX, required=True)
    return _update_room(owner, conversation_id, "name", name, f"{owner.name} renamed the room to “{name}”")


def set_topic(owner: User, conversation_id: int | str, topic: str) -> Conversation:
    """Set (or clear, with "") the topic of a room the caller owns."""
    topic = clean_line(topic, "A topic", TOPIC_MAX, required=False)
    line = f"{owner.name} changed the topic to “{topic}”" if topic else f"{owner.name} removed the topic"
    return _update_room(owner, conversation_id, "topic", topic, line)


# --- One's own settings for a conversation ----------------------------------------------------------------
# Mute, pin and mark as unread belong to one person and show on nobody else's screen. A change is told to that
# person's own sockets (every tab re-reads its list and open header; the API stream says the conversation
# changed), and only when something changed, so a repeated click costs nothing.


def _own_setting(mine: Participant, fields: dict[str, object]) -> Participant:
    """Inside a transaction: set `fields` on `mine`, telling its person's sockets when a value changed."""
    changed = [name for name, value in fields.items() if getattr(mine, name) != value]
    for name in changed:
        setattr(mine, name, fields[name])
    if changed:
        mine.save(update_fields=changed)
        notify_users([mine.user_id], events.conversation_updated(mine.conversation_id))
    return mine


def set_muted(user: User, conversation_id: int | str, muted: bool) -> Participant:
    """Mute (no notification, no sound, no missed-message email; its unread count stays on its row but leaves the
    totals) or unmute a conversation for the user. Unmuting does not email what arrived while it was muted."""
    with transaction.atomic():
        mine = membership(user, conversation_id)
        if muted:
            return _own_setting(mine, {"muted": True})
        if not mine.muted:
            return mine
        return _own_setting(mine, {"muted": False, "emailed_seq": max(mine.emailed_seq, mine.conversation.last_seq)})


def set_pinned(user: User, conversation_id: int | str, pinned: bool) -> Participant:
    """Pin (listed first, in the Pinned part of the list) or unpin a conversation for the user. Pinning one that
    is pinned keeps its pin time."""
    with transaction.atomic():
        mine = membership(user, conversation_id)
        if pinned == (mine.pinned_at is not None):
            return mine
        return _own_setting(mine, {"pinned_at": timezone.now() if pinned else None})


def set_marked_unread(user: User, conversation_id: int | str, marked: bool) -> Participant:
    """Mark a conversation as unread for the user: it shows as unread until they open it again or read on past
    where they were (chat.queries.ConversationSummary.marked_unread). `marked` False is "Mark as read": the mark
    comes off and everything in it counts as read (the others see it read, as when it is read on screen)."""
    with transaction.atomic():
        mine = membership(user, conversation_id)
        _own_setting(mine, {"unread_mark_seq": mine.last_read_seq if marked else None})
    if not marked and mine.last_read_seq < mine.conversation.last_seq:
        mine.last_read_seq = mark_read(user, mine.conversation_id, mine.conversation.last_seq)
    return mine


def conversation_opened(mine: Participant) -> None:
    """Its person opened the conversation of `mine` (its page): a mark as unread comes off."""
    if mine.unread_mark_seq is not None:
        with transaction.atomic():
            _own_setting(mine, {"unread_mark_seq": None})
