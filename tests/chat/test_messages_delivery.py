"""The delivery contract of `send_message`: numbering, storing once, catching up, limits, Requests and blocks."""

from __future__ import annotations

import uuid

import pytest

from accounts import actions as accounts
from accounts.errors import InvalidJid, NoSuchUser
from chat import actions, ratelimit
from chat.errors import (
    ChatError,
    InvalidArgument,
    InvalidMessage,
    MessageTooLong,
    NoSuchMessage,
    SlowDown,
)
from chat.models import Conversation, Message, Participant

pytestmark = pytest.mark.django_db

# A moment in the middle of a 10-second and of a 60-second window, so a burst never straddles two windows.
FIXED_CLOCK = 1_800_000_005.0


@pytest.fixture
def carol(make_user):
    return make_user("carol", display_name="Carol")


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr("imweb.ratelimit.clock", lambda: FIXED_CLOCK)


def befriend(a, b) -> None:
    accounts.request_subscription(a, b.jid)
    accounts.accept_subscription(b, a.jid)


def send(user, to, body="hello", **kwargs) -> Message:
    return actions.send_message(user, to=to, body=body, client_id=kwargs.pop("client_id", uuid.uuid4()), **kwargs)


# --- Numbering --------------------------------------------------------------------------------------------


def test_each_message_takes_the_next_seq_of_its_own_conversation(alice, bob, carol):
    first = send(alice, bob.jid)
    conversation = first.conversation_id
    seqs = [first.seq, send(bob, alice.jid).seq, send(alice, conversation).seq, send(bob, str(conversation)).seq]
    other = send(alice, carol.jid)

    assert seqs == [1, 2, 3, 4]
    assert other.seq == 1  # every conversation counts on its own
    assert Conversation.objects.get(pk=conversation).last_seq == 4


def test_there_is_exactly_one_direct_conversation_per_pair_whoever_writes_first(alice, bob):
    mine = send(alice, bob.jid)
    theirs = send(bob, "  ALICE@imweb.localhost ")

    assert mine.conversation_id == theirs.conversation_id
    conversation = Conversation.objects.get()
    assert conversation.kind == "direct"
    assert conversation.direct_key == "alice@imweb.localhost bob@imweb.localhost"
    assert sorted(Participant.objects.values_list("jid", flat=True)) == [alice.jid, bob.jid]


def test_the_senders_own_read_marker_moves_to_each_message_they_send(alice, bob):
    send(alice, bob.jid)
    message = send(alice, bob.jid)

    mine = Participant.objects.get(user=alice)
    assert (mine.last_read_seq, mine.last_delivered_seq) == (message.seq, message.seq)
    assert Participant.objects.get(user=bob).last_read_seq == 0


def test_a_reply_points_at_the_message_it_answers(alice, bob):
    question = send(alice, bob.jid, "lunch?")
    answer = send(bob, question.conversation_id, "yes", reply_to_seq=question.seq)

    assert answer.reply_to == question


def test_a_reply_to_a_seq_that_does_not_exist_is_refused_and_stores_nothing(alice, bob):
    first = send(alice, bob.jid)

    with pytest.raises(NoSuchMessage, match="no message 7"):
        send(bob, first.conversation_id, reply_to_seq=7)
    assert Message.objects.count() == 1
    assert Conversation.objects.get().last_seq == 1


# --- Storing once -----------------------------------------------------------------------------------------


def test_a_retried_send_returns_the_stored_message_unchanged_stores_once_and_wakes_nobody(
    alice, bob, woken, django_capture_on_commit_callbacks
):
    client_id = uuid.uuid4()
    original = send(alice, bob.jid, "first try", client_id=client_id)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        retried = send(alice, bob.jid, "a different body", client_id=str(client_id))

    assert retried.pk == original.pk
    assert retried.body == "first try"
    assert Message.objects.count() == 1
    assert Conversation.objects.get().last_seq == 1
    assert callbacks == []
    assert woken == set()


def test_a_retry_is_answered_even_after_the_first_attempt_used_up_the_rate(alice, bob, fixed_clock, settings):
    settings.IMWEB_MESSAGE_RATE_LIMITS = [(2, 10)]
    client_id = uuid.uuid4()
    first = send(alice, bob.jid, client_id=client_id)
    send(alice, bob.jid)

    assert send(alice, bob.jid, client_id=client_id).pk == first.pk


def test_client_ids_are_per_sender(alice, bob):
    client_id = uuid.uuid4()
    send(alice, bob.jid, client_id=client_id)
    send(bob, alice.jid, client_id=client_id)

    assert Message.objects.count() == 2


