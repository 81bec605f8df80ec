"""What only a real PostgreSQL can show: concurrent senders in separate transactions, each on its own connection.

These run only in the PostgreSQL session (`python -m tests.scaled.on_postgres`, part of `make test`), which
also re-runs the delivery, search, contact and blocking tests there.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable

import pytest
from django.conf import settings
from django.db import connection

from accounts import actions as accounts
from chat import actions
from chat.models import Conversation, Message
from tests.scaled.on_postgres import MARKER

pytestmark = [
    pytest.mark.skipif(
        os.environ.get(MARKER) != "postgresql",
        reason="runs in the PostgreSQL session: python -m tests.scaled.on_postgres",
    ),
    pytest.mark.django_db(transaction=True),
]

THREAD_TIMEOUT = 60


@pytest.fixture(autouse=True)
def generous_rate_limit(settings):
    settings.IMWEB_MESSAGE_RATE_LIMITS = [(10_000, 10)]


def run_at_once(jobs: list[Callable[[], object]]) -> list[object]:
    """Run each job in its own thread (so on its own database connection), released together; return results
    (or the exception a job raised) in job order."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(index: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait(THREAD_TIMEOUT)
            results[index] = job()
        except Exception as error:  # noqa: BLE001  (handed back to the test, which asserts on it)
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
        assert not thread.is_alive(), "a sender did not finish in time"
    return results


def test_this_session_really_runs_on_postgresql_and_redis():
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        (version,) = cursor.fetchone()
    assert connection.vendor == "postgresql"
    assert int(version) >= 150000
    assert settings.REDIS_URL.startswith("redis://127.0.0.1:")


def test_concurrent_senders_in_one_conversation_take_every_seq_once_each_in_their_own_order(alice, bob, make_user):
    carol = make_user("carol")
    for member in (bob, carol):  # a room takes mutual contacts
        accounts.request_subscription(alice, member.jid)
        accounts.accept_subscription(member, alice.jid)
    room = actions.create_room(alice, "load", members=[bob.jid, carol.jid])
    per_sender = 15
    senders = [alice, bob, carol]

    def sender(user) -> Callable[[], list[int]]:
        def send_all() -> list[int]:
            return [
                actions.send_message(user, to=room.pk, body=f"{user.username} {n}", client_id=uuid.uuid4()).seq
                for n in range(per_sender)
            ]

        return send_all

    results = run_at_once([sender(user) for user in senders])

    assert not [r for r in results if isinstance(r, Exception)], results
    all_seqs = sorted(seq for seqs in results for seq in seqs)
    assert all_seqs == list(range(2, 3 * per_sender + 2))  # no seq shared, none skipped (1: the room's creation)
    for user, seqs in zip(senders, results, strict=True):
        assert seqs == sorted(seqs)  # each sender's messages keep the order they were sent in
        bodies = Message.objects.filter(sender=user, kind="message").order_by("seq").values_list("body", flat=True)
        assert list(bodies) == [f"{user.username} {n}" for n in range(per_sender)]
    assert Conversation.objects.get(pk=room.pk).last_seq == 3 * per_sender + 1


def test_one_client_id_sent_from_two_connections_at_once_is_stored_once(alice, bob):
    conversation = actions.send_message(alice, to=bob.jid, body="first", client_id=uuid.uuid4()).conversation_id
    client_id = uuid.uuid4()

    def retry() -> Message:
        return actions.send_message(alice, to=conversation, body="at once", client_id=client_id)

    results = run_at_once([retry, retry, retry])

    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({message.pk for message in results}) == 1  # every attempt answered with the one stored message
    assert Message.objects.filter(client_id=client_id).count() == 1
    assert Conversation.objects.get(pk=conversation).last_seq == 2  # rolled-back attempts took no seq


def test_first_messages_crossing_each_other_open_one_direct_conversation(alice, bob):
    results = run_at_once(
        [
            lambda: actions.send_message(alice, to=bob.jid, body="hi bob", client_id=uuid.uuid4()),
            lambda: actions.send_message(bob, to=alice.jid, body="hi alice", client_id=uuid.uuid4()),
        ]
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert Conversation.objects.count() == 1
    assert sorted(message.seq for message in results) == [1, 2]
    assert {message.conversation_id for message in results} == {Conversation.objects.get().pk}
