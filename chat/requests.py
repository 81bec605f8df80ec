"""Requests follow blocks: a person who blocks someone (or their whole server) no longer sees that stranger's first
messages waiting in their Requests, in every tab at once and after a reload; unblocking brings them back, unless
another block still stands. Connected to accounts.signals in chat.apps (accounts does not know conversations).

A block hides such a conversation by marking the person's participation left: every list, count, email and read
then skips it, as for a room they left, and the history is kept for an unblock to bring back.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from accounts import events
from accounts.events import notify_users
from accounts.jid import BareJid
from accounts.lookups import is_blocked
from accounts.models import User
from chat.models import Conversation, Participant


def _waiting(user: User, jid: BareJid, *, hidden: bool) -> dict[int, int]:
    """The user's participations (id → conversation id) in direct conversations that `jid` (a person, or
    everyone on a server) started and that wait in the user's Requests: shown ones, or those a block hid."""
    peer = (
        Q(conversation__participants__jid=str(jid))
        if jid.localpart
        else Q(conversation__participants__jid__endswith=f"@{jid.domain}")
    )
    rows = Participant.objects.filter(
        peer, user=user, is_request=True, left_at__isnull=not hidden, conversation__kind=Conversation.Kind.DIRECT
    ).values_list("pk", "conversation_id")
    return dict(rows)


def _peer_blocked(user: User, conversation_id: int) -> bool:
    """Does the user still block the other side of this direct conversation (by address or server)?"""
    others = (
        Participant.objects.filter(conversation_id=conversation_id).exclude(jid=user.jid).values_list("jid", flat=True)
    )
    return any(is_blocked(user, other) for other in others)


def hide_blocked_requests(sender: object, *, user: User, jid: BareJid, **kwargs: object) -> None:
    hidden = _waiting(user, jid, hidden=False)
    if hidden:
        Participant.objects.filter(pk__in=list(hidden)).update(left_at=timezone.now())
    for conversation_id in hidden.values():
        notify_users([user.pk], events.conversation_removed(conversation_id))


def restore_unblocked_requests(sender: object, *, user: User, jid: BareJid, **kwargs: object) -> None:
    restored = {
        pk: conversation_id
        for pk, conversation_id in _waiting(user, jid, hidden=True).items()
        if not _peer_blocked(user, conversation_id)
    }
    if restored:
        Participant.objects.filter(pk__in=list(restored)).update(left_at=None)
    for conversation_id in restored.values():
        notify_users([user.pk], events.conversation_updated(conversation_id))


def conversation_members(sender: object, *, user: User, **kwargs: object) -> list[int]:
    """The current members of conversations `user` is in: they have the user's name and picture on screen."""
    theirs = Participant.objects.filter(user=user, left_at__isnull=True).values("conversation_id")
    members = Participant.objects.filter(conversation_id__in=theirs, left_at__isnull=True, user__isnull=False)
    return list(members.values_list("user_id", flat=True))
