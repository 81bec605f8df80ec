"""Delivery benchmark: N sender/receiver pairs over real connections at an offered rate for a bounded time.

`python -m bench.delivery [--pairs 100 --rate 200 --seconds 10] [--servers imweb,api,prosody,reference,scaled]`

For each server it prints sent / received / lost / duplicated, delivery latency percentiles (send on the sender's
connection → push on the receiver's), the achieved rate and the servers' CPU time per delivered message; then the
ratio of each imweb server to Prosody 0.12 (bench/xmpp.py) and to the bare `websockets` relay (bench/relay.py)
measured in the same run. `api` is the embedded imweb driven through its JSON API (POST /api/v1/messages, the
/api/v1/stream WebSocket); `--via api` drives imweb and scaled that way. Every server is started by the script on
loopback and stopped by PID; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
import uuid
from dataclasses import dataclass, field

from bench.common import (
    CONNECT_CONCURRENCY,
    XMPP_CONNECT_CONCURRENCY,
    Person,
    Server,
    Tally,
    cpu_seconds,
    create_people,
    load_average,
    percentile,
    print_settings_notes,
    raise_open_files_limit,
    start_api,
    start_embedded,
    start_prosody,
    start_relay,
    start_scaled,
)
from bench.links import ErrorCount, Link, open_link

STARTERS = {
    "imweb": start_embedded,
    "api": start_api,
    "prosody": start_prosody,
    "reference": start_relay,
    "scaled": start_scaled,
}
VIA_API = {"imweb": "api", "scaled": "scaled-api"}
IDLE_SAMPLE_SECONDS = 2.0
QUIET_LIMIT_SECONDS = 60.0
IMWEB_SERVERS = ("imweb", "imweb-api", "imweb-scaled", "imweb-scaled-api")
YARDSTICKS = (("prosody", "prosody"), ("reference", "reference"))


def starter(name: str):
    if name == "scaled-api":
        return lambda: start_scaled(kind="api")
    return STARTERS[name]


async def quiet(pids: list[int], idle_rate: float) -> None:
    """Wait until the servers' CPU use is back near idle (0.5 s samples), at most QUIET_LIMIT_SECONDS."""
    deadline = time.perf_counter() + QUIET_LIMIT_SECONDS
    while time.perf_counter() < deadline:
        began, cpu = time.perf_counter(), cpu_seconds(pids)
        await asyncio.sleep(0.5)
        if (cpu_seconds(pids) - cpu) / (time.perf_counter() - began) <= idle_rate * 1.5 + 0.05:
            return


@dataclass
class Connected:
    """Every pair's two links, open, with readers running; each load step gets a fresh Tally."""

    server: Server
    pairs: list[tuple[Person, Person]]
    pids: list[int]
    idle_rate: float
    senders: list[Link] = field(default_factory=list)
    receivers: list[Link] = field(default_factory=list)
    readers: list[asyncio.Future] = field(default_factory=list)
    errors: ErrorCount = field(default_factory=ErrorCount)  # the API's answers other than 200/201, by status
    tally: Tally | None = None
    last_arrival: float = 0.0  # when a receiver last got a message, of this step or an earlier one

    def on_message(self, client_id: str | None, body: str | None, seq: int) -> None:
        self.last_arrival = time.perf_counter()
        if self.tally is not None:
            self.tally.mark(client_id, seq, body)


async def connect(server: Server, pairs: list[tuple[Person, Person]]) -> Connected:
    # The servers' idle CPU (the worker's and beat's timers, heartbeats): measured over a fixed interval before any
    # load and subtracted, so the figure per message is the cost of messages.
    pids = server.pids()
    idle_from, idle_cpu = time.perf_counter(), cpu_seconds(pids)
    await asyncio.sleep(IDLE_SAMPLE_SECONDS)
    idle_rate = (cpu_seconds(pids) - idle_cpu) / (time.perf_counter() - idle_from)
    conn = Connected(server, pairs, pids, idle_rate)
    gate = asyncio.Semaphore(XMPP_CONNECT_CONCURRENCY if server.kind == "xmpp" else CONNECT_CONCURRENCY)

    async def opened(person: Person, index: int, role: str) -> Link:
        async with gate:
            return await open_link(server, person, index, role=role, errors=conn.errors)

    # Senders on the first web process, receivers on the second (when there are two): pushes cross processes.
    try:
        conn.senders = list(await asyncio.gather(*(opened(sender, 0, "sender") for sender, _ in pairs)))
        conn.receivers = list(await asyncio.gather(*(opened(receiver, 1, "receiver") for _, receiver in pairs)))
    except BaseException:
        await disconnect(conn)
        raise
    conn.readers = [asyncio.ensure_future(link.read(None)) for link in conn.senders]
    conn.readers += [asyncio.ensure_future(link.read(conn.on_message)) for link in conn.receivers]
    await quiet(pids, idle_rate)  # the servers' work for the new sockets (presence, first renders) is done
    return conn


