"""Inbound rate limits per remote server and per remote sender, counted in the shared cache like chat's.

A remote server is one untrusted peer that speaks for many people, so it gets two budgets: one for the whole
domain (a flood from anywhere on it) and one per sender JID (one spammer must not use up a whole server's
budget). Counting is `imweb.ratelimit.charge` (fixed windows, atomic INCR in Redis, shared by every process):
one counter scheme for the project.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from imweb import ratelimit as counters

# (count, seconds). A domain carries presence broadcasts of all its users, so it gets far more room than a sender.
DEFAULT_DOMAIN_LIMITS: tuple[tuple[int, int], ...] = ((300, 10), (1500, 60))
DEFAULT_SENDER_LIMITS: tuple[tuple[int, int], ...] = ((30, 10), (150, 60))


class RateLimited(Exception):
    """Too many stanzas from this domain or sender; `scope` says which budget ran out."""

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"too many stanzas from {scope}; try again in {retry_after} s")
        self.scope = scope
        self.retry_after = retry_after


def domain_limits() -> Sequence[tuple[int, int]]:
    return getattr(settings, "IMWEB_FEDERATION_DOMAIN_RATE_LIMITS", DEFAULT_DOMAIN_LIMITS)


def sender_limits() -> Sequence[tuple[int, int]]:
    return getattr(settings, "IMWEB_FEDERATION_SENDER_RATE_LIMITS", DEFAULT_SENDER_LIMITS)


def charge(domain: str, sender: str, *, per_sender: bool = True) -> None:
    """Count one inbound stanza from `sender` (a bare JID) on `domain`, or raise RateLimited (counting nothing).

    `per_sender=False` counts against the domain's budget only: for acknowledgements of our own traffic
    (receipts, errors), whose number is bounded by what we sent, so that the burst of receipts after a peer's
    outage is not mistaken for a person flooding.
    """
    taken = counters.charge("s2s-domain", domain, domain_limits(), refuse=lambda wait: RateLimited(domain, wait))
    if not per_sender:
        return
    try:
        counters.charge("s2s-sender", sender, sender_limits(), refuse=lambda wait: RateLimited(sender, wait))
    except RateLimited:
        taken.refund()
        raise
