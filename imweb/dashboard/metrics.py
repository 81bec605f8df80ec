"""The service's figures: what is happening now (read live from the database and Redis/Valkey) and over time (the
MetricSample series that `roll_up` writes each minute and rolls up into hours and days).

Everything here reads the shared stores only (the database, Redis/Valkey), never a process's own memory, so the
dashboard and /metrics give the same answer whichever web process serves them.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import Trunc
from django.utils import timezone

MINUTE, HOUR, DAY = 60, 3600, 86400
RESOLUTIONS = (MINUTE, HOUR, DAY)
_TRUNC_KIND = {MINUTE: "minute", HOUR: "hour", DAY: "day"}

# --- Errors counter ------------------------------------------------------------------------------------------

ERROR_KEY = "dashboard:errors:{minute}"
ERROR_KEY_SECONDS = 2 * HOUR
# After the cache failed, the handler leaves it alone this long: an error storm during an outage must not wait on
# an unreachable Valkey once per record.
ERROR_RETRY_SECONDS = 30.0


class ErrorCountHandler(logging.Handler):
    """Counts ERROR records per minute in the shared cache (keys expire after two hours), for the dashboard's
    "errors in the last hour". It never raises and never logs: a record raised while counting (the cache client
    logging its own failure, say) is not counted again, and after a failure the cache is left alone for a while."""

    _busy = threading.local()
    _quiet_until = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "on", False) or time.monotonic() < ErrorCountHandler._quiet_until:
            return
        self._busy.on = True
        try:
            count_error(int(record.created))
        except Exception:  # noqa: BLE001  (a logging handler must never raise; the cache may be down)
            ErrorCountHandler._quiet_until = time.monotonic() + ERROR_RETRY_SECONDS
        finally:
            self._busy.on = False

    def handleError(self, record: logging.LogRecord) -> None:
        """Stay silent: logging's default prints a traceback to stderr, which is logging about logging."""


