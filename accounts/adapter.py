"""allauth hooks: usernames are folded to lowercase before validation, as XMPP localparts are."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    def clean_username(self, username: str, shallow: bool = False) -> str:
        # "Alice" and "alice" are the same address (RFC 7622 case-folds localparts), so accept either spelling
        # and store the folded one; the validators then see exactly what will be stored.
        return super().clean_username(username.strip().lower(), shallow=shallow)