@pytest.mark.parametrize("client_id", ["", "42", "not-a-uuid", None])
def test_a_client_id_must_be_a_uuid(alice, bob, client_id):
    with pytest.raises(InvalidMessage, match="client_id must be a UUID"):
        actions.send_message(alice, to=bob.jid, body="hi", client_id=client_id)
    assert not Message.objects.exists()


# --- Telling people, after the commit only ----------------------------------------------------------------


def test_nobody_is_told_before_the_commit_and_both_sides_are_told_after(
    alice, bob, woken, pushes, django_capture_on_commit_callbacks
):
    befriend(alice, bob)
    pushes.clear()

    with django_capture_on_commit_callbacks(execute=True):
        message = send(alice, bob.jid)
        assert pushes == []  # still inside the transaction

    wake = {"conversation": message.conversation_id, "seq": 1}
    assert pushes == [("message.new", frozenset({alice.pk, bob.pk}), wake)]


def test_a_refused_send_tells_nobody(alice, bob, pushes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(InvalidMessage):
        send(alice, bob.jid, "   ")
    assert pushes == []


def test_a_client_that_missed_pushes_catches_up_to_exactly_the_stored_messages(
    alice, bob, monkeypatch, django_capture_on_commit_callbacks
):
    """The realtime layer drops every other event; Bob syncs from his last seq on each wake-up he does get
    and once more on reconnect, and ends with every message once, in order."""
    befriend(alice, bob)
    held: dict[int, str] = {}  # Bob's client: seq → body
    delivered = 0

    def bob_syncs(conversation_id: int) -> None:
        after = max(held, default=0)
        for message in actions.messages_after(bob, conversation_id, after):
            assert message.seq not in held
            held[message.seq] = message.body

    async def lossy_layer(batch):
        nonlocal delivered
        for user_id, event in batch:
            if user_id != bob.pk:
                continue
            delivered += 1
            if delivered % 2 == 0:  # every other event is lost
                continue
            bob_syncs(event["conversation"])

    monkeypatch.setattr("accounts.events._send", lossy_layer)
    conversation = None
    for n in range(1, 12):
        with django_capture_on_commit_callbacks(execute=True):
            conversation = send(alice, bob.jid, f"message {n}").conversation_id

    assert len(held) < 11  # the loss was real: pushes alone did not bring everything
    bob_syncs(conversation)  # reconnect
    assert held == {n: f"message {n}" for n in range(1, 12)}


# --- Reading pages ----------------------------------------------------------------------------------------


def test_messages_after_pages_forward_from_a_seq(alice, bob):
    conversation = send(alice, bob.jid, "1").conversation_id
    for n in range(2, 8):
        send(alice, conversation, str(n))

    first = actions.messages_after(bob, conversation, 0, limit=3)
    rest = actions.messages_after(bob, conversation, first[-1].seq, limit=100)

    assert [m.seq for m in first] == [1, 2, 3]
    assert [m.seq for m in rest] == [4, 5, 6, 7]
    assert actions.messages_after(bob, conversation, 7) == []


def test_messages_before_pages_backwards_stably_while_new_messages_arrive(alice, bob, settings):
    settings.IMWEB_MESSAGE_RATE_LIMITS = ((100, 10),)  # 24 sends in a moment: more than a person's burst
    conversation = send(alice, bob.jid, "1").conversation_id
    for n in range(2, 24):
        send(alice, conversation, str(n))

    newest = actions.messages_before(bob, conversation, None, limit=10)
    send(alice, conversation, "arrives while Bob scrolls up")
    above = actions.messages_before(bob, conversation, newest[0].seq, limit=10)
    top = actions.messages_before(bob, conversation, above[0].seq, limit=10)

    assert [m.seq for m in newest] == list(range(14, 24))
    assert [m.seq for m in above] == list(range(4, 14))
    assert [m.seq for m in top] == [1, 2, 3]
    assert actions.messages_before(bob, conversation, 1) == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": -5}, "limit"),
        ({"after_seq": -1}, "after_seq"),
        ({"after_seq": "x"}, "after_seq"),
    ],
)
def test_page_parameters_are_checked(alice, bob, kwargs, error):
    conversation = send(alice, bob.jid).conversation_id
    with pytest.raises(InvalidArgument, match=error):
        actions.messages_after(bob, conversation, **{"after_seq": 0, **kwargs})


def test_a_page_is_capped_however_large_the_limit(alice, bob, monkeypatch):
    monkeypatch.setattr("chat.queries.MAX_PAGE", 3)
    conversation = send(alice, bob.jid).conversation_id
    for _ in range(4):
        send(alice, conversation)

    assert len(actions.messages_after(bob, conversation, 0, limit=10**9)) == 3


