"""The frame decoder both sockets use: every malformed frame is a precise error, never an exception that would
close the socket."""

from __future__ import annotations

import pytest

from chat.frames import MAX_DEPTH, FrameBudget, FrameError, decode


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        ("not json", "invalid_frame", "JSON object"),
        ("[1, 2]", "invalid_frame", '"type"'),
        ('{"type": 5}', "invalid_frame", '"type"'),
        ('{"kind": "sync"}', "invalid_frame", '"type"'),
        ("[" * 8000, "invalid_frame", "nest at most"),
        ("{" * 8000, "invalid_frame", "nest at most"),
        ('{"type": "sync", "x": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}", "invalid_frame", "nest"),
        ('{"type": "sync", "x": "' + "a" * 70_000 + '"}', "frame_too_large", "at most 64 KB"),
        ("\ud800", "invalid_frame", "JSON object"),
    ],
    ids=["text", "array", "type-not-text", "no-type", "deep-arrays", "deep-objects", "one-too-deep", "large", "lone"],
)
def test_a_bad_frame_is_a_precise_error(raw, code, words):
    with pytest.raises(FrameError, match=words) as raised:
        decode(raw, None, 64 * 1024)
    assert raised.value.code == code


def test_brackets_inside_strings_do_not_count_as_nesting():
    frame = decode('{"type": "message.send", "body": "' + "[{" * 500 + '\\" ]"}', None, 64 * 1024)
    assert frame["body"].startswith("[{[{")


def test_frames_up_to_the_depth_and_size_limits_are_read():
    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert decode('{"type": "sync", "x": ' + nested + "}", None, 64 * 1024)["type"] == "sync"
    assert decode(None, b'{"type": "ping"}', 16)["type"] == "ping"


def test_the_frame_budget_refills_at_its_rate_and_work_done_is_paid_even_into_debt():
    now = [0.0]
    budget = FrameBudget(rate=10.0, burst=3.0, clock=lambda: now[0])
    assert [budget.spend() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.spend() == pytest.approx(0.1)  # empty: one token comes back in a tenth of a second
    now[0] += 0.1
    assert budget.spend() == 0.0
    budget.charge(5.0)  # a frame that made the server render a lot
    assert budget.spend() == pytest.approx(0.6)  # in debt: five tokens' worth, then one more
    now[0] += 10
    assert budget.spend() == 0.0 and budget.tokens == pytest.approx(2.0)  # never more than the burst
