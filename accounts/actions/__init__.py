"""The only code that changes account state. Each action validates, writes in one transaction, and wakes the
affected users' sockets on commit. Views, consumers, the admin, commands and (later) federation call these."""

from accounts.actions.presence import (
    close_session,
    effective_show,
    heartbeat,
    open_session,
    presence_for_viewer,
    presence_of,
    set_presence,
    set_session_idle,
    sweep_stale_sessions,
)
from accounts.actions.profile import (
    check_avatar_size,
    delete_account,
    remove_avatar,
    set_avatar,
    update_privacy,
    update_profile,
)
from accounts.actions.roster import (
    accept_subscription,
    block_jid,
    decline_subscription,
    is_blocked,
    local_user_for,
    remove_contact,
    rename_contact,
    request_subscription,
    search_directory,
    set_contact_groups,
    unblock_jid,
)

__all__ = [
    "accept_subscription",
    "block_jid",
    "check_avatar_size",
    "close_session",
    "decline_subscription",
    "delete_account",
    "effective_show",
    "heartbeat",
    "is_blocked",
    "local_user_for",
    "open_session",
    "presence_for_viewer",
    "presence_of",
    "remove_avatar",
    "remove_contact",
    "rename_contact",
    "request_subscription",
    "search_directory",
    "set_avatar",
    "set_contact_groups",
    "set_presence",
    "set_session_idle",
    "sweep_stale_sessions",
    "unblock_jid",
    "update_privacy",
    "update_profile",
]
