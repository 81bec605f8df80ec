"""The time series behind the Trends charts (roll_up_metrics: idempotent, catching up, rolling up, pruning) and
the charts themselves (valid SVG whose lines are the samples, with a text alternative, live for the current
minute)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from lxml import html

from accounts.models import User
from chat import actions
from chat.models import Message
from federation.models import OutboxItem, RemoteDomain
from imweb.dashboard import charts, metrics
from imweb.dashboard.models import MetricSample
from imweb.dashboard.tasks import roll_up_metrics

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"
REMOTE = "zoe@prosody.localhost"
MINUTE = timedelta(minutes=1)


@pytest.fixture
def start():
    """A minute boundary an hour and a half ago; every account is older, so roll-ups start from there."""
    start = metrics.floor(timezone.now() - timedelta(minutes=90), 60)
    return start


@pytest.fixture
def people(alice, bob, start):
    User.objects.update(date_joined=start - timedelta(days=1))
    return alice, bob


def send(user, to: str, at, body: str = "hi") -> Message:
    message = actions.send_message(user, to=to, body=body, client_id=uuid.uuid4())
    Message.objects.filter(pk=message.pk).update(created_at=at)
    OutboxItem.objects.filter(message=message).update(created_at=at)
    return message


def received(user, at) -> Message:
    message = actions.receive_remote_message(REMOTE, user, "from elsewhere", uuid.uuid4())
    Message.objects.filter(pk=message.pk).update(created_at=at)
    return message


def value(name: str, resolution: int, bucket) -> float | None:
    row = MetricSample.objects.filter(name=name, resolution=resolution, bucket=bucket).first()
    return row.value if row else None


def test_each_finished_minute_is_written_once_whatever_runs_twice(people, start):
    alice, bob = people
    send(alice, bob.jid, start + timedelta(seconds=10))
    send(bob, alice.jid, start + timedelta(seconds=50))
    send(alice, REMOTE, start + MINUTE + timedelta(seconds=5))
    received(alice, start + MINUTE + timedelta(seconds=30))
    at = start + 3 * MINUTE + timedelta(seconds=20)

    metrics.roll_up(at)

    assert value(metrics.MESSAGES_LOCAL, 60, start) == 2
    assert value(metrics.ACTIVE_PEOPLE, 60, start) == 2
    assert value(metrics.MESSAGES_LOCAL, 60, start + MINUTE) == 1
    assert value(metrics.MESSAGES_TO_FEDERATION, 60, start + MINUTE) == 1
    assert value(metrics.MESSAGES_FROM_FEDERATION, 60, start + MINUTE) == 1
    assert value(metrics.MESSAGES_LOCAL, 60, start + 2 * MINUTE) == 0  # a quiet minute is a zero, not a gap
    assert value(metrics.MESSAGES_LOCAL, 60, start + 3 * MINUTE) is None  # not finished at `at`
    rows = MetricSample.objects.count()

    # Run again (a second beat, a retried task): nothing new, nothing counted twice, even with a late message
    # stamped in a minute already written.
    send(alice, bob.jid, start + timedelta(seconds=20))
    metrics.roll_up(at)
    metrics.roll_up(at + timedelta(seconds=30))

    assert MetricSample.objects.count() == rows
    assert value(metrics.MESSAGES_LOCAL, 60, start) == 2


def test_a_minute_is_written_only_once_it_has_settled(people, start):
    metrics.roll_up(start + 3 * MINUTE + timedelta(seconds=2))  # 2 s after the minute: a send may be committing
    assert value(metrics.MESSAGES_LOCAL, 60, start + 2 * MINUTE) is None
    metrics.roll_up(start + 3 * MINUTE + timedelta(seconds=6))
    assert value(metrics.MESSAGES_LOCAL, 60, start + 2 * MINUTE) == 0


def test_after_downtime_every_missed_minute_is_caught_up(people, start):
    alice, bob = people
    metrics.roll_up(start + MINUTE + timedelta(seconds=10))
    # The worker was down 40 minutes; people kept chatting.
    for minute in (5, 17, 17, 38):
        send(alice, bob.jid, start + minute * MINUTE + timedelta(seconds=1))

    written = metrics.roll_up(start + 41 * MINUTE + timedelta(seconds=10))

    assert written[60] == 40
    per_minute = dict(
        MetricSample.objects.filter(name=metrics.MESSAGES_LOCAL, resolution=60).values_list("bucket", "value")
    )
    assert [int(per_minute[start + m * MINUTE]) for m in range(41)] == [
        2 if m == 17 else 1 if m in (5, 38) else 0 for m in range(41)
    ]


def test_catching_up_is_bounded_to_what_is_kept(people, start):
    metrics.roll_up(start + MINUTE + timedelta(seconds=10))
    later = start + timedelta(days=5)  # five days without a worker

    written = metrics.roll_up(later)

    minutes = MetricSample.objects.filter(name=metrics.MESSAGES_LOCAL, resolution=60)
    assert minutes.count() == written[60] == 2 * 24 * 60 - 1  # two days of finished minutes, none pruned at once
    assert min(minutes.values_list("bucket", flat=True)) >= later - timedelta(days=2)
    # Hours and days were caught up from the rows themselves, so the charts of the day and month have no hole.
    hours = MetricSample.objects.filter(name=metrics.MESSAGES_LOCAL, resolution=3600)
    assert hours.filter(bucket=metrics.floor(later, 3600) - timedelta(hours=1)).exists()
    assert hours.filter(bucket=metrics.floor(start + timedelta(days=1), 3600)).exists()


def test_minutes_roll_up_into_hours_and_days(people, make_user):
    alice, bob = people
    carol = make_user("carol")
    day = metrics.floor(timezone.now() - timedelta(days=3), 86400)
    User.objects.update(date_joined=day - timedelta(days=1))
    User.objects.filter(pk=carol.pk).update(date_joined=day + timedelta(hours=1, minutes=2))
    domain = RemoteDomain.objects.create(domain="prosody.localhost")
    hour = day + timedelta(hours=1)
    send(alice, bob.jid, hour + 10 * MINUTE)
    send(alice, bob.jid, hour + 40 * MINUTE)  # alice twice in the hour: one active person there, not two
    send(bob, alice.jid, hour + 41 * MINUTE)
    send(alice, bob.jid, day + timedelta(hours=5))
    for created, seconds in [(hour + 1 * MINUTE, 2), (hour + 2 * MINUTE, 4), (hour + 3 * MINUTE, 30)]:
        OutboxItem.objects.create(
            domain=domain, stanza="<message/>", kind=OutboxItem.Kind.MESSAGE, state=OutboxItem.State.DELIVERED,
            created_at=created, delivered_at=created + timedelta(seconds=seconds),
        )  # fmt: skip
    # Minutes of that hour, as the beat wrote them when they happened.
    metrics.roll_up(hour + timedelta(hours=1, seconds=10))

    metrics.roll_up(day + timedelta(days=1, seconds=10))

    assert value(metrics.MESSAGES_LOCAL, 3600, hour) == 3
    assert value(metrics.ACTIVE_PEOPLE, 3600, hour) == 2
    assert value(metrics.SIGNUPS, 3600, hour) == 1
    assert value(metrics.MESSAGES_TO_FEDERATION, 3600, hour) == 3
    assert value(metrics.FEDERATION_LATENCY, 3600, hour) == 4.0  # the median of 2, 4 and 30 seconds
    assert value(metrics.FEDERATION_LATENCY, 60, hour + 3 * MINUTE) == 30.0
    assert value(metrics.FEDERATION_LATENCY, 60, hour + 5 * MINUTE) is None  # nothing delivered: no value
    assert value(metrics.MESSAGES_LOCAL, 3600, day + timedelta(hours=5)) == 1
    assert value(metrics.MESSAGES_LOCAL, 86400, day) == 4
    assert value(metrics.ACTIVE_PEOPLE, 86400, day) == 2
    assert value(metrics.SIGNUPS, 86400, day) == 1


def test_an_hour_adds_up_its_minutes_as_written(people):
    alice, bob = people
    hour = metrics.floor(timezone.now() - timedelta(hours=3), 3600)
    send(alice, bob.jid, hour + 10 * MINUTE)
    send(alice, bob.jid, hour + 50 * MINUTE)
    metrics.roll_up(hour + 59 * MINUTE)  # the hour is not over: minutes only
    assert value(metrics.MESSAGES_LOCAL, 3600, hour) is None
    # A minute's figure, once written, is what the hour sums (not the rows again: rows may be gone by then).
    MetricSample.objects.filter(name=metrics.MESSAGES_LOCAL, resolution=60, bucket=hour + 10 * MINUTE).update(value=7)

    metrics.roll_up(hour + timedelta(hours=1, seconds=10))

    assert value(metrics.MESSAGES_LOCAL, 3600, hour) == 8


def test_failures_are_counted_in_the_minute_they_happen(people, start):
    domain = RemoteDomain.objects.create(domain="prosody.localhost")
    queued = [
        OutboxItem.objects.create(domain=domain, stanza="<message/>", created_at=start - timedelta(hours=2))
        for _ in range(3)
    ]
    metrics.roll_up(start + MINUTE + timedelta(seconds=10))
    # Two of them fail for good 20 minutes later (e.g. expired, or refused by the remote server).
    OutboxItem.objects.filter(pk__in=[queued[0].pk, queued[1].pk]).update(state=OutboxItem.State.FAILED)

    metrics.roll_up(start + 21 * MINUTE + timedelta(seconds=10))
    metrics.roll_up(start + 22 * MINUTE + timedelta(seconds=10))

    failures = dict(
        MetricSample.objects.filter(name=metrics.FEDERATION_FAILURES, resolution=60).values_list("bucket", "value")
    )
    assert failures[start + 20 * MINUTE] == 2
    assert sum(failures.values()) == 2  # counted once


def test_old_minutes_and_hours_are_pruned_and_days_kept(people):
    old = metrics.floor(timezone.now() - timedelta(days=400), 86400)
    for name, resolution, bucket in [
        (metrics.MESSAGES_LOCAL, 60, timezone.now() - timedelta(days=3)),
        (metrics.MESSAGES_LOCAL, 3600, timezone.now() - timedelta(days=41)),
        (metrics.MESSAGES_LOCAL, 86400, old),
    ]:
        MetricSample.objects.create(name=name, resolution=resolution, bucket=metrics.floor(bucket, resolution), value=1)

    roll_up_metrics()  # the beat's task

    assert not MetricSample.objects.filter(resolution=60, bucket__lt=timezone.now() - timedelta(days=2)).exists()
    assert not MetricSample.objects.filter(resolution=3600, bucket__lt=timezone.now() - timedelta(days=40)).exists()
    assert value(metrics.MESSAGES_LOCAL, 86400, old) == 1
    assert MetricSample.objects.filter(resolution=60, bucket__gte=timezone.now() - timedelta(minutes=3)).exists()


# --- Charts -----------------------------------------------------------------------------------------------------


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # valid XML, or this raises
    assert root.tag == f"{SVG}svg"
    return root


def series_values(root: ET.Element, key: str) -> list[float | None]:
    [group] = [g for g in root.iter(f"{SVG}g") if g.get("data-series") == key]
    return [float(v) if v else None for v in group.get("data-values").split(",")]


def test_the_charts_are_valid_svg_drawing_the_samples_with_a_text_alternative(people, start):
    alice, bob = people
    for minute, count in [(70, 1), (75, 4), (80, 2)]:
        for _ in range(count):
            send(alice, bob.jid, start + minute * MINUTE + timedelta(seconds=3))
    at = start + 85 * MINUTE + timedelta(seconds=30)
    metrics.roll_up(at)

    [messages, signups, active, latency, failures] = charts.trends("hour", at)

    root = parse(messages.svg)
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title.text == "Messages"
    assert "Sent here: 7 in all, at most 4" in desc.text
    assert messages.summary == "In all: sent here 7, from federation 0, to federation 0"
    assert latency.summary == "Nothing to time in this range"
    assert active.summary == "Most in one minute: 1"
    values = series_values(root, "local")
    assert len(values) == 60
    samples = dict(
        MetricSample.objects.filter(name=metrics.MESSAGES_LOCAL, resolution=60).values_list("bucket", "value")
    )
    last = metrics.floor(at, 60)
    buckets = [last - (59 - k) * MINUTE for k in range(60)]
    assert values[:-1] == [samples[b] for b in buckets[:-1]]  # written minutes, as stored
    assert values[buckets.index(start + 75 * MINUTE)] == 4
    # The highest point is drawn at the top of the plot, zeros on the baseline.
    [group] = [g for g in root.iter(f"{SVG}g") if g.get("data-series") == "local"]
    points = [
        tuple(float(n) for n in pair.split(","))
        for line in group.iter(f"{SVG}polyline")
        for pair in line.get("points").split()
    ]
    assert min(y for _, y in points) == pytest.approx(charts.y_of(4, float(root.get("data-top"))))
    assert max(y for _, y in points) == pytest.approx(charts.TOP + charts.PLOT_H)
    # No inline style anywhere (the CSP refuses it): colours come from classes.
    assert all("style" not in element.attrib for element in root.iter())
    # The numbers as a table for screen readers, one row per minute.
    assert len(messages.rows) == 60
    assert messages.rows[buckets.index(start + 75 * MINUTE)] == (f"{start + 75 * MINUTE:%H:%M}", ["4", "0", "0"])
    for chart in (signups, active, latency, failures):
        parse(chart.svg)


def test_a_chart_leaves_a_gap_where_there_is_no_value():
    chart = charts.chart(
        "latency", "Delivery", [charts.Line("latency", "Median", [1.0, None, 3.0, 4.0])],
        [timezone.now()] * 4, 60, unit="s",
    )  # fmt: skip
    root = parse(chart.svg)
    assert series_values(root, "latency") == [1.0, None, 3.0, 4.0]
    assert len(list(root.iter(f"{SVG}circle"))) == 1  # the lone first point
    assert len(list(root.iter(f"{SVG}polyline"))) == 1  # then 3.0 to 4.0
    assert chart.rows[1][1] == ["none"]


def test_the_current_minute_is_live_before_any_roll_up(people, start):
    alice, bob = people
    metrics.roll_up()
    before = series_values(parse(charts.trends("hour")[0].svg), "local")[-1]

    actions.send_message(alice, to=bob.jid, body="just now", client_id=uuid.uuid4())
    actions.send_message(bob, to=alice.jid, body="and again", client_id=uuid.uuid4())

    assert series_values(parse(charts.trends("hour")[0].svg), "local")[-1] == before + 2
    day = parse(charts.trends("day")[0].svg)
    month = parse(charts.trends("month")[0].svg)
    assert series_values(day, "local")[-1] >= 2 and len(series_values(day, "local")) == 24
    assert series_values(month, "local")[-1] >= 2 and len(series_values(month, "local")) == 30


def test_the_trends_refresh_themselves_and_switch_range(make_user):
    operator = make_user("operator", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)

    page = html.fromstring(client.get(reverse("dashboard:index") + "?range=day").content)
    [section] = page.xpath('.//*[@id="trends"]')
    assert section.get("hx-get") == reverse("dashboard:trends") + "?range=day"
    assert section.get("hx-trigger") == "every 5s"
    assert len(section.xpath(".//*[local-name()='svg']")) == 5
    [current] = section.xpath('.//a[@aria-current="true"]')
    assert current.text_content() == "Last 24 hours, per hour"

    partial = client.get(reverse("dashboard:trends") + "?range=month", headers={"HX-Request": "true"})
    doc = html.fromstring(partial.content)
    assert doc.get("id") == "trends"  # just the section, which replaces itself
    assert "Trends: last 30 days, per day" in doc.text_content()
    full = client.get(reverse("dashboard:trends") + "?range=nonsense")
    assert b"<html" in full.content and b"Trends: last hour, per minute" in full.content
