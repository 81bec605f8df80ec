"""The side-by-side table of a `make bench` run: every imweb figure beside Prosody's and the relay's, with the ratios.

`python -m bench.summary DIR` reads the outputs bench.suite saved in DIR (delivery.txt, delivery-api.txt,
ceiling.txt, storm.txt, idle.txt, scaled.txt, catchup.txt; a missing or failed step leaves its rows empty) and
prints one markdown table. Ratios are imweb / other: above 1 is better for rates, worse for latencies, CPU and memory.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

NUM = r"(-?[0-9.]+|nan|inf)"
PATTERNS = {
    "sent": re.compile(rf"^\[([\w-]+)\] sent={NUM} received={NUM} lost={NUM} duplicated={NUM}", re.M),
    "latency": re.compile(rf"^\[([\w-]+)\] latency ms: p50={NUM} p95={NUM} p99={NUM} max={NUM}", re.M),
    "achieved": re.compile(rf"^\[([\w-]+)\] achieved={NUM} msg/s server CPU per message={NUM} us", re.M),
    "errors": re.compile(r"^\[([\w-]+)\] errors=(\d+) \(status: ([^)]*)\)", re.M),
    "ceiling": re.compile(rf"^\[([\w-]+)\] highest sustained rate={NUM} msg/s", re.M),
    "storm": re.compile(
        rf"^\[([\w-]+)\] storm users={NUM} ready={NUM} failed={NUM} in {NUM} s \({NUM}/s\) "
        rf"server CPU per socket={NUM} ms",
        re.M,
    ),
    "idle": re.compile(rf"^\[([\w-]+)\] idle users={NUM} open={NUM} .* per user={NUM} KiB", re.M),
    "catchup": re.compile(
        rf"^\[([\w-]+)\] catch-up of {NUM} missed messages: received={NUM} duplicated={NUM} "
        rf"seconds median={NUM} max={NUM}",
        re.M,
    ),
    "load": re.compile(r"^\[machine\] load average \(1, 5, 15 min\) at (start|end): ([0-9.]+)", re.M),
}


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse(text: str) -> dict[str, dict[str, float | str]]:
    """server name → figure name → value, from one benchmark's printed lines."""
    figures: dict[str, dict[str, float | str]] = {}
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            if kind == "load":
                figures.setdefault("machine", {})[f"load_{match.group(1)}"] = _float(match.group(2))
                continue
            server, values = match.group(1), match.groups()[1:]
            row = figures.setdefault(server, {})
            if kind == "sent":
                row.update(zip(("sent", "received", "lost", "duplicated"), map(_float, values), strict=True))
            elif kind == "latency":
                row.update(zip(("p50", "p95", "p99", "max"), map(_float, values), strict=True))
            elif kind == "achieved":
                row.update(achieved=_float(values[0]), cpu_us=_float(values[1]))
            elif kind == "errors":
                row.update(errors=_float(values[0]), error_detail=values[1])
            elif kind == "ceiling":
                row["ceiling"] = _float(values[0])
            elif kind == "storm":
                keys = ("users", "ready", "failed", "seconds", "rate", "cpu_ms")
                row.update((f"storm_{k}", v) for k, v in zip(keys, map(_float, values), strict=True))
            elif kind == "catchup":
                keys = ("missed", "received", "duplicated", "seconds", "max_seconds")
                row.update((f"catchup_{k}", v) for k, v in zip(keys, map(_float, values), strict=True))
            elif kind == "idle":
                row.update(idle_users=_float(values[0]), idle_open=_float(values[1]), kib_per_user=_float(values[2]))
    return figures


def read(directory: Path, name: str) -> dict[str, dict[str, float | str]]:
    path = directory / name
    return parse(path.read_text(errors="replace")) if path.exists() else {}


def fmt(value: float | str | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if math.isnan(value):
        return "nan"
    if value.is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2g}" if abs(value) < 1 else f"{value:.1f}"


def ratio(mine: float | str | None, other: float | str | None) -> str:
    if not isinstance(mine, float) or not isinstance(other, float) or math.isnan(mine) or math.isnan(other):
        return "n/a"
    if other == 0:
        return "n/a"
    value = mine / other
    if abs(value) >= 100:
        return f"{value:,.0f}x"
    return f"{value:.3f}x" if abs(value) < 0.1 else f"{value:.2f}x"


