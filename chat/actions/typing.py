"""Typing notifications (XEP-0085's composing/paused, as the web UI says them): fanned out, never stored.

A tab says "started" while its user types (throttled) and "paused" when they stop or send. Nothing is written:
the others' sockets show "… is typing" and forget it after TYPING_EXPIRES_SECONDS without a refresh, so a
lost "paused" (a closed tab) cannot leave it stuck. Someone who chose not to send typing notifications
(`send_typing` off) tells nobody.
"""

from __future__ import annotations

from accounts.events import notify_users
from accounts.models import User
from chat.actions.common import current_members, local_user_ids, membership

TYPING = "typing.update"
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
    others = [uid for uid in local_user_ids(current_members(mine.conversation)) if uid != user.pk]
    # Outside a transaction on_commit runs at once: no database write happens for typing.
    notify_users(others, TYPING, conversation=mine.conversation_id, jid=user.jid, name=user.name, started=started)
    return bool(others)
