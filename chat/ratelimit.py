"""Per-user rate limits for chat writes, counted in the shared Django cache (Redis), so every process agrees.

Each limit is "at most N in a fixed window of S seconds"; a user has one counter per limit and window. Fixed
windows cost one counter per limit and let through at most 2N around a window boundary, which is fine for a
flood guard. Counting is atomic in Redis (INCR), so concurrent senders in different processes cannot both
take the last slot. A refused attempt gives its slots back, so retrying while refused never extends the wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from chat.errors import SlowDown

# (count, seconds): bursts of up to 20 per 10-second window, and 120 per minute sustained.
DEFAULT_MESSAGE_LIMITS: tuple[tuple[int, int], ...] = ((20, 10), (120, 60))
# Reactions are cheaper for people to make (a tap), so they get more room, but still fan out to everyone.
DEFAULT_REACTION_LIMITS: tuple[tuple[int, int], ...] = ((30, 10), (300, 60))
# Where windows get their time; tests put a fixed clock here so a burst never straddles two windows.
clock: Callable[[], float] = time.time


def message_limits() -> Sequence[tuple[int, int]]:
    return getattr(settings, "IMWEB_MESSAGE_RATE_LIMITS", DEFAULT_MESSAGE_LIMITS)


def reaction_limits() -> Sequence[tuple[int, int]]:
    return getattr(settings, "IMWEB_REACTION_RATE_LIMITS", DEFAULT_REACTION_LIMITS)


@dataclass
class Charge:
    """Slots taken by one accepted attempt; `refund()` gives them back (a retry that stored nothing new)."""

    keys: list[str]

    def refund(self) -> None:
        for key in self.keys:
            _decrement(key)
        self.keys = []


def _increment(key: str, timeout: int) -> int:
    try:
        return cache.incr(key)
    except ValueError:  # the first attempt in this window
        if cache.add(key, 1, timeout=timeout):
            return 1
        # Another process opened the window between our incr() and add(): count on top of theirs.
        return cache.incr(key)


def _decrement(key: str) -> None:
    try:
        cache.decr(key)
    except ValueError:  # the window is already over: nothing to give back
        pass


def charge(bucket: str, user_id: int, limits: Sequence[tuple[int, int]], *, now: float | None = None) -> Charge:
    """Take one slot in every window of `bucket` for this user, or raise SlowDown (and take none)."""
    moment = clock() if now is None else now
    taken: list[str] = []
    for count, seconds in limits:
        window = int(moment // seconds)
        key = f"chat:rl:{bucket}:{user_id}:{seconds}:{window}"
        # The key is named after its window and lives at least as long as it, wherever in it it was created.
        used = _increment(key, seconds + 1)
        taken.append(key)
        if used > count:
            Charge(taken).refund()
            retry_after = max(1, math.ceil((window + 1) * seconds - moment))
            raise SlowDown(retry_after)
    return Charge(taken)
