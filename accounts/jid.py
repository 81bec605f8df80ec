"""Bare JIDs (RFC 7622): parsing user input into `localpart@domainpart`, and telling local from remote."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from accounts.errors import InvalidJid

# RFC 7622 §3.3.1: these may not appear in a localpart. Whitespace and control characters are refused too.
_LOCALPART_FORBIDDEN = set("\"&'/:<>@")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_PART_BYTES = 1023


@dataclass(frozen=True, slots=True)
class BareJid:
    localpart: str
    domain: str

    def __str__(self) -> str:
        return f"{self.localpart}@{self.domain}" if self.localpart else self.domain

    @property
    def is_local(self) -> bool:
        return self.domain == settings.IMWEB_DOMAIN


def _clean_domain(domain: str, original: str) -> str:
    domain = domain.rstrip(".").lower()
    if not domain:
        raise InvalidJid(f"'{original}' has no server name after the '@'.")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidJid(f"'{domain}' is not a valid server name.") from None
    if len(ascii_domain) > 253 or not all(_DOMAIN_LABEL.match(label) for label in ascii_domain.split(".")):
        raise InvalidJid(f"'{domain}' is not a valid server name.")
    return domain


def parse_bare_jid(text: str, *, allow_domain: bool = False) -> BareJid:
    """Parse what a person typed as an address (`alice@example.org`, or `example.org` when allow_domain).

    A resource (`/phone`) is dropped: contacts and blocks are about people and servers, not devices.
    Localparts are case-folded to lowercase, as XMPP servers compare them.
    """
    original = text
    text = text.strip()
    if not text:
        raise InvalidJid("Please enter an address like alice@example.org.")
    if any(ch.isspace() for ch in text):
        raise InvalidJid(f"'{original.strip()}' contains spaces; an address looks like alice@example.org.")
    if text.lower().startswith("xmpp:"):
        text = text[5:].split("?", 1)[0]
    text = text.split("/", 1)[0]
    if "@" not in text:
        if allow_domain:
            return BareJid("", _clean_domain(text, original))
        raise InvalidJid(f"'{text}' is missing the '@': an address looks like alice@example.org.")
    localpart, _, domain = text.rpartition("@")
    localpart = localpart.lower()
    if not localpart:
        raise InvalidJid(f"'{text}' has nothing before the '@'.")
    bad = sorted({ch for ch in localpart if ch in _LOCALPART_FORBIDDEN or not ch.isprintable()})
    if bad:
        raise InvalidJid(f"'{text}' contains characters an address cannot have: {' '.join(bad)}")
    if len(localpart.encode()) > MAX_PART_BYTES:
        raise InvalidJid("That address is too long.")
    return BareJid(localpart, _clean_domain(domain, original))


def local_jid(username: str) -> str:
    return f"{username}@{settings.IMWEB_DOMAIN}"
