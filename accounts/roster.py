"""Reading the contact list for display: groups with online/total counts, presence, requests, and the people
asked who have not answered yet. No writes here.

Everything for one user is gathered in a fixed number of queries, whatever the list's size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Q

from accounts.actions.presence import Presence, presence_of
from accounts.models import BlockedJid, PresenceSession, RosterItem, Show, Subscription, User
from federation.models import RemotePresence

UNGROUPED = "Contacts"
_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass
class ContactRow:
    item: RosterItem
    person: User | None
    presence: Presence | None  # None: they do not share presence with us (or a block stands between us)

    @property
    def jid(self) -> str:
        return self.item.jid

    @property
    def name(self) -> str:
        if self.item.name:
            return self.item.name
        if self.person is not None:
            return self.person.name
        return self.item.jid.rpartition("@")[0] or self.item.jid

    @property
    def online(self) -> bool:
        return self.presence is not None and self.presence.online

    @property
    def show(self) -> str:
        return self.presence.show if self.presence is not None else "unknown"

    @property
    def pending_out(self) -> bool:
        return self.item.ask_out

    @property
    def is_remote(self) -> bool:
        return self.item.is_remote

    @property
    def group_names(self) -> list[str]:
        return [group.name for group in self.item.groups.all()]


@dataclass
class GroupView:
    name: str
    rows: list[ContactRow] = field(default_factory=list)  # online members only
    online: int = 0
    total: int = 0


@dataclass
class RequestRow:
    item: RosterItem
    person: User | None

    @property
    def jid(self) -> str:
        return self.item.jid

    @property
    def name(self) -> str:
        return self.person.name if self.person is not None else self.item.jid

    @property
    def message(self) -> str:
        return self.item.request_message

    @property
    def requested_at(self) -> datetime | None:
        return self.item.requested_at


@dataclass
class RosterView:
    groups: list[GroupView]
    offline: list[ContactRow]
    requests: list[RequestRow]
    me: Presence
    # Asked and not answered yet, newest first (also in `offline`): the list shows them apart, at the top, so a
    # contact just added is in sight at once rather than folded away among the offline ones.
    waiting: list[ContactRow] = field(default_factory=list)

    @property
    def offline_answered(self) -> list[ContactRow]:
        """The Offline group as shown: offline contacts, less those still waiting for an answer."""
        waiting = {id(row) for row in self.waiting}
        return [row for row in self.offline if id(row) not in waiting]


def _local_people(jids: list[str]) -> dict[str, User]:
    suffix = f"@{settings.IMWEB_DOMAIN}"
    usernames = [jid.removesuffix(suffix) for jid in jids if jid.endswith(suffix)]
    return {user.jid: user for user in User.objects.filter(username__in=usernames, is_active=True)}


def remote_presence(item: RosterItem, latest: RemotePresence | None) -> Presence | None:
    """A remote contact's presence as the list shows it: what their server last sent us, or offline."""
    if not item.sees_presence:
        return None
    if latest is None or not latest.available:
        return Presence(Show.OFFLINE, latest.status if latest else "", None)
    # RFC 6121 <show/> values; "chat" (free for chat) is shown as available, as we have no such state.
    show = latest.show if latest.show in (Show.AWAY, Show.XA, Show.DND) else Show.AVAILABLE
    return Presence(show, latest.status)


def roster_view(user: User) -> RosterView:
    """The user's contact list as shown: at most six queries (fewer for an empty or all-local list), whatever
    its size: it is read on every page load and socket re-sync."""
    items = sorted(
        RosterItem.objects.filter(owner=user).filter(Q(listed=True) | Q(pending_in=True)).prefetch_related("groups"),
        key=lambda item: (not item.listed, item.jid if item.listed else item.requested_at or _EPOCH),
    )
    jids = [item.jid for item in items]
    people = _local_people(jids) if jids else {}
    person_ids = [person.pk for person in people.values()]

    sessions: dict[int, list[PresenceSession]] = defaultdict(list)
    for session in PresenceSession.objects.filter(user_id__in=[*person_ids, user.pk]):
        sessions[session.user_id].append(session)
    # Who shares presence with this user (their roster says `from`/`both` for us).
    sharing = set()
    if person_ids:
        sharing = set(
            RosterItem.objects.filter(
                owner_id__in=person_ids, jid=user.jid, subscription__in=[Subscription.FROM, Subscription.BOTH]
            ).values_list("owner_id", flat=True)
        )
    # Blocks both ways in one query: the user's own, and contacts' blocks of the user (or of this server).
    blocks = BlockedJid.objects.filter(
        Q(owner=user) | Q(owner_id__in=person_ids, jid__in=[user.jid, settings.IMWEB_DOMAIN])
    ).values_list("owner_id", "jid")
    my_blocks: set[str] = set()
    blocked_me: set[int] = set()
    for owner_id, jid in blocks:
        if owner_id == user.pk:
            my_blocks.add(jid)
        else:
            blocked_me.add(owner_id)

    # Remote contacts: their server pushes presence to us only while we are subscribed (`to`/`both`).
    watched = [item.jid for item in items if item.is_remote and item.sees_presence]
    remote = {row.jid: row for row in RemotePresence.objects.filter(jid__in=watched)} if watched else {}

    def presence_for(item: RosterItem, person: User | None) -> Presence | None:
        if item.jid in my_blocks or item.domain in my_blocks:
            return None
        if item.is_remote:
            return remote_presence(item, remote.get(item.jid))
        if person is None or person.pk not in sharing or person.pk in blocked_me:
            return None
        return presence_of(person, sessions[person.pk])

    groups: dict[str, GroupView] = {}
    offline: list[ContactRow] = []
    requests: list[RequestRow] = []
    waiting: list[ContactRow] = []
    for item in items:
        person = people.get(item.jid)
        if item.pending_in and not (item.jid in my_blocks or item.domain in my_blocks):
            requests.append(RequestRow(item, person))
        if not item.listed:
            continue
        row = ContactRow(item, person, presence_for(item, person))
        if row.pending_out and not row.online:
            # Shown apart until they answer, and not counted in its groups; still one of the offline contacts.
            waiting.append(row)
            offline.append(row)
            continue
        for name in row.group_names or [UNGROUPED]:
            group = groups.setdefault(name, GroupView(name))
            group.total += 1
            if row.online:
                group.online += 1
                group.rows.append(row)
        if not row.online:
            offline.append(row)

    ordered = sorted(groups.values(), key=lambda g: (g.name == UNGROUPED, g.name.lower()))
    for group in ordered:
        group.rows.sort(key=lambda r: r.name.lower())
    offline.sort(key=lambda r: r.name.lower())
    waiting.sort(key=lambda r: r.item.created_at, reverse=True)
    me = presence_of(user, sessions[user.pk])
    return RosterView(groups=ordered, offline=offline, requests=requests, me=me, waiting=waiting)
