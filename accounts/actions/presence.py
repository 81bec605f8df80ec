"""Presence actions: the user's chosen state, per-tab sessions (idle → away), and who may see what.

A user's effective presence is derived, never stored: offline without a live session; otherwise the chosen
state, except that when every session is idle, "available" becomes "away" (the most available tab wins).
"invisible" is shown to others as offline. Only contacts the user shares presence with (`from`/`both`) and
who are not blocked either way learn anything; everyone else gets None.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import events
from accounts.errors import InvalidProfile
from accounts.events import notify_users
from accounts.lookups import is_blocked
from accounts.models import CHOOSABLE_SHOWS, BlockedJid, PresenceSession, RosterItem, Show, Subscription, User
from federation import outbox

STATUS_MESSAGE_MAX = 140
_CHOOSABLE = {value for value, _ in CHOOSABLE_SHOWS}


@dataclass(frozen=True)
class Presence:
    show: str
    status: str = ""
    last_seen: datetime | None = None

    @property
    def online(self) -> bool:
        return self.show != Show.OFFLINE

    @property
    def label(self) -> str:
        return Show(self.show).label


def effective_show(user: User, sessions: list[PresenceSession] | None = None) -> str:
    """What the user's contacts see as <show/>: derived from the chosen state and the live sessions."""
    if sessions is None:
        sessions = list(user.presence_sessions.all())
    if not sessions or user.presence_show == Show.INVISIBLE:
        return Show.OFFLINE
    if all(session.idle for session in sessions) and user.presence_show == Show.AVAILABLE:
        return Show.AWAY
    return user.presence_show


def presence_of(user: User, sessions: list[PresenceSession] | None = None) -> Presence:
    """The user's presence as their authorised contacts see it."""
    show = effective_show(user, sessions)
    if show == Show.OFFLINE:
        return Presence(Show.OFFLINE, "", user.last_seen if user.show_last_seen else None)
    return Presence(show, user.status_message)


def presence_for_viewer(viewer: User, contact: User) -> Presence | None:
    """What `viewer` may know of `contact`'s presence: None unless `contact` shares it with them."""
    shares = RosterItem.objects.filter(
        owner=contact, jid=viewer.jid, subscription__in=[Subscription.FROM, Subscription.BOTH]
    ).exists()
    if not shares or is_blocked(contact, viewer.jid) or is_blocked(viewer, contact.jid):
        return None
    return presence_of(contact)


def presence_audience(user: User) -> list[int]:
    """Local users who see this user's presence, plus the user (their own tabs show it too)."""
    return _Audience(user).local()


class _Audience:
    """Who hears of this user's presence, from one read of their contact list (what a tab's coming and going
    costs: it is the hot path of a reconnect storm)."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.rows = list(
            RosterItem.objects.filter(
                owner=user, subscription__in=[Subscription.FROM, Subscription.BOTH, Subscription.TO]
            ).values_list("jid", "subscription")
        )
        self.suffix = f"@{settings.IMWEB_DOMAIN}"

    def _shared_with(self) -> list[str]:
        return [jid for jid, sub in self.rows if sub in (Subscription.FROM, Subscription.BOTH)]

    def local(self) -> list[int]:
        usernames = [jid.removesuffix(self.suffix) for jid in self._shared_with() if jid.endswith(self.suffix)]
        ids = User.objects.filter(username__in=usernames).values_list("pk", flat=True) if usernames else []
        return [self.user.pk, *ids]

    def remote(self) -> list[str]:
        """Remote JIDs this user shares presence with (`from`/`both`), minus those the user blocks (or whose
        server the user blocks). A remote server's blocks are its own business: it filters what it receives."""
        jids = [jid for jid in self._shared_with() if not jid.endswith(self.suffix)]
        if not jids:
            return []
        blocks = set(BlockedJid.objects.filter(owner=self.user).values_list("jid", flat=True))
        return [jid for jid in jids if jid not in blocks and jid.rpartition("@")[2] not in blocks]

    def watched_remote(self) -> list[str]:
        """Remote contacts whose presence this user sees (`to`/`both`): the ones to probe."""
        return [
            jid
            for jid, sub in self.rows
            if sub in (Subscription.TO, Subscription.BOTH) and not jid.endswith(self.suffix)
        ]


def _announce_if_changed(user: User, before: Presence, audience: _Audience | None = None) -> None:
    after = presence_of(user)
    changed, remote = after != before, (after.show, after.status) != (before.show, before.status)
    if not changed and not remote:
        return
    audience = audience or _Audience(user)
    if changed:
        notify_users(audience.local(), events.roster_changed())
    if remote:
        # RFC 6121 §4.4.2: every change goes to each remote contact we share presence with, one stanza per JID
        # (the outbox groups them by server); going offline is `unavailable`.
        for jid in audience.remote():
            outbox.presence(user.jid, jid, after.show, after.status)


