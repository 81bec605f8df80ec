"""The outbox interface: rows written in the caller's transaction, what comes back (receipts, errors), the hop
the sender sees, and the policy actions (deny fails what waits, retry clears the backoff)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from lxml import etree

from chat.actions import send_message
from chat.models import Message
from federation import outbox, policy
from federation.models import OutboxItem, RemoteDomain

SERVER = "jabber:server"


def chat(to: str, body: str = "hi", stanza_id: str = "m1", sender: str = "bob@imweb.localhost") -> etree._Element:
    stanza = etree.Element(f"{{{SERVER}}}message", nsmap={None: SERVER}, to=to, type="chat", id=stanza_id)
    stanza.set("from", sender)
    etree.SubElement(stanza, f"{{{SERVER}}}body").text = body
    etree.SubElement(stanza, "{urn:xmpp:receipts}request")
    return stanza


@pytest.fixture
def wakes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """Events that left for the federation process (recorded where they leave; the layer itself is real)."""
    seen: list[dict[str, str]] = []
    real = outbox.publish

    def record(event: dict[str, str]) -> None:
        seen.append(event)
        real(event)

    monkeypatch.setattr(outbox, "publish", record)
    monkeypatch.setattr(policy, "publish", record)
    return seen


@pytest.mark.django_db(transaction=True)
def test_enqueue_writes_in_the_callers_transaction_and_wakes_only_after_commit(wakes: list) -> None:
    with transaction.atomic():
        item = outbox.enqueue(chat("alice@prosody.localhost/phone"))
        assert wakes == []  # not before the commit
    assert wakes == [{"type": "federation.wake"}]
    stored = OutboxItem.objects.get(pk=item.pk)
    assert stored.domain.domain == "prosody.localhost"
    assert stored.recipient == "alice@prosody.localhost"
    assert stored.state == OutboxItem.State.QUEUED
    assert stored.kind == OutboxItem.Kind.MESSAGE
    assert stored.stanza_id == "m1"
    assert stored.stanza.startswith("<message ")  # jabber:server, as it goes on the wire
    assert "<body>hi</body>" in stored.stanza


@pytest.mark.django_db(transaction=True)
def test_rolled_back_caller_leaves_no_row_and_no_wake(wakes: list) -> None:
    def caller() -> None:
        with transaction.atomic():
            outbox.enqueue(chat("alice@prosody.localhost"))
            raise RuntimeError("the caller failed after enqueueing")

    with pytest.raises(RuntimeError):
        caller()
    assert OutboxItem.objects.count() == 0
    assert wakes == []


@pytest.mark.django_db
@pytest.mark.parametrize("to", ["", "@", "a@b@c", "not a domain!"])
def test_stanza_without_a_usable_to_is_refused(to: str) -> None:
    stanza = chat("x.localhost")
    stanza.set("to", to)
    with pytest.raises(outbox.OutboxError, match="needs a valid 'to' address"):
        outbox.enqueue(stanza)
    assert OutboxItem.objects.count() == 0


@pytest.mark.django_db
def test_rows_for_one_domain_keep_their_order_and_kinds() -> None:
    receipt = etree.Element(f"{{{SERVER}}}message", to="alice@prosody.localhost", id="r1")
    receipt.set("from", "bob@imweb.localhost")
    etree.SubElement(receipt, "{urn:xmpp:receipts}received", id="theirs")
    presence = etree.Element(f"{{{SERVER}}}presence", to="alice@prosody.localhost", type="subscribe")
    presence.set("from", "bob@imweb.localhost")
    items = [outbox.enqueue(chat("alice@prosody.localhost", stanza_id="a")), outbox.enqueue(receipt)]
    items.append(outbox.enqueue(presence))
    items.append(outbox.enqueue(chat("carol@other.localhost", stanza_id="b")))

    queued = list(OutboxItem.objects.filter(domain__domain="prosody.localhost").values_list("id", "kind"))
    assert queued == [(items[0].pk, "message"), (items[1].pk, "receipt"), (items[2].pk, "presence")]
    assert RemoteDomain.objects.get(domain="other.localhost").outbox.count() == 1


@pytest.mark.django_db
def test_receipt_marks_the_copy_delivered_and_an_error_marks_it_failed(
    bob, woken: set[int], django_capture_on_commit_callbacks
) -> None:
    message = send_message(bob, to="alice@prosody.localhost", body="hello", client_id=uuid.uuid4())
    item = OutboxItem.objects.get(message=message)  # written by chat's send path
    assert [h.text for h in outbox.hops([message.pk])[message.pk]] == ["queued"]

    OutboxItem.objects.filter(pk=item.pk).update(state=OutboxItem.State.SENT)
    assert [h.text for h in outbox.hops([message.pk])[message.pk]] == ["handed to prosody.localhost"]
    woken.clear()

    # A receipt from someone else, or for another id, changes nothing.
    assert outbox.mark_delivered("mallory@prosody.localhost/x", item.stanza_id) == 0
    assert outbox.mark_delivered("alice@prosody.localhost/phone", "unknown") == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.mark_delivered("alice@prosody.localhost/phone", item.stanza_id) == 1
    assert [h.text for h in outbox.hops([message.pk])[message.pk]] == ["delivered"]
    assert woken == {bob.pk}  # the sender's screen hears of it
    assert OutboxItem.objects.get(pk=item.pk).delivered_at is not None

    assert outbox.mark_failed("alice@prosody.localhost", item.stanza_id, "the recipient does not exist") == 1
    hop = outbox.hops([message.pk])[message.pk][0]
    assert (hop.recipient, hop.state, hop.domain) == ("alice@prosody.localhost", "failed", "prosody.localhost")
    assert hop.text == "failed: the recipient does not exist"


@pytest.mark.django_db(transaction=True)
def test_denying_a_domain_fails_its_waiting_stanzas_and_tells_the_federation_process(wakes: list) -> None:
    waiting = outbox.enqueue(chat("alice@spam.localhost"))
    done = outbox.enqueue(chat("alice@spam.localhost", stanza_id="m2"))
    OutboxItem.objects.filter(pk=done.pk).update(state=OutboxItem.State.SENT)
    other = outbox.enqueue(chat("carol@fine.localhost"))
    wakes.clear()

    policy.set_policy("Spam.Localhost.", "deny")

    assert policy.is_denied("spam.localhost") and policy.is_denied("SPAM.localhost")
    assert not policy.is_denied("fine.localhost") and not policy.is_denied("never.seen")
    waiting.refresh_from_db()
    assert waiting.state == "failed"
    assert waiting.error == "federation with spam.localhost is disabled by this server's operator"
    assert OutboxItem.objects.get(pk=done.pk).state == "sent"  # already handed over: history stays true
    assert OutboxItem.objects.get(pk=other.pk).state == "queued"
    assert wakes == [{"type": "federation.policy", "domain": "spam.localhost", "policy": "deny"}]

    policy.set_policy("spam.localhost", "allow")
    assert not policy.is_denied("spam.localhost")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("domain", "value", "error"),
    [
        ("spam.localhost", "block", "the policy must be one of default, allow, deny"),
        ("alice@spam.localhost", "deny", "is not a domain name"),
        ("", "deny", "is not a domain name"),
    ],
)
def test_bad_policy_changes_are_refused_precisely(domain: str, value: str, error: str) -> None:
    with pytest.raises(policy.PolicyError, match=error):
        policy.set_policy(domain, value)
    assert not RemoteDomain.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_retry_now_clears_the_backoff_and_wakes_the_sender(wakes: list) -> None:
    outbox.enqueue(chat("alice@slow.localhost"))
    RemoteDomain.objects.filter(domain="slow.localhost").update(
        backoff_until=timezone.now() + timedelta(minutes=1), failures=4
    )
    wakes.clear()
    policy.retry_now("slow.localhost")
    assert RemoteDomain.objects.get(domain="slow.localhost").backoff_until is None
    assert wakes == [{"type": "federation.retry", "domain": "slow.localhost"}]


@pytest.mark.django_db
def test_the_senders_status_line_shows_the_remote_hop(bob) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chat import fragments, queries
    from chat.access import membership

    messages = [send_message(bob, to="alice@prosody.localhost", body=f"m{n}", client_id=uuid.uuid4()) for n in range(3)]
    mine = membership(bob, messages[0].conversation_id)
    items = list(OutboxItem.objects.filter(message__in=messages).order_by("id"))
    OutboxItem.objects.filter(pk=items[1].pk).update(state=OutboxItem.State.SENT)
    outbox.mark_delivered("alice@prosody.localhost", items[2].stanza_id)

    def fresh() -> list:  # as every page and push does: messages loaded from the database
        return list(Message.objects.filter(pk__in=[m.pk for m in messages]).order_by("seq"))

    def render_statuses(shown: list) -> str:
        return fragments.statuses(mine.conversation_id, queries.decorate(mine.conversation, shown, viewer_jid=bob.jid))

    html = render_statuses(fresh())

    assert '<span class="message__hop message__hop--queued" title="alice@prosody.localhost">· queued</span>' in html
    assert "· handed to prosody.localhost</span>" in html
    assert "message__hop--delivered" in html
    outbox.mark_failed("alice@prosody.localhost", items[0].stanza_id, "prosody.localhost refused it: no such user")
    assert "· failed: prosody.localhost refused it: no such user</span>" in render_statuses(fresh())
    shown = fresh()
    with CaptureQueriesContext(connection) as captured:
        render_statuses(shown)
    # The hops of every message on screen come in one query, however many messages there are.
    assert sum("federation_outboxitem" in q["sql"] for q in captured.captured_queries) == 1


def test_the_beat_tick_wakes_the_federation_process_through_the_channel_layer() -> None:
    import asyncio

    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer
    from django.conf import settings

    from federation.tasks import wake_outbox

    assert settings.CELERY_BEAT_SCHEDULE["wake-federation-outbox"]["task"] == "federation.tasks.wake_outbox"

    async def listen_and_tick() -> dict:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(outbox.WAKE_GROUP, channel)  # as the federation process's sender does
        await sync_to_async(wake_outbox)()  # what the worker runs on each tick
        async with asyncio.timeout(10):
            event = await layer.receive(channel)
        await layer.flush()
        return event

    assert asyncio.run(listen_and_tick()) == {"type": "federation.wake"}


@pytest.mark.django_db
def test_in_allowlist_mode_only_allowed_domains_federate(wakes: list, settings) -> None:
    settings.IMWEB_FEDERATION_ALLOWLIST_ONLY = True
    policy.set_policy("friends.localhost", "allow")
    waiting = outbox.enqueue(chat("carol@stranger.localhost"))

    assert not policy.is_denied("friends.localhost")
    assert policy.is_denied("stranger.localhost") and policy.is_denied("never.seen")
    assert policy.allowed_domains() == {"friends.localhost"}
    assert policy.denied_reason("stranger.localhost") == (
        "federation with stranger.localhost is not enabled by this server's operator"
    )

    # Taking a domain off the allow list fails what waits for it, as denying does in open mode.
    friend = outbox.enqueue(chat("dave@friends.localhost"))
    policy.set_policy("friends.localhost", "default")
    friend.refresh_from_db()
    assert (friend.state, friend.error) == (
        "failed",
        "federation with friends.localhost is not enabled by this server's operator",
    )
    waiting.refresh_from_db()
    assert waiting.state == "queued"  # the sender fails it on its next pass (see test_sender)
