"""Typing notifications (XEP-0085's composing/paused, as the web UI says them): fanned out, never stored.

A tab says "started" while its user types (throttled) and "paused" when they stop or send. Nothing is written:
the others' sockets show "… is typing" and forget it after TYPING_EXPIRES_SECONDS without a refresh, so a
lost "paused" (a closed tab) cannot leave it stuck. Someone who chose not to send typing notifications
(`send_typing` off) tells nobody.
"""

from __future__ import annotations

from accounts import events
from accounts.events import notify_users
from accounts.models import RosterItem, User
from chat.actions.common import current_members, local_user_ids, membership
from chat.actions.messages import direct_key
from chat.models import Conversation, Participant
from federation import outbox

TYPING_EXPIRES_SECONDS = 6.0


def set_typing(user: User, conversation_id: object, started: bool) -> bool:
    """Tell the conversation's other participants that `user` started (or stopped) typing there.

    Raises NotFound for a conversation the user is not in. Returns whether anyone was told: not when the
    user turned typing notifications off, nor while the conversation waits in their Requests (answering is
    what accepts it, and the sender should not learn they looked).
    """
    mine = membership(user, conversation_id)
    if not getattr(user, "send_typing", True) or mine.is_request:
        return False
    members = current_members(mine.conversation)
    others = [uid for uid in local_user_ids(members) if uid != user.pk]
    # Outside a transaction on_commit runs at once: no database write happens for typing.
    notify_users(others, events.typing(mine.conversation_id, jid=user.jid, name=user.name, started=started))
    # People on other servers (direct conversations only) get XEP-0085 composing/paused, sent at once if their
    # server can be reached and otherwise forgotten: typing is never stored, here or in the outbox.
    remote = [p.jid for p in members if p.user_id is None]
    for jid in remote:
        outbox.chat_state(user.jid, jid, "composing" if started else "paused")
    return bool(others or remote)


def receive_chat_state(sender_jid: str, recipient: User, state: str) -> bool:
    """A person on another server sent `recipient` a XEP-0085 chat state: `composing` shows them typing in the
    direct conversation of the two, anything else (paused, active, inactive, gone) stops it. Nothing when there
    is no conversation yet, or while it waits in the recipient's Requests (a stranger's typing is not news).
    Returns whether the recipient's screens were told."""
    conversation_id = (
        Conversation.objects.filter(direct_key=direct_key(sender_jid, recipient.jid))
        .values_list("pk", flat=True)
        .first()
    )
    if conversation_id is None:
        return False
    shown = Participant.objects.filter(
        conversation_id=conversation_id, user=recipient, left_at__isnull=True, is_request=False
    ).exists()
    if not shown:
        return False
    nickname = RosterItem.objects.filter(owner=recipient, jid=sender_jid).values_list("name", flat=True).first()
    name = nickname or sender_jid.rpartition("@")[0] or sender_jid
    started = state == "composing"
    notify_users([recipient.pk], events.typing(conversation_id, jid=sender_jid, name=name, started=started))
    return True
