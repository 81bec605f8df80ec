"""The Now page: each figure an operator reads there is the service's real state (people, sockets, messages of
the last minute, federation, queues, errors, reachability, processes), and it refreshes itself."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from lxml import html

from accounts.models import PresenceSession
from chat import actions
from chat.models import Message
from federation.models import OutboxItem, RemoteDomain
from imweb.dashboard import metrics
from imweb.supervisor import RECORD_NAME

pytestmark = pytest.mark.django_db

REMOTE = "zoe@prosody.localhost"


def page(client: Client, name: str = "dashboard:index") -> html.HtmlElement:
    response = client.get(reverse(name))
    assert response.status_code == 200
    return html.fromstring(response.content)


def with_class(name: str) -> str:
    """An XPath step to descendants having the class `name`."""
    return f".//*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]"


def figure(doc: html.HtmlElement, key: str, part: str | None = None) -> str:
    [box] = doc.xpath(f'.//*[@data-figure="{key}"]')
    if part is not None:
        [node] = box.xpath(f'.//*[@data-part="{part}"]')
    else:
        [node] = box.xpath(with_class("figure__value"))
    return " ".join(node.text_content().split())


def note(doc: html.HtmlElement, key: str) -> str:
    [box] = doc.xpath(f'.//*[@data-figure="{key}"]' + with_class("figure__note").removeprefix("."))
    return " ".join(box.text_content().split())


def session(user, resource: str, *, age: float = 0.0) -> PresenceSession:
    return PresenceSession.objects.create(
        user=user, resource=resource, heartbeat_at=timezone.now() - timedelta(seconds=age)
    )


def send(user, to: str, body: str = "hi") -> Message:
    return actions.send_message(user, to=to, body=body, client_id=uuid.uuid4())


def test_people_online_and_open_sockets_split_web_and_api(staff, alice, bob, make_user):
    session(alice, "a1b2c3")  # two tabs and an API stream: one person
    session(alice, "d4e5f6")
    session(alice, "api-0011223344")
    session(bob, "api-5566778899")
    carol = make_user("carol")
    session(carol, "0a0b0c", age=3 * settings.IMWEB_PRESENCE_HEARTBEAT_SECONDS + 5)  # its process died

    doc = page(staff)

    assert figure(doc, "people-online") == "2"
    assert figure(doc, "sockets", "web") == "2"
    assert figure(doc, "sockets", "api") == "2"


def test_messages_of_the_last_minute_split_sent_here_to_and_from_federation(staff, alice, bob):
    send(alice, bob.jid, "hello")
    send(bob, alice.jid, "hi back")
    send(alice, REMOTE, "to a friend elsewhere")  # stored here and queued for prosody.localhost
    actions.receive_remote_message(REMOTE, alice, "from elsewhere", uuid.uuid4())
    old = send(alice, bob.jid, "an hour ago")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))

    doc = page(staff)

    assert figure(doc, "messages", "local") == "3"
    assert figure(doc, "messages", "to-federation") == "1"
    assert figure(doc, "messages", "from-federation") == "1"


def test_federation_streams_and_the_outbox_depth_with_its_oldest_item(staff):
    up = RemoteDomain.objects.create(domain="up.example", connected_in=True, connected_out=True)
    RemoteDomain.objects.create(domain="half.example", connected_in=True)
    down = RemoteDomain.objects.create(domain="down.example")
    for domain, age, state in [
        (down, 7200, OutboxItem.State.QUEUED),
        (down, 60, OutboxItem.State.QUEUED),
        (up, 10, OutboxItem.State.SENDING),
        (up, 9000, OutboxItem.State.DELIVERED),  # done: neither waiting nor the oldest
    ]:
        OutboxItem.objects.create(
            domain=domain, stanza="<message/>", state=state, created_at=timezone.now() - timedelta(seconds=age)
        )

    doc = page(staff)

    assert figure(doc, "streams", "in") == "2"
    assert figure(doc, "streams", "out") == "1"
    assert figure(doc, "outbox", "waiting") == "3"
    assert figure(doc, "outbox", "oldest") == "2 hours"


def test_an_empty_outbox_says_so(staff):
    doc = page(staff)
    assert figure(doc, "outbox", "waiting") == "0"
    assert note(doc, "outbox") == "nothing waits to be sent"


def test_the_celery_queue_depth_is_the_length_of_the_brokers_list(staff):
    client = metrics.redis_client(metrics._broker_redis_url())
    client.rpush("celery", "task-1", "task-2", "task-3")
    client.rpush("celery\x06\x169", "urgent")  # kombu's list for priority 9 of the same queue
    try:
        assert figure(page(staff), "celery") == "4"
    finally:
        client.delete("celery", "celery\x06\x169")
    assert figure(page(staff), "celery") == "0"


def test_errors_of_the_last_hour_are_counted_from_the_log_of_any_process(staff):
    logger = logging.getLogger("imweb.tests.dashboard")
    assert figure(page(staff), "errors") == "0"
    logger.error("something broke")
    logger.exception("something else broke")
    logger.warning("a warning is not an error")
    # Another process logged one 30 minutes ago, and one two hours ago (outside the hour).
    metrics.count_error(time.time() - 30 * 60)
    metrics.count_error(time.time() - 2 * 3600)

    assert figure(page(staff), "errors") == "3"


def test_the_error_counter_never_raises_nor_logs_when_the_cache_fails(monkeypatch):
    handler = metrics.ErrorCountHandler()
    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        logging.getLogger("imweb.cache").error("the cache is down")  # the cache client logging its failure
        raise ConnectionError("Valkey is gone")

    monkeypatch.setattr(metrics.cache, "incr", broken)
    monkeypatch.setattr(metrics.ErrorCountHandler, "_quiet_until", 0.0)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, None)

    handler.handle(record)  # no exception, and the error logged inside is not counted again (no recursion)

    assert len(calls) == 1
    # After a failure the cache is left alone for a while: an error storm during an outage costs nothing.
    handler.handle(record)
    assert len(calls) == 1


def test_database_and_valkey_are_reachable(staff):
    doc = page(staff)
    assert figure(doc, "database") == "reachable"
    assert figure(doc, "valkey") == "reachable"


def test_an_unreachable_valkey_is_said_in_plain_words(staff, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    doc = page(staff)

    assert figure(doc, "valkey") == "problem"
    assert note(doc, "valkey").startswith("Valkey unreachable: ConnectionError")
    assert figure(doc, "celery") == "unknown"
    assert "Celery queue unreadable (Valkey unreachable: ConnectionError" in doc.text_content()


def test_without_a_supervisor_the_page_says_not_supervised_here(staff):
    [section] = page(staff).xpath('.//*[@data-figure="processes"]')
    assert "Not supervised here" in section.text_content()
    assert not section.xpath(".//table")


def test_each_supervised_process_is_shown_up_or_not_and_since_when(staff):
    since = time.time() - 3 * 3600
    record = {
        "pid": os.getpid(),  # a live supervisor
        "updated": time.time(),
        "children": {
            "web-1": {"pid": 11, "state": "running", "since": since, "restarts": 0},
            "worker": {"pid": 12, "state": "restarting", "since": time.time() - 5, "restarts": 2},
        },
    }
    path = Path(settings.VAR_DIR) / RECORD_NAME
    path.write_text(json.dumps(record))
    try:
        doc = page(staff)
    finally:
        path.unlink()

    [web] = doc.xpath('.//tr[@data-process="web-1"]')
    cells = [" ".join(td.text_content().split()) for td in web.xpath(".//td")]
    assert cells[0] == "up"
    assert cells[1].startswith(time.strftime("%Y-%m-%d %H:%M", time.gmtime(since)))
    assert cells[1].endswith("(3 hours ago)")
    assert cells[2] == "0"
    [worker] = doc.xpath('.//tr[@data-process="worker"]')
    assert " ".join(worker.xpath(".//td")[0].text_content().split()) == "restarting"
    assert worker.xpath(".//td")[2].text_content() == "2"


def test_the_figures_refresh_themselves_from_their_partial(staff, alice, bob):
    doc = page(staff)
    [box] = doc.xpath('.//*[@id="now-figures"]')
    assert box.get("hx-get") == reverse("dashboard:now_figures")
    assert box.get("hx-trigger") == "every 5s"
    assert figure(doc, "messages", "local") == "0"

    send(alice, bob.jid)
    partial = html.fromstring(staff.get(reverse("dashboard:now_figures")).content)

    assert partial.get("id") == "now-figures"  # the partial replaces the whole polling element
    assert figure(partial, "messages", "local") == "1"


def test_the_figures_are_for_staff_only(alice):
    client = Client()
    client.force_login(alice)
    assert client.get(reverse("dashboard:now_figures")).status_code == 403
    assert Client().get(reverse("dashboard:now_figures")).status_code == 302
