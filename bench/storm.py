"""Connect storm: every user connects at the same moment, as after a server restart or a network blip, and the
benchmark measures how long until every connection is ready.

`python -m bench.storm [--users 2000] [--servers imweb,prosody,reference] [--timeout 120]`

All connections are opened at once (no concurrency gate; the whole storm is bounded by --timeout), each one
logged in: imweb with a session cookie on /ws/ (ready at the first frame the server sends on the new socket, the
contact list), Prosody with a full c2s login (SASL PLAIN, resource binding, initial presence; ready when Prosody
reflects the presence, i.e. has handled it), the relay with ?user= (ready once the WebSocket is open). It prints,
per server, `[<server>] storm users=N ready=K failed=F in S s (R/s) server CPU per socket=.. ms`, where S is the
time until every connection was ready or had failed, R = K / S, and the CPU is all the server's processes' over the
storm (idle subtracted), per ready connection; then what the failures were and how long connections waited.
Every server is started by the script on loopback and stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections import Counter

from bench.common import (
    Person,
    Server,
    cpu_seconds,
    create_people,
    load_average,
    open_files_limit,
    percentile,
    print_settings_notes,
    raise_open_files_limit,
    start_embedded,
    start_prosody,
    start_relay,
)
from bench.idle import web_pids
from bench.links import Link, open_link

STARTERS = {"imweb": start_embedded, "prosody": start_prosody, "reference": start_relay}
IDLE_SAMPLE_SECONDS = 2.0


def failure_kind(error: BaseException) -> str:
    """What a failed connection met: the HTTP status a handshake was refused with, or the error (and its cause)."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    cause = error.__cause__ or error.__context__
    kind = type(error).__name__
    return f"{kind} ({type(cause).__name__})" if cause is not None and not isinstance(error, TimeoutError) else kind


async def storm(server: Server, people: list[Person], limit_seconds: float) -> dict:
    pids = server.pids()
    idle_from, idle_cpu = time.perf_counter(), cpu_seconds(pids)
    await asyncio.sleep(IDLE_SAMPLE_SECONDS)
    idle_rate = (cpu_seconds(pids) - idle_cpu) / (time.perf_counter() - idle_from)
    failures: Counter = Counter()
    waits: list[float] = []
    finished_at: list[float] = []

    async def one(person: Person) -> Link | None:
        try:
            link = await open_link(server, person, first_frame=True, open_seconds=limit_seconds)
        except Exception as error:  # noqa: BLE001  (every way a connection fails is a figure to print)
            failures[failure_kind(error)] += 1
            finished_at.append(time.perf_counter())
            return None
        now = time.perf_counter()
        waits.append(now - started)
        finished_at.append(now)
        return link

    cpu_before = cpu_seconds(pids)
    started = time.perf_counter()
    tasks = [asyncio.ensure_future(one(person)) for person in people]
    done, pending = await asyncio.wait(tasks, timeout=limit_seconds)
    ended = time.perf_counter()
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if pending:
        failures["not ready within the timeout"] += len(pending)
    seconds = (max(finished_at) if finished_at and not pending else ended) - started
    cpu = max(0.0, cpu_seconds(pids) - cpu_before - idle_rate * (ended - started))  # see bench.delivery
    links = [task.result() for task in done if task.result() is not None]
    still_open = sum(1 for link in links if link.is_open())
    await asyncio.wait_for(asyncio.gather(*(link.close() for link in links), return_exceptions=True), 120)
    waits.sort()
    return {
        "server": server.name,
        "users": len(people),
        "ready": len(links),
        "open": still_open,
        "failed": len(people) - len(links),
        "seconds": seconds,
        "rate": len(links) / seconds if seconds > 0 else 0.0,
        "cpu_ms": cpu / len(links) * 1000 if links else float("nan"),
        "cpu_s": cpu,
        "failures": dict(failures),
        "p50": percentile(waits, 0.50),
        "p99": percentile(waits, 0.99),
        "max": waits[-1] if waits else float("nan"),
    }


def report(r: dict) -> None:
    print(
        f"[{r['server']}] storm users={r['users']} ready={r['ready']} failed={r['failed']} in {r['seconds']:.2f} s "
        f"({r['rate']:.0f}/s) server CPU per socket={r['cpu_ms']:.2f} ms",
        flush=True,
    )
    print(
        f"[{r['server']}] storm ready after: p50={r['p50']:.2f} s p99={r['p99']:.2f} s max={r['max']:.2f} s; "
        f"still open at the end: {r['open']}; server CPU over the storm={r['cpu_s']:.1f} s",
        flush=True,
    )
    if r["failures"]:
        detail = ", ".join(f"{kind}: {count}" for kind, count in sorted(r["failures"].items()))
        print(f"[{r['server']}] storm failures: {detail}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000, help="users connecting at once (default 2000)")
    parser.add_argument("--servers", default="imweb,prosody,reference", help="imweb, prosody, reference")
    parser.add_argument("--timeout", type=float, default=120, help="bound on the whole storm, seconds (default 120)")
    args = parser.parse_args()
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    if not names or any(name not in STARTERS for name in names):
        parser.error(f"--servers takes {', '.join(STARTERS)}")
    if not (1 <= args.users <= 15_000 and 1 <= args.timeout <= 600):
        parser.error("bounds: 1-15000 users, a timeout of 1-600 s")
    limit = raise_open_files_limit()
    print(f"[machine] load average (1, 5, 15 min) at start: {load_average()}", flush=True)
    print(f"[storm] open files limit of the load generator: {limit}", flush=True)
    results = {}
    for name in names:
        server = STARTERS[name]()
        try:
            _, people = create_people(server, f"t{uuid.uuid4().hex[:6]}", 0, idle=args.users)
            print_settings_notes(server)
            limits = [open_files_limit(pid) for pid in web_pids(server)]
            print(f"[{server.name}] open files limit of the server: {', '.join(map(str, limits))}", flush=True)
            results[name] = asyncio.run(storm(server, people, args.timeout))
        finally:
            server.stop()
        report(results[name])
    for other in ("prosody", "reference"):
        if "imweb" in results and other in results:
            mine, theirs = results["imweb"], results[other]
            rate = mine["rate"] / theirs["rate"] if theirs["rate"] else float("nan")
            cpu = mine["cpu_ms"] / theirs["cpu_ms"] if theirs["cpu_ms"] and theirs["cpu_ms"] > 0 else float("nan")
            print(f"[ratio imweb/{other}] storm ready per second={rate:.2f}x server CPU per socket={cpu:.1f}x")
    print(f"[machine] load average (1, 5, 15 min) at end: {load_average()}", flush=True)
    return 0 if all(r["failed"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
