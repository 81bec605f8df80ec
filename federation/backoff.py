"""When to try a remote server again after failed attempts: a pure function, unit-tested without I/O.

Quick at first, because most failures are short (a restart, a dropped connection): 1 s, 2 s, 4 s, ... doubling
up to a ceiling of one minute, so a message to a server that comes back is late by at most about a minute. The
state (how many attempts failed) is the caller's: the outbound pool keeps it in memory, a durable sender can keep
it in the database so a restart does not hammer a dead peer.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 60.0


def delay(attempts: int) -> float:
    """Seconds to wait after `attempts` consecutive failures (0 failures: no wait)."""
    if attempts < 0:
        raise ValueError(f"attempts cannot be negative, not {attempts}")
    if attempts == 0:
        return 0.0
    # Capping the exponent first keeps 2**n small however many failures have piled up.
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** min(attempts - 1, 32))


def next_attempt(attempts: int, now: datetime, *, jitter: Callable[[], float] | None = None) -> datetime:
    """The moment to try again after `attempts` consecutive failed attempts, counted from `now`.

    `jitter`, if given, returns a number in [0, 1); up to a tenth of the delay is added in proportion, so that many
    processes that lost the same peer at once do not all come back in the same second. Tests pass a constant
    (or nothing) to stay deterministic; production can pass `random.random`.
    """
    seconds = delay(attempts)
    if jitter is not None:
        fraction = jitter()
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"jitter must return a number in [0, 1), not {fraction}")
        seconds += seconds * 0.1 * fraction
    return now + timedelta(seconds=seconds)