# --- Limits -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", "cannot be empty"),
        ("   \n\t \r\n ", "cannot be empty"),
        ("bell \x07 here", "control characters"),
        ("nul \x00 here", "control characters"),
        ("lone surrogate \ud800", "control characters"),
        (b"bytes", "must be text"),
    ],
    ids=["empty", "whitespace only", "control character", "NUL", "lone surrogate", "not text"],
)
def test_unsendable_bodies_are_refused_precisely_and_store_nothing(alice, bob, body, error):
    with pytest.raises(InvalidMessage, match=error):
        send(alice, bob.jid, body)
    assert not Message.objects.exists()
    assert not Conversation.objects.exists()


def test_trailing_whitespace_is_stripped_and_newlines_normalised_but_indentation_kept(alice, bob):
    message = send(alice, bob.jid, "  def f():\r\n      pass \n\n  ")
    assert message.body == "  def f():\n      pass"


def test_a_body_of_exactly_the_limit_is_stored(alice, bob):
    message = send(alice, bob.jid, "é" * 10_000)
    assert len(Message.objects.get(pk=message.pk).body) == 10_000


def test_a_body_one_over_the_limit_names_its_length_and_the_limit(alice, bob):
    with pytest.raises(MessageTooLong) as raised:
        send(alice, bob.jid, "x" * 10_001 + "   ")  # trailing spaces do not count

    assert (raised.value.length, raised.value.limit) == (10_001, 10_000)
    assert "10,001" in str(raised.value)
    assert "10,000" in str(raised.value)
    assert not Message.objects.exists()


def test_the_limit_comes_from_settings(alice, bob, settings):
    settings.IMWEB_MESSAGE_MAX_CHARS = 5
    send(alice, bob.jid, "12345")
    with pytest.raises(MessageTooLong, match="6 characters long; the limit is 5"):
        send(alice, bob.jid, "123456")


def test_a_burst_past_the_rate_limit_is_refused_whole_and_the_earlier_messages_are_all_stored(
    alice, bob, fixed_clock, woken, django_capture_on_commit_callbacks
):
    conversation = send(alice, bob.jid, "1").conversation_id
    for n in range(2, 21):
        send(alice, conversation, str(n))
    woken.clear()

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(SlowDown) as raised:
        send(alice, conversation, "21")

    assert 1 <= raised.value.retry_after <= 10
    assert f"Try again in {raised.value.retry_after} second" in str(raised.value)
    assert list(Message.objects.order_by("seq").values_list("body", flat=True)) == [str(n) for n in range(1, 21)]
    assert Conversation.objects.get().last_seq == 20  # no seq was taken by the refused send
    assert woken == set()


def test_the_rate_limit_is_per_sender(alice, bob, fixed_clock, settings):
    settings.IMWEB_MESSAGE_RATE_LIMITS = [(1, 10)]
    send(alice, bob.jid)
    with pytest.raises(SlowDown):
        send(alice, bob.jid)
    send(bob, alice.jid)  # Bob has his own allowance


def test_a_rate_limit_window_refills_when_it_ends_and_refusals_cost_nothing():
    limits = [(2, 10), (3, 60)]
    start = 1_800_000_000.0  # the start of a 10 s and of a 60 s window
    ratelimit.charge("test", 1, limits, now=start)
    ratelimit.charge("test", 1, limits, now=start + 1)
    for _ in range(5):  # hammering while refused does not eat into the minute's allowance
        with pytest.raises(SlowDown) as raised:
            ratelimit.charge("test", 1, limits, now=start + 2)
    assert raised.value.retry_after == 8

    ratelimit.charge("test", 1, limits, now=start + 10)  # a new 10 s window: the third of the minute
    with pytest.raises(SlowDown) as raised:
        ratelimit.charge("test", 1, limits, now=start + 20)  # the minute's window is full
    assert raised.value.retry_after == 40


# --- Requests, blocks and addresses -----------------------------------------------------------------------


