"""Reads the account actions share: which local account an address names, and who blocks whom."""

from __future__ import annotations

from accounts.jid import BareJid, parse_bare_jid
from accounts.models import BlockedJid, User


def is_blocked(owner: User, jid: str) -> bool:
    """Does `owner` block this bare JID, or its whole domain?"""
    domain = jid.rpartition("@")[2]
    return BlockedJid.objects.filter(owner=owner, jid__in=[jid, domain]).exists()


def local_user_for(jid: BareJid | str) -> User | None:
    """The active local account behind a JID, or None (remote, or no such account)."""
    parsed = jid if isinstance(jid, BareJid) else parse_bare_jid(jid)
    if not parsed.is_local or not parsed.localpart:
        return None
    return User.objects.filter(username=parsed.localpart, is_active=True).first()
