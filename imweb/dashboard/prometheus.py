"""/metrics: the dashboard's figures in the Prometheus text exposition format (version 0.0.4), for monitoring.

Allowed with `Authorization: Bearer <IMWEB_METRICS_TOKEN>` or from an address in IMWEB_METRICS_ALLOWED_IPS;
refused (403) otherwise. Every figure is read from the shared stores (the database, Redis/Valkey) at scrape time,
so any web process gives the same answer and nothing needs prometheus_client's multiprocess mode. The text is
written here rather than with prometheus_client: it is not a dependency of imweb, and a registry of collectors
would add nothing to a handful of figures read fresh on each scrape. The format rules followed are those of
prometheus_client's generate_latest: a HELP and a TYPE line per family, counters named `..._total`, label values
and HELP text escaped, floats in Go's notation (`+Inf`, `NaN`).
"""

from __future__ import annotations

import hmac
import ipaddress
import math
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache

from imweb.dashboard import metrics as figures

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REFUSAL = (
    "403 Forbidden: /metrics needs the header 'Authorization: Bearer <IMWEB_METRICS_TOKEN>' "
    "or a client address listed in IMWEB_METRICS_ALLOWED_IPS.\n"
)

Sample = tuple[dict[str, str], float]


def _networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for entry in getattr(settings, "IMWEB_METRICS_ALLOWED_IPS", []) or []:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            continue  # a malformed entry allows nobody
    return networks


def _address_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == network.version and ip in network for network in _networks())


def _token_allowed(header: str) -> bool:
    token = str(getattr(settings, "IMWEB_METRICS_TOKEN", "") or "")
    scheme, _, offered = header.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False  # an empty setting means no token works
    return hmac.compare_digest(offered.strip().encode(), token.encode())


def allowed(request: HttpRequest) -> bool:
    """The request bears the metrics token, or comes from an allowed address (REMOTE_ADDR: imweb.proxy already
    put the real client there)."""
    return _token_allowed(request.headers.get("Authorization", "")) or _address_allowed(
        request.META.get("REMOTE_ADDR", "")
    )


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _label_value(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    """One metric family as text lines; a counter's name must end in `_total`."""
    if kind == "counter" and not name.endswith("_total"):
        raise ValueError(f"a counter's name ends in _total: {name}")
    lines = [f"# HELP {name} {_help(help_text)}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        rendered = ",".join(f'{key}="{_label_value(val)}"' for key, val in labels.items())
        lines.append(f"{name}{{{rendered}}} {_value(value)}" if rendered else f"{name} {_value(value)}")
    return lines


def exposition() -> str:
    """Every figure, as the body of a scrape."""
    now = figures.read_now()
    total = figures.totals()
    lines: list[str] = []

    def gauge(name: str, help_text: str, *samples: Sample) -> None:
        lines.extend(family(name, "gauge", help_text, samples))

    def counter(name: str, help_text: str, *samples: Sample) -> None:
        lines.extend(family(name, "counter", help_text, samples))

    gauge("imweb_people_online", "People with at least one live tab or API stream.", ({}, now.people_online))
    gauge(
        "imweb_sockets_open",
        "Open live connections, by kind (web tabs, API streams).",
        ({"kind": "web"}, now.sockets_web),
        ({"kind": "api"}, now.sockets_api),
    )
    gauge(
        "imweb_messages_last_minute",
        "Messages in the last 60 seconds: stored from local senders, queued to federation, received from it.",
        ({"origin": "local"}, now.messages_local),
        ({"origin": "to_federation"}, now.messages_to_federation),
        ({"origin": "from_federation"}, now.messages_from_federation),
    )
    gauge(
        "imweb_federation_streams_open",
        "Authenticated server-to-server streams, by direction.",
        ({"direction": "in"}, now.streams_in),
        ({"direction": "out"}, now.streams_out),
    )
    gauge("imweb_outbox_waiting", "Federation outbox stanzas queued or being handed over.", ({}, now.outbox_waiting))
    gauge(
        "imweb_outbox_oldest_age_seconds",
        "Age of the oldest waiting outbox stanza (0 when none waits).",
        ({}, now.outbox_oldest_age or 0.0),
    )
    if now.celery_queue is not None:
        gauge("imweb_celery_queue_length", "Tasks waiting in the Celery broker's queue.", ({}, now.celery_queue))
    if now.errors_last_hour is not None:
        gauge(
            "imweb_errors_last_hour",
            "Records logged at ERROR by any process in the last hour.",
            ({}, now.errors_last_hour),
        )
    gauge("imweb_database_up", "1 when the database accepts a write, else 0.", ({}, float(now.database.ok)))
    gauge("imweb_valkey_up", "1 when Redis/Valkey answers a ping, else 0.", ({}, float(now.valkey.ok)))
    if now.processes is not None:
        gauge(
            "imweb_process_up",
            "1 when the supervisor reports the process running, else 0.",
            *(({"process": p.name}, float(p.state == "running")) for p in now.processes),
        )
        gauge(
            "imweb_process_state_since_seconds",
            "Unix time at which the process entered its current state.",
            *(({"process": p.name}, p.since.timestamp()) for p in now.processes if p.since is not None),
        )
        gauge(
            "imweb_process_restarts",
            "Restarts of the process since the supervisor started.",
            *(({"process": p.name}, float(p.restarts)) for p in now.processes),
        )
    counter(
        "imweb_messages_stored_total",
        "Messages stored, by origin (a local sender, or a sender on another server).",
        ({"origin": "local"}, total.messages_local),
        ({"origin": "federation"}, total.messages_federation),
    )
    counter("imweb_signups_total", "Accounts on this server.", ({}, total.signups))
    counter("imweb_outbox_delivered_total", "Outbox stanzas a remote server confirmed.", ({}, total.outbox_delivered))
    counter("imweb_outbox_failed_total", "Outbox stanzas that failed for good.", ({}, total.outbox_failed))
    return "\n".join(lines) + "\n"


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics: the figures for a monitoring system, or 403 with one line saying what is needed."""
    if not allowed(request):
        return HttpResponse(REFUSAL, status=403, content_type="text/plain; charset=utf-8")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)