async def settle(conn: Connected, limit: float, silence: float = 2.0) -> bool:
    """Wait until the receivers have had no message for `silence` seconds and the servers' CPU is back near idle:
    an overloaded step's backlog is worked off before the next step. False if that took longer than `limit`."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        if time.perf_counter() - conn.last_arrival >= silence:
            await quiet(conn.pids, conn.idle_rate)
            if time.perf_counter() - conn.last_arrival >= silence:
                return True
        await asyncio.sleep(0.5)
    return False


async def disconnect(conn: Connected) -> None:
    for reader in conn.readers:
        reader.cancel()
    links = [*conn.senders, *conn.receivers]
    await asyncio.wait_for(asyncio.gather(*(link.close() for link in links), return_exceptions=True), 60)
    await asyncio.gather(*conn.readers, return_exceptions=True)


async def offer(
    conn: Connected, rate: float, seconds: float, drain: float, *, give_up_after: float | None = None, tag: str = ""
) -> dict:
    """One load step on open links: `rate` msg/s in all for `seconds`, then up to `drain` s for the last pushes.
    Bodies are "bench <pair> <n>" + tag (a tag tells one step's messages from another's on the same server)."""
    server, pairs = conn.server, conn.pairs
    tally = Tally()
    conn.tally = tally
    conn.errors.clear()
    per_pair = max(1, round(rate * seconds / len(pairs)))
    interval = len(pairs) / rate
    # Far behind schedule (an overloaded server): stop offering more.
    give_up_at = seconds * 3 + 10 if give_up_after is None else give_up_after

    async def send_pair(index: int, link: Link, receiver: Person) -> None:
        for n in range(per_pair):
            delay = start + (n + index / len(pairs)) * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif time.perf_counter() - start > give_up_at:
                return
            client_id = str(uuid.uuid4())
            body = f"bench {index} {n}{tag}"
            tally.expect(client_id, body)
            await link.send(receiver, body, client_id)

    own_cpu_before = time.process_time()
    cpu_before = cpu_seconds(conn.pids)
    start = time.perf_counter() + 0.1
    sends = (
        send_pair(i, link, receiver) for i, (link, (_, receiver)) in enumerate(zip(conn.senders, pairs, strict=True))
    )
    await asyncio.gather(*sends)
    sending = time.perf_counter() - start
    tally.sent_done = True
    if tally.received >= tally.sent:
        tally.all_received.set()
    try:
        await asyncio.wait_for(tally.all_received.wait(), drain)
    except TimeoutError:
        pass
    elapsed = time.perf_counter() - start
    # The idle rate is a short sample: on a busy machine it can exceed what the run used, and a negative CPU time
    # is no figure (its ratio would be negative too), so it is at least zero.
    cpu = max(0.0, cpu_seconds(conn.pids) - cpu_before - conn.idle_rate * elapsed)
    conn.tally = None
    latencies = sorted(tally.latencies)
    span = (tally.last_receive - start) if tally.received else math.nan
    return {
        "server": server.name,
        "pairs": len(pairs),
        "offered": rate,
        "seconds": sending,
        "scheduled": per_pair * len(pairs),
        "sent": tally.sent,
        "received": tally.received,
        "lost": tally.sent - tally.received,
        "duplicated": tally.duplicated,
        "p50": percentile(latencies, 0.50) * 1000,
        "p95": percentile(latencies, 0.95) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "max": (latencies[-1] * 1000) if latencies else math.nan,
        "achieved": tally.received / span if tally.received else 0.0,
        "cpu_us": cpu / tally.received * 1e6 if tally.received else math.nan,
        "errors": dict(conn.errors),
        "error_samples": dict(conn.errors.samples),
        # The load generator's own CPU over the step, as a share of one core: near 100% it, not the server, is
        # the limit (it runs on one core of the same machine).
        "generator_cpu": (time.process_time() - own_cpu_before) / elapsed if elapsed > 0 else math.nan,
    }


async def load(server: Server, pairs: list[tuple[Person, Person]], rate: float, seconds: float, drain: float) -> dict:
    conn = await connect(server, pairs)
    try:
        return await offer(conn, rate, seconds, drain)
    finally:
        await disconnect(conn)


def format_errors(errors: dict) -> str:
    total = sum(errors.values())
    detail = ", ".join(f"{status}: {count}" for status, count in sorted(errors.items())) or "none"
    return f"errors={total} (status: {detail})"


def report(r: dict) -> None:
    print(f"[{r['server']}] pairs={r['pairs']} offered={r['offered']:g} msg/s, sending took {r['seconds']:.1f} s")
    if r["sent"] < r["scheduled"]:
        # Senders that wait for each answer (the API's) or a full socket fell behind the schedule and gave up.
        print(f"[{r['server']}] only {r['sent']} of {r['scheduled']} scheduled sends were made (senders fell behind)")
    stored = f" stored={r['stored']}" if "stored" in r else ""
    print(
        f"[{r['server']}] sent={r['sent']} received={r['received']} lost={r['lost']} duplicated={r['duplicated']}"
        f"{stored}"
    )
    print(f"[{r['server']}] latency ms: p50={r['p50']:.1f} p95={r['p95']:.1f} p99={r['p99']:.1f} max={r['max']:.1f}")
    print(
        f"[{r['server']}] achieved={r['achieved']:.0f} msg/s "
        f"server CPU per message={r['cpu_us']:.0f} us (idle subtracted)",
        flush=True,
    )
    if r["server"].endswith("-api"):
        print(f"[{r['server']}] {format_errors(r['errors'])}")
        for kind, sample in sorted(r.get("error_samples", {}).items()):
            print(f"[{r['server']}] first answer with status {kind}: {sample}")
    print(f"[{r['server']}] load generator CPU={r['generator_cpu'] * 100:.0f}% of one core", flush=True)


def ratio(mine: float, other: float) -> float:
    """mine / other; nan when other is 0 or unknown (a CPU figure below the clock's 10 ms tick, a step with no
    delivery)."""
    if not other or math.isnan(other) or math.isnan(mine):
        return math.nan
    return mine / other


def print_ratios(results: dict[str, dict], key: str = "") -> None:
    """`[ratio <imweb server>/<prosody|reference>] achieved=..x p99=..x CPU per message=..x` for every pair."""
    by_server = {r["server"]: r for r in results.values()}
    for mine_name in IMWEB_SERVERS:
        mine = by_server.get(mine_name)
        for label, other_name in YARDSTICKS:
            other = by_server.get(other_name)
            if not (mine and other):
                continue
            print(
                f"[ratio {mine_name}/{label}] achieved={ratio(mine['achieved'], other['achieved']):.2f}x "
                f"p99={ratio(mine['p99'], other['p99']):.1f}x "
                f"CPU per message={ratio(mine['cpu_us'], other['cpu_us']):.1f}x",
                flush=True,
            )


STORED = """
from chat.models import Message
print("BENCH-STORED", Message.objects.filter(sender_jid__startswith={prefix!r}, body__startswith="bench ").count())
"""


def run(name: str, args: argparse.Namespace) -> dict:
    server = starter(name)()
    try:
        prefix = f"d{uuid.uuid4().hex[:6]}"
        pairs, _ = create_people(server, prefix, args.pairs)
        print_settings_notes(server)
        result = asyncio.run(asyncio.wait_for(load(server, pairs, args.rate, args.seconds, args.drain), args.timeout))
        if server.manage is not None:  # what the database holds: late pushes are not lost messages
            output = server.manage(STORED.format(prefix=prefix))
            result["stored"] = int(output.split("BENCH-STORED", 1)[1].split()[0])
        return result
    finally:
        server.stop()


def parse_servers(parser: argparse.ArgumentParser, text: str, via: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STARTERS]
    if unknown or not names:
        parser.error(f"--servers takes {', '.join(STARTERS)}; not {', '.join(unknown) or 'nothing'}")
    if via == "api":
        names = [VIA_API.get(name, name) for name in names]
    return list(dict.fromkeys(names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="sender/receiver pairs (default 100)")
    parser.add_argument("--rate", type=float, default=200, help="offered messages per second, all pairs (default 200)")
    parser.add_argument("--seconds", type=float, default=10, help="how long to offer that rate (default 10)")
    parser.add_argument("--drain", type=float, default=10, help="seconds to wait for the last pushes (default 10)")
    parser.add_argument(
        "--servers", default="imweb,reference", help=f"comma-separated: {', '.join(STARTERS)} (default imweb,reference)"
    )
    parser.add_argument("--via", choices=("ws", "api"), default="ws", help="drive imweb and scaled through the API")
    args = parser.parse_args()
    names = parse_servers(parser, args.servers, args.via)
    if not (1 <= args.pairs <= 5000 and 0 < args.rate <= 100_000 and 0 < args.seconds <= 600 and 0 < args.drain <= 120):
        parser.error("bounds: 1-5000 pairs, rate up to 100000 msg/s, up to 600 s, drain up to 120 s")
    args.timeout = args.seconds * 3 + args.drain + 120  # the whole load phase, connecting included
    raise_open_files_limit()
    print(f"[machine] load average (1, 5, 15 min) at start: {load_average()}", flush=True)
    results = {}
    for name in names:
        results[name] = run(name, args)
        report(results[name])
    print_ratios(results)
    print(f"[machine] load average (1, 5, 15 min) at end: {load_average()}", flush=True)
    return 0 if all(r["lost"] == 0 and r["duplicated"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
