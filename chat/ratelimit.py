"""The per-person limits on chat writes (imweb.ratelimit counts them): messages and edits, and reactions, each
refused with SlowDown, which says when to try again."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from chat.errors import SlowDown
from imweb import ratelimit as counters

Charge = counters.Charge


def message_limits() -> Sequence[tuple[int, int]]:
    """(count, seconds) pairs: IMWEB_MESSAGE_RATE_LIMITS (imweb.settings)."""
    return settings.IMWEB_MESSAGE_RATE_LIMITS


def reaction_limits() -> Sequence[tuple[int, int]]:
    """Reactions are cheaper for people to make (a tap), so they get more room, but still fan out to everyone."""
    return settings.IMWEB_REACTION_RATE_LIMITS


def charge(bucket: str, user_id: int, limits: Sequence[tuple[int, int]], *, now: float | None = None) -> Charge:
    return counters.charge(bucket, user_id, limits, now=now, refuse=SlowDown)


def charge_many(bucket: str, user_ids: Sequence[int], limits: Sequence[tuple[int, int]]) -> list[Charge | Exception]:
    return counters.charge_many(bucket, user_ids, limits, refuse=SlowDown)