def send_presence_to_remote(user: User, jid: str) -> None:
    """Queue the user's current presence for one remote JID (after approving them, or answering their probe)."""
    current = presence_of(user)
    outbox.presence(user.jid, jid, current.show, current.status)


def answer_probe(user: User, jid: str) -> bool:
    """A remote JID probes `user`'s presence (RFC 6121 §4.3.2): it gets the current presence only if `user`
    shares it with them and neither blocks the other; anyone else learns nothing, not even that `user` exists
    (no answer at all). Returns whether an answer was queued."""
    shares = RosterItem.objects.filter(
        owner=user, jid=jid, subscription__in=[Subscription.FROM, Subscription.BOTH]
    ).exists()
    if not shares or is_blocked(user, jid):
        return False
    with transaction.atomic():
        send_presence_to_remote(user, jid)
    return True


def set_presence(user: User, *, show: str, status: str | None = None) -> User:
    """Set the chosen state (available, away, xa, dnd, invisible) and, if given, the status message."""
    if show not in _CHOOSABLE:
        choices = ", ".join(sorted(_CHOOSABLE))
        raise InvalidProfile("show", f"'{show}' is not a presence state; choose one of {choices}.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        before = presence_of(user)
        user.presence_show = show
        fields = ["presence_show"]
        if status is not None:
            user.status_message = clean_status(status)
            fields.append("status_message")
        user.save(update_fields=fields)
        _announce_if_changed(user, before)
    return user


def clean_status(status: str) -> str:
    status = unicodedata.normalize("NFC", status.strip())
    if len(status) > STATUS_MESSAGE_MAX:
        raise InvalidProfile(
            "status_message",
            f"The status message can be at most {STATUS_MESSAGE_MAX} characters long (this one has {len(status)}).",
        )
    if any(unicodedata.category(ch) in {"Cc", "Cf"} and ch != "\u200d" for ch in status):
        raise InvalidProfile("status_message", "The status message contains invisible control characters.")
    return status


def open_session(user: User, resource: str) -> PresenceSession:
    """A tab or device connected: the user is online (if not invisible)."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        first = not user.presence_sessions.exists()
        before = presence_of(user)
        session = PresenceSession.objects.create(user=user, resource=resource, heartbeat_at=timezone.now())
        audience = _Audience(user) if first else None
        _announce_if_changed(user, before, audience)
        if audience is not None:
            # RFC 6121 §4.3.1: coming online, ask each remote contact's server for their current presence (what
            # we kept may be stale: their server only tells us about changes).
            for jid in audience.watched_remote():
                outbox.probe(user.jid, jid)
    return session


def close_session(resource: str) -> None:
    """A tab or device went away; with the last one gone the user is offline and `last_seen` is set."""
    with transaction.atomic():
        session = PresenceSession.objects.filter(resource=resource).select_related("user").first()
        if session is None:
            return
        user = User.objects.select_for_update().get(pk=session.user_id)
        before = presence_of(user)
        session.delete()
        if not user.presence_sessions.exists():
            user.last_seen = timezone.now()
            user.save(update_fields=["last_seen"])
        _announce_if_changed(user, before)


def set_session_idle(resource: str, idle: bool) -> None:
    """The browser reports its user idle (no input for their chosen minutes) or active again."""
    with transaction.atomic():
        session = PresenceSession.objects.filter(resource=resource).first()
        if session is None or session.idle == idle:
            return
        user = User.objects.select_for_update().get(pk=session.user_id)
        before = presence_of(user)
        session.idle = idle
        session.heartbeat_at = timezone.now()
        session.save(update_fields=["idle", "heartbeat_at"])
        _announce_if_changed(user, before)


def heartbeat(resource: str) -> bool:
    """Keep a session alive; False when it is gone (swept), so the caller can open a new one."""
    return resource in refresh_sessions([resource])


def refresh_sessions(resources: list[str]) -> set[str]:
    """Keep these sessions alive (one UPDATE, whatever their number); returns the ones that still exist (the
    others were swept, so their callers open new ones)."""
    rows = PresenceSession.objects.filter(resource__in=resources)
    rows.update(heartbeat_at=timezone.now())
    return set(rows.values_list("resource", flat=True))


def sweep_stale_sessions(now: datetime | None = None) -> int:
    """Close sessions whose web process stopped refreshing them (it crashed or lost the database)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=3 * settings.IMWEB_PRESENCE_HEARTBEAT_SECONDS)
    stale = list(PresenceSession.objects.filter(heartbeat_at__lt=cutoff).values_list("resource", flat=True))
    for resource in stale:
        close_session(resource)
    return len(stale)
