"""What accounts tells the apps built on it, which accounts itself does not know (chat's conversations).

Sent inside the action's transaction, so a receiver's writes commit or roll back with it.
"""

from django.dispatch import Signal

# A person blocked (`blocked`) or unblocked (`unblocked`) a bare JID or a whole server: `user`, `jid` (BareJid).
blocked = Signal()
unblocked = Signal()
# Who may have `user`'s name or picture on screen besides their contacts: each receiver returns user ids.
profile_viewers = Signal()