def test_a_first_message_from_a_non_contact_waits_quietly_in_the_recipients_requests(
    alice, bob, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = send(alice, bob.jid, "hi, we met at the conference <https://example.org>")

    assert Participant.objects.get(user=bob).is_request
    assert not Participant.objects.get(user=alice).is_request
    told = {user_id: event for user_id, event in published}
    assert set(told) == {alice.pk, bob.pk}
    assert all(e["type"] == "message.new" and (e["conversation"], e["seq"]) == (message.conversation_id, 1)
               for e in told.values())  # fmt: skip
    # Alice's other tabs show it as usual; Bob's copy is quiet (no notification), in his Requests folder, with
    # its link left as text.
    assert not told[alice.pk]["quiet"] and told[bob.pk]["quiet"]
    assert 'data-request="1"' in told[bob.pk]["row"] and 'data-request="0"' in told[alice.pk]["row"]
    assert "<a " in told[alice.pk]["html"].split('class="message__body"')[1].split("</div>")[0]
    assert "<a " not in told[bob.pk]["html"].split('class="message__body"')[1].split("</div>")[0]


def test_a_message_from_a_contact_is_not_a_request(alice, bob):
    befriend(alice, bob)
    send(alice, bob.jid)
    assert not Participant.objects.filter(is_request=True).exists()


def test_a_pending_contact_request_does_not_make_the_asker_a_contact(alice, bob):
    accounts.request_subscription(alice, bob.jid)
    send(alice, bob.jid)
    assert Participant.objects.get(user=bob).is_request


def test_accepting_a_request_makes_later_messages_notify_as_usual(
    alice, bob, pushes, django_capture_on_commit_callbacks
):
    conversation = send(alice, bob.jid).conversation_id

    with django_capture_on_commit_callbacks(execute=True):
        actions.accept_conversation_request(bob, conversation)
    with django_capture_on_commit_callbacks(execute=True):
        send(alice, conversation)

    assert not Participant.objects.get(user=bob).is_request
    assert pushes[-1] == ("message.new", frozenset({alice.pk, bob.pk}), {"conversation": conversation, "seq": 2})
    assert ("conversation.updated", frozenset({bob.pk}), {"conversation": conversation}) in pushes


def test_replying_to_a_request_accepts_it(alice, bob):
    conversation = send(alice, bob.jid).conversation_id
    send(bob, conversation, "hello to you")
    assert not Participant.objects.filter(is_request=True).exists()


def test_a_user_blocked_by_the_recipient_gets_the_same_answer_as_for_a_nonexistent_account(
    alice, bob, woken, django_capture_on_commit_callbacks
):
    accounts.block_jid(bob, alice.jid)
    woken.clear()

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(NoSuchUser) as blocked:
            send(alice, bob.jid)
        with pytest.raises(NoSuchUser) as missing:
            send(alice, "nobody@imweb.localhost")

    assert str(blocked.value) == str(missing.value).replace("nobody", "bob")
    assert not Conversation.objects.exists()
    assert woken == set()


def test_a_block_after_the_conversation_started_stops_sends_by_conversation_id_too(alice, bob):
    conversation = send(alice, bob.jid).conversation_id
    accounts.block_jid(bob, alice.jid)

    with pytest.raises(NoSuchUser, match=r"There is no account bob@imweb\.localhost"):
        send(alice, conversation)
    assert Message.objects.count() == 1


def test_sending_to_someone_you_blocked_explains_why(alice, bob):
    conversation = send(alice, bob.jid).conversation_id
    accounts.block_jid(alice, bob.jid)

    for to in (bob.jid, conversation):
        with pytest.raises(ChatError, match=r"You have blocked bob@imweb\.localhost"):
            send(alice, to)
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    ("to", "error", "text"),
    [
        ("alice@imweb.localhost/phone", InvalidArgument, "your own address"),
        ("bob<>@imweb.localhost", InvalidJid, "characters an address cannot have"),
        ("@imweb.localhost", InvalidJid, "nothing before the '@'"),
    ],
    ids=["own address", "malformed", "no localpart"],
)
def test_addresses_that_cannot_be_messaged_get_a_clear_error(alice, to, error, text):
    with pytest.raises(error, match=text):
        send(alice, to)
    assert not Conversation.objects.exists()


def test_a_new_account_with_a_deleted_users_name_does_not_inherit_their_conversations(alice, bob, make_user):
    old = send(alice, bob.jid, "for the old bob").conversation_id
    accounts.delete_account(bob)
    new_bob = make_user("bob")

    fresh = send(alice, new_bob.jid, "for the new bob").conversation_id

    assert fresh != old
    assert [m.body for m in actions.messages_after(new_bob, fresh, 0)] == ["for the new bob"]
    assert [m.body for m in actions.messages_after(alice, old, 0)] == ["for the old bob"]  # Alice keeps hers


def test_sending_to_an_existing_conversation_takes_a_fixed_number_of_queries(alice, bob, django_assert_max_num_queries):
    conversation = send(alice, bob.jid).conversation_id
    # Idempotency lookup, membership + participants, block check, counter update and read-back, insert, own
    # marker; plus the savepoint pair the test's outer transaction adds.
    with django_assert_max_num_queries(9):
        send(alice, conversation)
