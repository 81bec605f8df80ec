"""Idle-user memory benchmark: open K logged-in connections that then stay quiet, and measure how much the process
holding them grew (RSS before/after), for imweb (one Daphne), Prosody 0.12 (c2s sessions, logged in up to their
initial presence) and the bare `websockets` relay as the reference.

`python -m bench.idle [--users 1000] [--servers imweb,prosody,reference]`

Prints the process's RSS before and after and the growth per connected user, then the ratios of imweb to Prosody
and to the relay. Every server is started by the script on loopback and stopped by PID; connecting is bounded in
count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid

import psutil

from bench.common import (
    CONNECT_CONCURRENCY,
    XMPP_CONNECT_CONCURRENCY,
    Person,
    Server,
    create_people,
    load_average,
    raise_open_files_limit,
    rss_bytes,
    start_embedded,
    start_prosody,
    start_relay,
)
from bench.links import open_link

STARTERS = {"imweb": start_embedded, "prosody": start_prosody, "reference": start_relay}
SETTLE_LIMIT_SECONDS = 15.0


async def settled_rss(pids: list[int]) -> int:
    """The web process's RSS once it stops moving (two samples 0.5 s apart within 1%), or after 15 s."""
    deadline = time.monotonic() + SETTLE_LIMIT_SECONDS
    previous = rss_bytes(pids)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        current = rss_bytes(pids)
        if abs(current - previous) <= previous * 0.01:
            return current
        previous = current
    return previous


def web_pids(server: Server) -> list[int]:
    """The process that holds the sockets: Daphne for imweb, Prosody itself, the relay itself for the reference."""
    if server.kind == "xmpp":
        return server.pids()
    found = []
    for pid in server.pids():
        try:
            cmdline = " ".join(psutil.Process(pid).cmdline())
        except psutil.NoSuchProcess:
            continue
        if "daphne" in cmdline or "bench.relay" in cmdline:
            found.append(pid)
    return found


async def hold(server: Server, people: list[Person], connect_seconds: float) -> dict:
    pids = web_pids(server)
    assert pids, f"no web process found for {server.name}"
    before = rss_bytes(pids)
    gate = asyncio.Semaphore(XMPP_CONNECT_CONCURRENCY if server.kind == "xmpp" else CONNECT_CONCURRENCY)

    async def connected(person: Person):
        async with gate:
            # imweb answers every new socket with the person's contact list; Prosody reflects the initial presence.
            return await open_link(server, person, first_frame=True)

    started = time.perf_counter()
    links = await asyncio.wait_for(asyncio.gather(*(connected(p) for p in people)), connect_seconds)
    opening = time.perf_counter() - started
    after = await settled_rss(pids)
    still_open = sum(1 for link in links if link.is_open())
    await asyncio.wait_for(asyncio.gather(*(link.close() for link in links), return_exceptions=True), 120)
    return {
        "server": server.name,
        "users": len(people),
        "open": still_open,
        "before": before,
        "after": after,
        "per_user": (after - before) / len(people),
        "accept_rate": len(people) / opening,
    }


def report(r: dict) -> None:
    print(
        f"[{r['server']}] idle users={r['users']} open={r['open']} web RSS before={r['before'] / 2**20:.1f} MiB "
        f"after={r['after'] / 2**20:.1f} MiB per user={r['per_user'] / 1024:.1f} KiB "
        f"(connected at {r['accept_rate']:.0f}/s)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000, help="idle connected users (default 1000)")
    parser.add_argument("--servers", default="imweb,reference", help="comma-separated: imweb, prosody, reference")
    args = parser.parse_args()
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    if not names or any(name not in STARTERS for name in names):
        parser.error(f"--servers takes {', '.join(STARTERS)}")
    if not 1 <= args.users <= 15_000:
        parser.error("--users must be 1-15000")
    raise_open_files_limit()
    print(f"[machine] load average (1, 5, 15 min) at start: {load_average()}", flush=True)
    results = {}
    for name in names:
        server = STARTERS[name]()
        try:
            _, people = create_people(server, f"i{uuid.uuid4().hex[:6]}", 0, idle=args.users)
            results[name] = asyncio.run(hold(server, people, connect_seconds=60 + args.users / 10))
        finally:
            server.stop()
        report(results[name])
    for other in ("prosody", "reference"):
        if "imweb" in results and other in results:
            theirs = results[other]["per_user"]
            ratio = results["imweb"]["per_user"] / theirs if theirs > 0 else float("nan")
            print(f"[ratio imweb/{other}] memory per idle user={ratio:.1f}x")
    print(f"[machine] load average (1, 5, 15 min) at end: {load_average()}", flush=True)
    return 0 if all(r["open"] == r["users"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