def table(directory: Path) -> str:
    delivery = read(directory, "delivery.txt")
    api = read(directory, "delivery-api.txt")
    ceiling = read(directory, "ceiling.txt")
    storm = read(directory, "storm.txt")
    idle = read(directory, "idle.txt")
    scaled = read(directory, "scaled.txt")
    catchup = read(directory, "catchup.txt")

    def pick(source: dict, server: str, key: str) -> float | str | None:
        return source.get(server, {}).get(key)

    rows: list[tuple[str, float | str | None, float | str | None, float | str | None]] = []
    # Every row is (label, imweb, Prosody, relay); Prosody's and the relay's come from the same step as imweb's
    # when it measured them, else from the delivery step (same load, same machine, minutes apart).

    def add(label: str, mine_source: dict, mine: str, key: str, others: dict | None = None) -> None:
        others = others if others is not None else mine_source
        prosody = pick(others, "prosody", key) if "prosody" in others else pick(delivery, "prosody", key)
        relay = pick(others, "reference", key) if "reference" in others else pick(delivery, "reference", key)
        rows.append((label, pick(mine_source, mine, key), prosody, relay))

    for title, source, name in (
        ("delivery", delivery, "imweb"),
        ("delivery over the API", api, "imweb-api"),
        ("delivery, scaled mode", scaled, "imweb-scaled"),
    ):
        if name not in source and title != "delivery":
            continue
        counts = []
        for server in (name, "prosody", "reference"):
            row = (source if server == name or server in source else delivery).get(server, {})
            keys = ("sent", "received", "lost", "duplicated")
            counts.append(" / ".join(fmt(row.get(k)) for k in keys) if all(k in row for k in keys) else None)
        rows.append((f"{title}: sent / received / lost / duplicated", *counts))
        for label, key in (
            ("achieved msg/s", "achieved"),
            ("p50 ms", "p50"),
            ("p99 ms", "p99"),
            ("server CPU per message, us", "cpu_us"),
        ):
            add(f"{title}: {label}", source, name, key)
        if name == "imweb-api":
            rows.append((f"{title}: HTTP errors", pick(api, name, "errors"), None, None))
    add("highest sustained rate, msg/s (0 lost, p99 < 100 ms)", ceiling, "imweb", "ceiling", ceiling)
    for label, key in (
        ("connect storm: ready", "storm_ready"),
        ("connect storm: failed", "storm_failed"),
        ("connect storm: seconds until all ready or failed", "storm_seconds"),
        ("connect storm: ready per second", "storm_rate"),
        ("connect storm: server CPU per socket, ms", "storm_cpu_ms"),
    ):
        add(label, storm, "imweb", key, storm)
    add("idle memory per connected user, KiB", idle, "imweb", "kib_per_user", idle)
    # Catch-up has no yardstick: the benchmark's Prosody keeps no offline messages (bench/xmpp.py).
    for way, label in (("imweb-page", "a tab's socket"), ("imweb-api", "the API stream")):
        if way in catchup:
            missed = fmt(pick(catchup, way, "catchup_missed"))
            rows.append((f"catch-up of {missed} missed messages over {label}: seconds (median)",
                         pick(catchup, way, "catchup_seconds"), None, None))  # fmt: skip

    lines = [
        "| figure | imweb | Prosody 0.12 | relay | imweb / Prosody | imweb / relay |",
        "|---|---|---|---|---|---|",
    ]
    for label, mine, prosody, relay in rows:
        lines.append(
            f"| {label} | {fmt(mine)} | {fmt(prosody)} | {fmt(relay)} | {ratio(mine, prosody)} | {ratio(mine, relay)} |"
        )
    loads = [
        value
        for source in (delivery, api, ceiling, storm, idle, scaled, catchup)
        for key, value in source.get("machine", {}).items()
        if isinstance(value, float)
    ]
    if loads:
        lines.append("")
        lines.append(f"Load average (1 min) at the start and end of the steps: {min(loads):.1f} to {max(loads):.1f}.")
    errors = pick(api, "imweb-api", "error_detail")
    if errors and errors != "none":
        lines.append(f"API errors by status: {errors}.")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m bench.summary DIR", file=sys.stderr)
        return 2
    print(table(Path(sys.argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
