"""When a failed remote server is tried again: quick at first, doubling, capped at a minute."""

from datetime import UTC, datetime, timedelta

import pytest

from federation.backoff import MAX_DELAY_SECONDS, delay, next_attempt

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(0, 0), (1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 32), (7, 60), (8, 60), (1000, 60), (10**9, 60)],
)
def test_delay_doubles_from_one_second_up_to_a_minute(attempts: int, seconds: float) -> None:
    assert delay(attempts) == seconds
    assert next_attempt(attempts, NOW) == NOW + timedelta(seconds=seconds)


def test_delays_never_shrink_and_never_pass_the_cap() -> None:
    delays = [delay(n) for n in range(200)]

    assert delays == sorted(delays)
    assert max(delays) == MAX_DELAY_SECONDS


def test_jitter_adds_at_most_a_tenth_of_the_delay() -> None:
    assert next_attempt(3, NOW, jitter=lambda: 0.0) == NOW + timedelta(seconds=4)
    assert next_attempt(3, NOW, jitter=lambda: 0.5) == NOW + timedelta(seconds=4.2)
    assert next_attempt(7, NOW, jitter=lambda: 0.999) < NOW + timedelta(seconds=66)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 2.0])
def test_jitter_outside_zero_to_one_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="jitter"):
        next_attempt(1, NOW, jitter=lambda: fraction)


def test_negative_attempts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        next_attempt(-1, NOW)
