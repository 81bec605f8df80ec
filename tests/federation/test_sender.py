"""The outbox sender between two in-process federation services on loopback (imweb.localhost -> b.localhost):
order per domain, hand-over recorded, backoff kept in the database across a restart, recovery of rows a crash
left half-sent, retention, and denied domains."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError
from django.utils import timezone
from lxml import etree

from federation import outbox, policy
from federation.models import OutboxItem, RemoteDomain
from federation.sender import OutboxSender, duration_words
from tests.federation.conftest import running_pair, start
from tests.interop.harness import LoopThread, RunningService
from tests.servers import free_port, wait_for

SERVER = "jabber:server"
ME = "imweb.localhost"
PEER = "b.localhost"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pair(loop: LoopThread, tmp_path: Path) -> Iterator[tuple[RunningService, RunningService]]:
    yield from running_pair(loop, tmp_path, ME, PEER)


@pytest.fixture
def unreachable(loop: LoopThread, tmp_path: Path) -> Iterator[RunningService]:
    """Our service with a route to a port where nobody listens."""
    me = start(loop, ME, tmp_path, {PEER: ("127.0.0.1", free_port())})
    yield me
    loop.run(me.service.stop())


def chat(n: int, to: str = f"y@{PEER}") -> etree._Element:
    stanza = etree.Element(f"{{{SERVER}}}message", nsmap={None: SERVER}, to=to, type="chat", id=f"n{n}")
    stanza.set("from", f"x@{ME}")
    etree.SubElement(stanza, f"{{{SERVER}}}body").text = f"body {n}"
    return stanza


def one_pass(loop: LoopThread, sender: OutboxSender) -> list[str]:
    async def run() -> list[str]:
        started = await sender.run_once()
        await sender.drained()
        return started

    return loop.run(run(), timeout=60)


def new_sender(loop: LoopThread, running: RunningService, **kwargs: object) -> OutboxSender:
    async def make() -> OutboxSender:
        sender = OutboxSender(running.service, jitter=None, **kwargs)  # type: ignore[arg-type]
        await sender.recover()
        return sender

    return loop.run(make())


def test_rows_are_handed_over_in_id_order_and_recorded(
    loop: LoopThread, pair: tuple[RunningService, RunningService]
) -> None:
    me, peer = pair
    items = [outbox.enqueue(chat(n)) for n in range(30)]
    sender = new_sender(loop, me)

    assert one_pass(loop, sender) == [PEER]

    wait_for(lambda: len(peer.received.items) == 30, 20, "30 stanzas at the peer")
    assert [stanza.get("id") for _, stanza in peer.received.items] == [f"n{n}" for n in range(30)]
    assert set(OutboxItem.objects.values_list("state", flat=True)) == {"sent"}
    assert all(item.sent_at is not None for item in OutboxItem.objects.filter(pk__in=[i.pk for i in items]))
    remote = RemoteDomain.objects.get(domain=PEER)
    assert remote.last_success_at is not None and remote.failures == 0 and remote.backoff_until is None
    # The stream's state reaches the operators' view: connected out, authenticated by dialback.
    wait_for(lambda: RemoteDomain.objects.get(domain=PEER).connected_out, 10, "connected_out recorded")
    assert RemoteDomain.objects.get(domain=PEER).auth_method == "dialback"
    # Nothing is sent twice: a second pass finds nothing to do.
    assert one_pass(loop, sender) == []
    assert len(peer.received.items) == 30


def test_backoff_is_kept_in_the_database_across_a_restart(loop: LoopThread, unreachable: RunningService) -> None:
    item = outbox.enqueue(chat(1))
    first = new_sender(loop, unreachable)
    one_pass(loop, first)

    remote = RemoteDomain.objects.get(domain=PEER)
    assert remote.failures == 1
    assert "could not connect to b.localhost" in remote.last_error
    assert remote.backoff_until is not None and remote.backoff_until > timezone.now()
    item.refresh_from_db()
    assert (item.state, item.attempts) == ("queued", 1)
    assert "could not connect to b.localhost" in item.error  # the row says why it waits
    loop.run(first.stop())

    # A new sender (as after a restart) honours the stored backoff: no attempt before it ends...
    second = new_sender(loop, unreachable)
    assert one_pass(loop, second) == []
    item.refresh_from_db()
    assert item.attempts == 1
    # ...and tries again once it has, backing off longer.
    later = remote.backoff_until + timedelta(minutes=5)
    third = new_sender(loop, unreachable, clock=lambda: later)
    unreachable.service.pool.failures.clear()  # the pool's in-memory backoff is the process's, not the DB's
    assert one_pass(loop, third) == [PEER]
    remote.refresh_from_db()
    assert remote.failures == 2
    assert remote.backoff_until - later == timedelta(seconds=2)  # federation.backoff: 1 s, 2 s, 4 s ...


def test_rows_a_crash_left_half_sent_are_sent_again(
    loop: LoopThread, pair: tuple[RunningService, RunningService]
) -> None:
    me, peer = pair
    item = outbox.enqueue(chat(7))
    OutboxItem.objects.filter(pk=item.pk).update(state=OutboxItem.State.SENDING, attempts=1)

    sender = new_sender(loop, me)  # recovery runs at start
    one_pass(loop, sender)

    wait_for(lambda: peer.received.find(id="n7"), 20, "the half-sent stanza at the peer")
    item.refresh_from_db()
    assert (item.state, item.attempts) == ("sent", 2)


def test_rows_older_than_the_retention_fail_with_the_last_error(loop: LoopThread, unreachable: RunningService) -> None:
    old, fresh = outbox.enqueue(chat(1)), outbox.enqueue(chat(2))
    OutboxItem.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3, minutes=1))
    RemoteDomain.objects.filter(domain=PEER).update(
        last_error="could not connect to b.localhost (connection refused)",
        backoff_until=timezone.now() + timedelta(minutes=1),
    )
    sender = new_sender(loop, unreachable, retention_seconds=3 * 24 * 3600)
    one_pass(loop, sender)

    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.state == "failed"
    assert old.error == "could not reach b.localhost for 3 days: could not connect to b.localhost (connection refused)"
    assert [h.text for h in [outbox.Hop(old.recipient, old.state, PEER, old.error)]] == [f"failed: {old.error}"]
    assert fresh.state == "queued"


def test_denied_domain_gets_nothing_and_its_rows_fail_at_once(
    loop: LoopThread, pair: tuple[RunningService, RunningService]
) -> None:
    me, peer = pair
    RemoteDomain.objects.create(domain=PEER, policy=RemoteDomain.Policy.DENY)  # as the admin's set_policy leaves it
    item = outbox.enqueue(chat(1))
    sender = new_sender(loop, me)

    assert one_pass(loop, sender) == []

    item.refresh_from_db()
    assert (item.state, item.error) == ("failed", "federation with b.localhost is disabled by this server's operator")
    assert me.service.denied == {PEER}
    assert peer.received.items == []


def test_in_allowlist_mode_a_domain_not_allowed_gets_nothing_and_an_allowed_one_gets_its_stanzas(
    loop: LoopThread, pair: tuple[RunningService, RunningService], settings: Any
) -> None:
    me, peer = pair
    settings.IMWEB_FEDERATION_ALLOWLIST_ONLY = True
    item = outbox.enqueue(chat(1))
    sender = new_sender(loop, me)

    assert one_pass(loop, sender) == []
    item.refresh_from_db()
    assert item.state == "failed"
    assert item.error == "federation with b.localhost is not enabled by this server's operator"
    assert me.service.refuses(PEER) and peer.received.items == []

    policy.set_policy(PEER, "allow")
    loop.run(sender.handle_event({"type": "federation.policy", "domain": PEER, "policy": "allow"}))
    outbox.enqueue(chat(2))
    one_pass(loop, sender)
    wait_for(lambda: peer.received.find(id="n2"), 20, "the stanza to the allowed domain")


def test_a_policy_event_closes_the_denied_domains_streams(
    loop: LoopThread, pair: tuple[RunningService, RunningService]
) -> None:
    me, peer = pair
    outbox.enqueue(chat(1))
    sender = new_sender(loop, me)
    one_pass(loop, sender)
    wait_for(lambda: peer.received.find(id="n1"), 20, "the first stanza")
    wait_for(lambda: PEER in me.service.pool.streams, 10, "the outbound stream in the pool")

    policy.set_policy(PEER, "deny")
    loop.run(sender.handle_event({"type": "federation.policy", "domain": PEER, "policy": "deny"}))

    wait_for(lambda: PEER not in me.service.pool.streams, 10, "the denied domain's stream closed")
    wait_for(lambda: not RemoteDomain.objects.get(domain=PEER).connected_out, 10, "connected_out cleared")


def test_a_stream_event_on_a_busy_database_is_still_recorded(
    loop: LoopThread, pair: tuple[RunningService, RunningService], monkeypatch: pytest.MonkeyPatch
) -> None:
    me, _ = pair
    sender = new_sender(loop, me)
    real = RemoteDomain.objects.get_or_create
    calls = []

    def busy_once(**kwargs: Any) -> Any:
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("database table is locked: federation_remotedomain")
        return real(**kwargs)

    monkeypatch.setattr(RemoteDomain.objects, "get_or_create", busy_once)

    async def record() -> None:
        sender.domain_state("c.localhost", connected_in=True)
        await asyncio.gather(*sender.tasks)

    loop.run(record())
    assert len(calls) == 2
    assert RemoteDomain.objects.get(domain="c.localhost").connected_in


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 seconds"), (1, "1 second"), (59, "59 seconds"), (60, "1 minute"), (7200, "2 hours"), (259200, "3 days")],
)
def test_durations_in_plain_words(seconds: float, words: str) -> None:
    assert duration_words(seconds) == words


def test_the_sender_wakes_on_a_commit_through_the_channel_layer(
    loop: LoopThread, pair: tuple[RunningService, RunningService], caplog: pytest.LogCaptureFixture
) -> None:
    me, peer = pair

    async def run() -> OutboxSender:
        sender = OutboxSender(me.service, poll_interval=3600)  # no polling: only a wake-up can make it send
        await sender.start()
        return sender

    sender = loop.run(run())
    try:
        # Logged once the listener has joined the wake group on the real channel layer (Valkey).
        wait_for(lambda: "outbox: listening for wake-ups" in caplog.text, 10, "the sender listening")
        outbox.enqueue(chat(42))  # autocommit: on_commit runs at once
        wait_for(lambda: peer.received.find(id="n42"), 20, "the stanza sent after the wake-up")
    finally:
        loop.run(sender.stop())
