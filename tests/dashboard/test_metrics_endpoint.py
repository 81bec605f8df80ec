"""/metrics: refused without the token or an allowed address; with either, Prometheus text (checked by a strict
parser of the exposition format, prometheus_client not being installed) carrying the service's real figures."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import PresenceSession
from chat import actions
from federation.models import OutboxItem, RemoteDomain
from imweb.dashboard import prometheus

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-scrape-token"
REMOTE = "zoe@prosody.localhost"

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse(text: str) -> dict[str, dict]:
    """The families of a Prometheus text exposition (format 0.0.4), failing on anything the format does not allow:
    each family's HELP then TYPE, once, before its samples; its samples together; counters named ..._total; valid
    names, labels and values; no sample twice; a final newline."""
    assert text.endswith("\n"), "the body ends with a newline"
    families: dict[str, dict] = {}
    current: str | None = None
    seen: set[tuple[str, tuple]] = set()
    for number, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {number}: {line!r}"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert NAME.fullmatch(name) and name not in families, where
            assert re.fullmatch(r"(?:[^\\\n]|\\[\\n])*", help_text), where
            families[name] = {"help": help_text, "type": None, "samples": {}}
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and families[name]["type"] is None and kind in TYPES, where
            if kind == "counter":
                assert name.endswith("_total"), where
            families[name]["type"] = kind
        else:
            assert not line.startswith("#") and line.strip() == line and line, where
            match = SAMPLE.fullmatch(line)
            assert match, where
            name, labels_text, value = match.groups()
            assert name == current and families[name]["type"] is not None, f"{where}: a sample outside its family"
            labels: dict[str, str] = {}
            if labels_text:
                position = 0
                for label in LABEL.finditer(labels_text):
                    assert label.start() == position, where
                    labels[label.group(1)] = label.group(2)
                    position = label.end() + 1  # the comma
                    assert labels_text[label.end() : position] in {",", ""}, where
                assert position >= len(labels_text), where
            assert re.fullmatch(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|Inf|NaN)", value), where
            key = tuple(sorted(labels.items()))
            assert (name, key) not in seen, f"{where}: the same sample twice"
            seen.add((name, key))
            families[name]["samples"][key] = float(value)
    return families


def get(families: dict[str, dict], name: str, **labels: str) -> float:
    return families[name]["samples"][tuple(sorted(labels.items()))]


@pytest.fixture
def gate(settings):
    settings.IMWEB_METRICS_TOKEN = TOKEN
    settings.IMWEB_METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
    return settings


def scrape(**headers: str) -> object:
    extra = {}
    if "remote_addr" in headers:
        extra["REMOTE_ADDR"] = headers.pop("remote_addr")
    return Client().get("/metrics", headers=headers, **extra)


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"remote_addr": "192.0.2.8"},
        {"remote_addr": "11.0.0.1"},
        {"remote_addr": "2001:db9::1"},
    ],
    ids=["nothing", "wrong-token", "longer-token", "not-bearer", "no-scheme", "other-ip", "other-net", "other-ipv6"],
)
def test_refused_without_the_token_or_an_allowed_address(gate, request_kwargs):
    response = scrape(**request_kwargs)
    assert response.status_code == 403
    body = response.content.decode()
    assert body.count("\n") == 1 and "IMWEB_METRICS_TOKEN" in body and "IMWEB_METRICS_ALLOWED_IPS" in body
    assert "imweb_" not in body


def test_an_empty_token_setting_lets_no_token_in(settings):
    settings.IMWEB_METRICS_TOKEN = ""
    settings.IMWEB_METRICS_ALLOWED_IPS = []
    assert scrape(Authorization="Bearer ").status_code == 403
    assert scrape(Authorization="Bearer").status_code == 403
    assert scrape().status_code == 403  # not even from 127.0.0.1 unless listed


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"Authorization": f"Bearer {TOKEN}"},
        {"Authorization": f"bearer {TOKEN}"},
        {"remote_addr": "10.20.30.40"},
        {"remote_addr": "192.0.2.7"},
        {"remote_addr": "::ffff:10.1.1.1"},
        {"remote_addr": "2001:db8::5"},
    ],
    ids=["token", "token-lowercase-scheme", "network", "address", "ipv4-mapped", "ipv6-network"],
)
def test_allowed_with_the_token_or_from_an_allowed_address(gate, request_kwargs):
    response = scrape(**request_kwargs)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "no-cache" in response["Cache-Control"]
    parse(response.content.decode())


def test_the_figures_are_the_services(gate, alice, bob, make_user):
    PresenceSession.objects.create(user=alice, resource="ab12", heartbeat_at=timezone.now())
    PresenceSession.objects.create(user=alice, resource="api-cd34", heartbeat_at=timezone.now())
    PresenceSession.objects.create(user=bob, resource="api-ef56", heartbeat_at=timezone.now())
    for body in ("one", "two"):
        actions.send_message(alice, to=bob.jid, body=body, client_id=uuid.uuid4())
    actions.send_message(alice, to=REMOTE, body="out", client_id=uuid.uuid4())
    actions.receive_remote_message(REMOTE, alice, "in", uuid.uuid4())
    make_user("carol")
    remote = RemoteDomain.objects.get(domain="prosody.localhost")
    RemoteDomain.objects.filter(pk=remote.pk).update(connected_in=True)
    OutboxItem.objects.filter(domain=remote).update(created_at=timezone.now() - timedelta(seconds=90))
    for state in ("delivered", "delivered", "failed"):
        OutboxItem.objects.create(
            domain=remote, stanza="<message/>", state=state, created_at=timezone.now() - timedelta(days=1)
        )

    families = parse(scrape(Authorization=f"Bearer {TOKEN}").content.decode())

    assert families["imweb_people_online"]["type"] == "gauge"
    assert get(families, "imweb_people_online") == 2
    assert get(families, "imweb_sockets_open", kind="web") == 1
    assert get(families, "imweb_sockets_open", kind="api") == 2
    assert get(families, "imweb_messages_last_minute", origin="local") == 3
    assert get(families, "imweb_messages_last_minute", origin="to_federation") == 0  # queued 90 s ago
    assert get(families, "imweb_messages_last_minute", origin="from_federation") == 1
    assert get(families, "imweb_federation_streams_open", direction="in") == 1
    assert get(families, "imweb_federation_streams_open", direction="out") == 0
    assert get(families, "imweb_outbox_waiting") >= 1  # the message to zoe (and the receipt, presence probes)
    assert 89 <= get(families, "imweb_outbox_oldest_age_seconds") < 200
    assert get(families, "imweb_celery_queue_length") == 0
    assert get(families, "imweb_errors_last_hour") == 0
    assert get(families, "imweb_database_up") == 1
    assert get(families, "imweb_valkey_up") == 1
    assert "imweb_process_up" not in families  # no supervisor here
    assert families["imweb_messages_stored_total"]["type"] == "counter"
    assert get(families, "imweb_messages_stored_total", origin="local") == 3
    assert get(families, "imweb_messages_stored_total", origin="federation") == 1
    assert get(families, "imweb_signups_total") == 3
    assert get(families, "imweb_outbox_delivered_total") == 2
    assert get(families, "imweb_outbox_failed_total") == 1


def test_valkey_down_is_a_zero_not_an_error(gate, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = scrape(Authorization=f"Bearer {TOKEN}")
    assert response.status_code == 200
    families = parse(response.content.decode())
    assert get(families, "imweb_valkey_up") == 0
    assert "imweb_celery_queue_length" not in families  # unknown is left out, not reported as 0


def test_label_values_and_help_text_are_escaped():
    lines = prometheus.family("imweb_x", "gauge", "a \\ back\nslash", [({"process": 'we"b\\1\n'}, 1.5)])
    assert lines == [
        "# HELP imweb_x a \\\\ back\\nslash",
        "# TYPE imweb_x gauge",
        'imweb_x{process="we\\"b\\\\1\\n"} 1.5',
    ]
    parse("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="_total"):
        prometheus.family("imweb_things", "counter", "no suffix", [])


def test_the_strict_parser_rejects_what_prometheus_would():
    for bad in [
        "imweb_x 1\n",  # no HELP/TYPE
        "# HELP imweb_x_total x\n# TYPE imweb_x_total counter\nimweb_x_total one\n",
        "# HELP imweb_x x\n# TYPE imweb_x counter\nimweb_x 1\n",  # a counter without _total
        '# HELP imweb_x x\n# TYPE imweb_x gauge\nimweb_x{a="1"} 1\nimweb_x{a="1"} 2\n',
        "# HELP imweb_x x\n# TYPE imweb_x gauge\nimweb_x 1",  # no final newline
    ]:
        with pytest.raises(AssertionError):
            parse(bad)
