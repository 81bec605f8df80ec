"""The cursor a socket keeps per conversation: the next seq is forwarded, a repeat dropped, a jump repaired
from the database, and a reconnect rewinds to what the client says it holds."""

from __future__ import annotations

import pytest

from chat.cursor import Cursor, Verdict


@pytest.fixture
def cursor() -> Cursor:
    followed = Cursor()
    followed.follow(7, 10)
    return followed


def test_pushes_in_order_are_forwarded_one_after_the_other(cursor):
    for seq in (11, 12, 13):
        assert cursor.offer(7, seq) is Verdict.FORWARD
        cursor.advance(7, seq)
    assert cursor.last(7) == 13


def test_a_push_already_forwarded_is_a_duplicate(cursor):
    cursor.advance(7, 11)
    assert cursor.offer(7, 11) is Verdict.DUPLICATE
    assert cursor.offer(7, 3) is Verdict.DUPLICATE
    assert cursor.last(7) == 11


def test_a_push_past_the_next_seq_is_a_gap_until_caught_up(cursor):
    assert cursor.offer(7, 13) is Verdict.GAP  # 11 and 12 were lost or are late
    cursor.advance(7, 13)  # the catch-up read 11..13 from the database
    assert cursor.offer(7, 12) is Verdict.DUPLICATE  # the late push of 12 arrives: dropped
    assert cursor.offer(7, 14) is Verdict.FORWARD


def test_a_reconnect_follows_from_what_the_client_holds_even_backwards(cursor):
    cursor.advance(7, 20)
    cursor.follow(7, 15)  # the tab reloaded a page that ends at 15
    assert cursor.offer(7, 16) is Verdict.FORWARD
    assert cursor.offer(7, 21) is Verdict.GAP


def test_advance_never_moves_back_and_ignores_conversations_not_followed(cursor):
    cursor.advance(7, 12)
    cursor.advance(7, 11)
    assert cursor.last(7) == 12
    cursor.advance(8, 5)
    assert not cursor.follows(8)


def test_pushes_about_other_conversations_are_not_the_socket_s_business(cursor):
    assert cursor.offer(8, 1) is Verdict.UNKNOWN
    cursor.forget(7)
    assert cursor.offer(7, 11) is Verdict.UNKNOWN
    assert cursor.positions() == {}