def count_error(at: float) -> None:
    key = ERROR_KEY.format(minute=int(at) // MINUTE)
    try:
        cache.incr(key)
    except ValueError:  # no key for this minute yet
        if not cache.add(key, 1, timeout=ERROR_KEY_SECONDS):
            cache.incr(key)  # another process created it meanwhile


def errors_last_hour(now: float | None = None) -> int:
    """ERROR records logged by any process in the last 60 minutes (this one included). Raises if the cache is
    unreachable: the caller says so rather than showing 0."""
    minute = int(now if now is not None else time.time()) // MINUTE
    keys = [ERROR_KEY.format(minute=m) for m in range(minute - 59, minute + 1)]
    return sum(int(value) for value in cache.get_many(keys).values())


# --- Redis / Valkey --------------------------------------------------------------------------------------------

_clients: dict[str, Any] = {}


def redis_client(url: str | None = None) -> Any:
    """A redis-py client with short timeouts (a dashboard must answer even when Valkey does not), one per URL."""
    import redis

    url = url or settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    return client


def _broker_redis_url() -> str | None:
    """The Celery broker as a redis-py URL, or None when the broker is not Redis."""
    url = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    if url.startswith("redis+socket://"):
        return "unix://" + url.removeprefix("redis+socket://")
    if url.startswith(("redis://", "rediss://", "unix://")):
        return url
    return None


# kombu's Redis transport keeps one list per priority step: the queue's own name for priority 0, and the name,
# its separator and the step for the others (kombu.transport.redis, PRIORITY_STEPS and `_q_for_pri`).
_KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
_KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


def celery_queue_length() -> int | None:
    """Tasks waiting in the Celery queue (the broker's lists), None when the broker is not Redis."""
    from imweb.celery import app

    url = _broker_redis_url()
    if url is None:
        return None
    queue = app.conf.task_default_queue or "celery"
    names = [queue if step == 0 else f"{queue}{_KOMBU_PRIORITY_SEPARATOR}{step}" for step in _KOMBU_PRIORITY_STEPS]
    pipe = redis_client(url).pipeline(transaction=False)
    for name in names:
        pipe.llen(name)
    return sum(int(n) for n in pipe.execute())


# --- Now -------------------------------------------------------------------------------------------------------


@dataclass
class Check:
    """One reachability check: ok, or the problem in plain words."""

    ok: bool
    problem: str = ""


@dataclass
class Process:
    name: str
    state: str
    since: datetime | None
    restarts: int


@dataclass
class Now:
    """The service at one instant, as the Now page and /metrics show it. A figure that could not be read is None,
    with the reason in `problems`."""

    at: datetime
    people_online: int = 0
    sockets_web: int = 0
    sockets_api: int = 0
    messages_local: int = 0
    messages_to_federation: int = 0
    messages_from_federation: int = 0
    streams_in: int = 0
    streams_out: int = 0
    outbox_waiting: int = 0
    outbox_oldest: datetime | None = None
    celery_queue: int | None = None
    errors_last_hour: int | None = None
    database: Check = field(default_factory=lambda: Check(True))
    valkey: Check = field(default_factory=lambda: Check(True))
    processes: list[Process] | None = None
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def outbox_oldest_age(self) -> float | None:
        return (self.at - self.outbox_oldest).total_seconds() if self.outbox_oldest else None


def _plain(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def live_session_cutoff(now: datetime) -> datetime:
    """Sessions refreshed since this instant are live; older ones belong to a process that stopped (the sweeper
    closes them after the same delay, accounts.actions.presence.sweep_stale_sessions)."""
    return now - timedelta(seconds=3 * settings.IMWEB_PRESENCE_HEARTBEAT_SECONDS)


# An API stream's resource is "api-<hex>" (chat.api.stream); a web tab's is bare hex (chat.consumers).
API_RESOURCE_PREFIX = "api-"


def local_sender() -> Q:
    """Messages whose sender is a person of this server (a sender on another domain came through federation)."""
    return Q(sender_jid__endswith=f"@{settings.IMWEB_DOMAIN}")


def check_database() -> Check:
    from imweb.views import _check_database

    try:
        _check_database()
    except Exception as exc:  # noqa: BLE001  (any failure is reported, in words)
        return Check(False, f"Database unreachable: {_plain(exc)}")
    return Check(True)


def check_valkey() -> Check:
    try:
        redis_client().ping()
    except Exception as exc:  # noqa: BLE001
        return Check(False, f"Valkey unreachable: {_plain(exc)}")
    return Check(True)


def supervised_processes() -> list[Process] | None:
    """Each process of the supervisor running this instance, None without one (scaled mode)."""
    from imweb.views import _processes

    processes = _processes()
    if processes is None:
        return None
    result = []
    for name, child in processes.items():
        since = child.get("since")
        restarts = child.get("restarts")
        result.append(
            Process(
                name=name,
                state=str(child.get("state") or "unknown"),
                since=datetime.fromtimestamp(float(since), UTC) if isinstance(since, int | float) else None,
                restarts=int(restarts) if isinstance(restarts, int) else 0,
            )
        )
    return result


def read_now(at: datetime | None = None, *, checks: bool = True) -> Now:
    """Read every live figure. Nothing here raises: an unreachable store becomes a problem in words."""
    from accounts.models import PresenceSession
    from chat.models import Message
    from federation.models import OutboxItem, RemoteDomain

    at = at or timezone.now()
    figures = Now(at=at)
    if checks:
        figures.database = check_database()
        figures.valkey = check_valkey()
    try:
        live = PresenceSession.objects.filter(heartbeat_at__gte=live_session_cutoff(at))
        figures.people_online = live.values("user").distinct().count()
        sockets = live.aggregate(
            api=Count("id", filter=Q(resource__startswith=API_RESOURCE_PREFIX)),
            all=Count("id"),
        )
        figures.sockets_api = sockets["api"]
        figures.sockets_web = sockets["all"] - sockets["api"]
        minute_ago = at - timedelta(seconds=MINUTE)
        messages = Message.objects.filter(created_at__gt=minute_ago, created_at__lte=at).aggregate(
            local=Count("id", filter=local_sender()), remote=Count("id", filter=~local_sender())
        )
        figures.messages_local, figures.messages_from_federation = messages["local"], messages["remote"]
        figures.messages_to_federation = OutboxItem.objects.filter(
            kind=OutboxItem.Kind.MESSAGE, created_at__gt=minute_ago, created_at__lte=at
        ).count()
        streams = RemoteDomain.objects.aggregate(
            inbound=Count("id", filter=Q(connected_in=True)), outbound=Count("id", filter=Q(connected_out=True))
        )
        figures.streams_in, figures.streams_out = streams["inbound"], streams["outbound"]
        waiting = OutboxItem.objects.filter(state__in=[OutboxItem.State.QUEUED, OutboxItem.State.SENDING]).aggregate(
            n=Count("id"), oldest=Min("created_at")
        )
        figures.outbox_waiting, figures.outbox_oldest = waiting["n"], waiting["oldest"]
    except Exception as exc:  # noqa: BLE001
        figures.problems["database"] = f"Database figures unavailable: {_plain(exc)}"
    try:
        figures.celery_queue = celery_queue_length()
        if figures.celery_queue is None:
            figures.problems["celery"] = "The Celery broker is not Redis/Valkey: its queue is not read here"
    except Exception as exc:  # noqa: BLE001
        figures.problems["celery"] = f"Celery queue unreadable (Valkey unreachable: {_plain(exc)})"
    try:
        figures.errors_last_hour = errors_last_hour(at.timestamp())
    except Exception as exc:  # noqa: BLE001
        figures.problems["errors"] = f"Error count unreadable (Valkey unreachable: {_plain(exc)})"
    try:
        figures.processes = supervised_processes()
    except Exception as exc:  # noqa: BLE001
        figures.problems["processes"] = f"Supervisor record unreadable: {_plain(exc)}"
    return figures


@dataclass
class Totals:
    """Counters since the beginning, from the database (for /metrics)."""

    messages_local: int
    messages_federation: int
    signups: int
    outbox_delivered: int
    outbox_failed: int


def totals() -> Totals:
    from accounts.models import User
    from chat.models import Message
    from federation.models import OutboxItem

    messages = Message.objects.aggregate(
        local=Count("id", filter=local_sender()), remote=Count("id", filter=~local_sender())
    )
    outbox = OutboxItem.objects.aggregate(
        delivered=Count("id", filter=Q(state=OutboxItem.State.DELIVERED)),
        failed=Count("id", filter=Q(state=OutboxItem.State.FAILED)),
    )
    return Totals(
        messages_local=messages["local"],
        messages_federation=messages["remote"],
        signups=User.objects.count(),
        outbox_delivered=outbox["delivered"],
        outbox_failed=outbox["failed"],
    )


# --- The time series -------------------------------------------------------------------------------------------

MESSAGES_LOCAL = "messages_local"
MESSAGES_TO_FEDERATION = "messages_to_federation"
MESSAGES_FROM_FEDERATION = "messages_from_federation"
SIGNUPS = "signups"
ACTIVE_PEOPLE = "active_people"
FEDERATION_LATENCY = "federation_latency_median"  # seconds; no sample for a bucket without deliveries
FEDERATION_FAILURES = "federation_failures"
# The count of failed outbox rows when a minute was written: failures per minute are the growth of this count
# (a row records no time of failure), so a stanza that fails days after it was queued counts when it fails.
FAILED_SEEN = "outbox_failed_seen"

SUMS = (MESSAGES_LOCAL, MESSAGES_TO_FEDERATION, MESSAGES_FROM_FEDERATION, SIGNUPS, FEDERATION_FAILURES)
# Written for every bucket, even at zero: the newest bucket of this name is where the next roll-up starts.
MARK = MESSAGES_LOCAL

KEEP = {MINUTE: timedelta(days=2), HOUR: timedelta(days=40)}  # days are kept for ever
# How far back a roll-up goes when nothing was written yet, or after downtime: minutes are only kept two days,
# hours forty; days at most this far (and never before the first account or message).
CATCH_UP = {MINUTE: timedelta(days=2), HOUR: timedelta(days=40), DAY: timedelta(days=400)}
# A minute is written once it ended this long ago, so a message stamped just before the minute's end and committed
# just after it is counted.
SETTLE = timedelta(seconds=5)
LOCK_KEY = "dashboard:roll-up"

Buckets = dict[datetime, dict[str, float]]


def floor(at: datetime, resolution: int) -> datetime:
    """The start of the bucket of `resolution` seconds holding `at` (UTC: days start at midnight UTC)."""
    seconds = int(at.timestamp())
    return datetime.fromtimestamp(seconds - seconds % resolution, UTC)


def _steps(start: datetime, end: datetime, resolution: int) -> list[datetime]:
    step = timedelta(seconds=resolution)
    out, at = [], start
    while at < end:
        out.append(at)
        at += step
    return out


def _grouped(queryset: QuerySet, field_name: str, resolution: int, **aggregates: Any) -> dict[datetime, dict]:
    rows = (
        queryset.annotate(b=Trunc(field_name, _TRUNC_KIND[resolution], tzinfo=UTC))
        .values("b")
        .annotate(**aggregates)
        .order_by()
    )
    return {row["b"].astimezone(UTC): row for row in rows}


def from_source(start: datetime, end: datetime, resolution: int, *, failures: bool = True) -> Buckets:
    """Every figure of each bucket in [start, end), computed from the rows themselves (messages, accounts, the
    outbox); with `failures`, failures are the failed rows created in the bucket (used where no minute samples
    exist to sum)."""
    from accounts.models import User
    from chat.models import Message
    from federation.models import OutboxItem

    out: Buckets = {
        bucket: {name: 0.0 for name in SUMS} | {ACTIVE_PEOPLE: 0.0} for bucket in _steps(start, end, resolution)
    }
    if not out:
        return out
    window = {"created_at__gte": start, "created_at__lt": end}
    for bucket, row in _grouped(
        Message.objects.filter(**window),
        "created_at",
        resolution,
        local=Count("id", filter=local_sender()),
        remote=Count("id", filter=~local_sender()),
        active=Count("sender_id", filter=local_sender(), distinct=True),
    ).items():
        out[bucket].update(
            {MESSAGES_LOCAL: row["local"], MESSAGES_FROM_FEDERATION: row["remote"], ACTIVE_PEOPLE: row["active"]}
        )
    for bucket, row in _grouped(
        OutboxItem.objects.filter(kind=OutboxItem.Kind.MESSAGE, **window), "created_at", resolution, n=Count("id")
    ).items():
        out[bucket][MESSAGES_TO_FEDERATION] = row["n"]
    for bucket, row in _grouped(
        User.objects.filter(date_joined__gte=start, date_joined__lt=end), "date_joined", resolution, n=Count("id")
    ).items():
        out[bucket][SIGNUPS] = row["n"]
    if failures:
        for bucket, row in _grouped(
            OutboxItem.objects.filter(state=OutboxItem.State.FAILED, **window), "created_at", resolution, n=Count("id")
        ).items():
            out[bucket][FEDERATION_FAILURES] = row["n"]
    latencies: dict[datetime, list[float]] = defaultdict(list)
    delivered = OutboxItem.objects.filter(delivered_at__gte=start, delivered_at__lt=end).values_list(
        "delivered_at", "created_at"
    )
    for delivered_at, created_at in delivered.iterator():
        latencies[floor(delivered_at, resolution)].append(max(0.0, (delivered_at - created_at).total_seconds()))
    for bucket, values in latencies.items():
        if bucket in out:
            out[bucket][FEDERATION_LATENCY] = statistics.median(values)
    return out


def _failed_total() -> int:
    from federation.models import OutboxItem

    return OutboxItem.objects.filter(state=OutboxItem.State.FAILED).count()


def _failed_seen() -> float | None:
    from imweb.dashboard.models import MetricSample

    latest = MetricSample.objects.filter(name=FAILED_SEEN, resolution=MINUTE).order_by("-bucket").first()
    return latest.value if latest else None


def _samples(resolution: int, start: datetime, end: datetime) -> Buckets:
    from imweb.dashboard.models import MetricSample

    out: Buckets = defaultdict(dict)
    for name, bucket, value in MetricSample.objects.filter(
        resolution=resolution, bucket__gte=start, bucket__lt=end
    ).values_list("name", "bucket", "value"):
        out[bucket.astimezone(UTC)][name] = value
    return out


def _latest(resolution: int) -> datetime | None:
    from imweb.dashboard.models import MetricSample

    latest = MetricSample.objects.filter(name=MARK, resolution=resolution).aggregate(b=Max("bucket"))["b"]
    return latest.astimezone(UTC) if latest else None


def _earliest_data() -> datetime | None:
    from accounts.models import User
    from chat.models import Message

    firsts = [
        User.objects.aggregate(t=Min("date_joined"))["t"],
        Message.objects.aggregate(t=Min("created_at"))["t"],
    ]
    firsts = [t for t in firsts if t is not None]
    return min(firsts) if firsts else None


def _start(resolution: int, at: datetime, end: datetime, earliest: datetime | None) -> datetime:
    """Where this resolution's roll-up begins: after its newest bucket, bounded by the catch-up limit (the first
    whole bucket within it, so nothing written is pruned at once)."""
    latest = _latest(resolution)
    bound = at - CATCH_UP[resolution]
    if floor(bound, resolution) < bound:
        bound = floor(bound, resolution) + timedelta(seconds=resolution)
    if latest is not None:
        start = latest + timedelta(seconds=resolution)
    elif earliest is not None:
        start = floor(earliest, resolution)
    else:
        start = end - timedelta(seconds=resolution)  # nothing happened yet: record the last bucket, at zero
    return max(start, bound)


def _write(resolution: int, buckets: Buckets) -> int:
    from imweb.dashboard.models import MetricSample

    rows = [
        MetricSample(name=name, resolution=resolution, bucket=bucket, value=float(value))
        for bucket, values in buckets.items()
        for name, value in values.items()
    ]
    # A row already written (a concurrent run) stays as it is: a bucket is computed once.
    MetricSample.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return len(buckets)


def _roll_minutes(start: datetime, end: datetime) -> Buckets:
    buckets = from_source(start, end, MINUTE, failures=False)
    if not buckets:
        return buckets
    seen = _failed_seen()
    total = _failed_total()
    if seen is None:  # the first minute ever written: failures before it are history, not this minute's
        from federation.models import OutboxItem

        seen = OutboxItem.objects.filter(state=OutboxItem.State.FAILED, created_at__lt=start).count()
    last = max(buckets)
    buckets[last][FEDERATION_FAILURES] = max(0.0, total - seen)
    buckets[last][FAILED_SEEN] = total
    return buckets


def _roll_up_from(lower: int, resolution: int, start: datetime, end: datetime) -> Buckets:
    """Buckets of `resolution` in [start, end): sums from the `lower` samples when they cover the whole bucket,
    from the rows otherwise; distinct people and the median latency always from the rows (neither adds up)."""
    source = from_source(start, end, resolution)
    if not source:
        return source
    parts = _samples(lower, start, end)
    per_bucket = resolution // lower
    grouped: dict[datetime, list[dict[str, float]]] = defaultdict(list)
    for bucket, values in parts.items():
        if MARK in values:
            grouped[floor(bucket, resolution)].append(values)
    for bucket, values in source.items():
        children = grouped.get(bucket, [])
        if len(children) == per_bucket:
            for name in SUMS:
                values[name] = sum(child.get(name, 0.0) for child in children)
    return source


def roll_up(at: datetime | None = None) -> dict[int, int]:
    """Write every complete minute, hour and day not yet written (idempotent: a bucket is written once; bounded:
    at most CATCH_UP back), then drop minutes older than two days and hours older than forty. Returns how many
    buckets of each resolution were written."""
    from imweb.dashboard.models import MetricSample

    at = at or timezone.now()
    settled = at - SETTLE
    try:
        if not cache.add(LOCK_KEY, 1, timeout=300):
            return {}  # another worker is rolling up right now
        locked = True
    except Exception:  # noqa: BLE001  (without the cache, the unique constraint still keeps buckets single)
        locked = False
    try:
        earliest = _earliest_data()
        written: dict[int, int] = {}
        for resolution in RESOLUTIONS:
            end = floor(settled, resolution)
            start = _start(resolution, at, end, earliest)
            if start >= end:
                written[resolution] = 0
                continue
            with transaction.atomic():
                if resolution == MINUTE:
                    buckets = _roll_minutes(start, end)
                else:
                    buckets = _roll_up_from(MINUTE if resolution == HOUR else HOUR, resolution, start, end)
                written[resolution] = _write(resolution, buckets)
        for resolution, keep in KEEP.items():
            MetricSample.objects.filter(resolution=resolution, bucket__lt=at - keep).delete()
        return written
    finally:
        if locked:
            try:
                cache.delete(LOCK_KEY)
            except Exception:  # noqa: BLE001, S110  (the lock expires by itself)
                pass


@dataclass
class Series:
    """One chart's worth of figures: the buckets, and per figure one value per bucket (None where there is no
    value, e.g. no deliveries to time)."""

    resolution: int
    buckets: list[datetime]
    values: dict[str, list[float | None]]


def series(resolution: int, count: int, names: Iterable[str], at: datetime | None = None) -> Series:
    """The last `count` buckets up to now (the last one is the current, unfinished bucket): stored samples where
    written, the rest computed live from the rows, so a message sent a second ago is already in the chart."""
    at = at or timezone.now()
    names = list(names)
    last = floor(at, resolution)
    step = timedelta(seconds=resolution)
    buckets = [last - step * (count - 1 - k) for k in range(count)]
    end = last + step
    stored = _samples(resolution, buckets[0], end)
    written = [bucket for bucket, values in stored.items() if MARK in values]
    tail_start = max(written) + step if written else buckets[0]
    live = from_source(tail_start, end, resolution, failures=False)
    # Failures in the unwritten tail: those of minutes already written (for hours and days), and those seen since
    # the last minute was written, in the current bucket.
    if resolution != MINUTE and live:
        for bucket, values in _samples(MINUTE, tail_start, end).items():
            target = floor(bucket, resolution)
            if target in live:
                live[target][FEDERATION_FAILURES] += values.get(FEDERATION_FAILURES, 0.0)
    if live:
        seen = _failed_seen()
        if seen is not None:
            live[last][FEDERATION_FAILURES] += max(0.0, _failed_total() - seen)
    merged = {**stored, **live}
    values = {name: [merged.get(bucket, {}).get(name) for bucket in buckets] for name in names}
    for name in names:
        if name != FEDERATION_LATENCY:  # a count with no row is zero; a median with no delivery is no value
            values[name] = [0.0 if value is None else value for value in values[name]]
    return Series(resolution, buckets, values)
