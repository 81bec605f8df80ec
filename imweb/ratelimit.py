"""Rate limits counted in the shared Django cache (Redis), so every process agrees: per person for messages,
reactions and contact requests, per remote server and sender for federation.

Each limit is "at most N in a fixed window of S seconds"; a user has one counter per limit and window. Fixed
windows cost one counter per limit and let through at most 2N around a window boundary, which is fine for a
flood guard. Counting is atomic in Redis (INCR), so concurrent senders in different processes cannot both
take the last slot. A refused attempt gives its slots back, so retrying while refused never extends the wait.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.core.cache import cache

# Where windows get their time; tests put a fixed clock here so a burst never straddles two windows.
clock: Callable[[], float] = time.time


Refuse = Callable[[int], Exception]


class TooFast(Exception):
    """The default refusal: `retry_after` whole seconds (at least 1) until the window has room again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many at once; try again in {retry_after} s.")
        self.retry_after = retry_after


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


def charge(
    bucket: str,
    user_id: int | str,
    limits: Sequence[tuple[int, int]],
    *,
    now: float | None = None,
    refuse: Refuse = TooFast,
) -> Charge:
    """Take one slot in every window of `bucket` for this user (or sender, or server), or raise `refuse(retry_after)`
    (and take none)."""
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
            raise refuse(retry_after)
    return Charge(taken)


def charge_many(
    bucket: str,
    user_ids: Sequence[int],
    limits: Sequence[tuple[int, int]],
    *,
    now: float | None = None,
    refuse: Refuse = TooFast,
) -> list[Charge | Exception]:
    """`charge` for many attempts at once (a batch of sends), in two round trips to Redis whatever their number.

    `user_ids` lists whose attempt each entry is, in order; each entry gets its Charge, or SlowDown once its
    user's window is full (their earlier attempts in the list go first), exactly as one `charge` per entry would
    (as `refuse(retry_after)`).
    """
    moment = clock() if now is None else now
    wanted = Counter(user_ids)
    windows = [(user_id, count, seconds, int(moment // seconds)) for user_id in wanted for count, seconds in limits]
    names = {w: f"chat:rl:{bucket}:{w[0]}:{w[2]}:{w[3]}" for w in windows}
    client = cache._cache.get_client(write=True)  # Django's cache has no pipeline: its redis-py client does
    pipe = client.pipeline(transaction=False)
    for window in windows:
        key = cache.make_and_validate_key(names[window])
        pipe.incrby(key, wanted[window[0]])
        pipe.expire(key, window[2] + 1, nx=True)  # named after its window: it lives at least as long
    used = dict(zip(windows, pipe.execute()[::2], strict=True))
    allowed: dict[int, int] = {}
    retry: dict[int, int] = {}
    for user_id, count, seconds, window in windows:
        free = max(0, count - (used[(user_id, count, seconds, window)] - wanted[user_id]))
        if free < allowed.get(user_id, wanted[user_id]):
            allowed[user_id] = free
            retry[user_id] = max(1, math.ceil((window + 1) * seconds - moment))
    excess = [(w, wanted[w[0]] - allowed.get(w[0], wanted[w[0]])) for w in windows]
    if any(n for _, n in excess):
        pipe = client.pipeline(transaction=False)
        for window, n in excess:
            if n:
                pipe.decrby(cache.make_and_validate_key(names[window]), n)
        pipe.execute()
    results: list[Charge | Exception] = []
    taken: Counter[int] = Counter()
    for user_id in user_ids:
        taken[user_id] += 1
        if taken[user_id] <= allowed.get(user_id, wanted[user_id]):
            results.append(Charge([names[w] for w in windows if w[0] == user_id]))
        else:
            results.append(refuse(retry[user_id]))
    return results
