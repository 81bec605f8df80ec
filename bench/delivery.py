"""Delivery benchmark: N sender/receiver pairs over real WebSockets at an offered rate for a bounded time.

`python -m bench.delivery [--pairs 100 --rate 200 --seconds 10] [--servers imweb,reference,scaled]`

For each server it prints sent / received / lost / duplicated, delivery latency percentiles (send on the sender's
socket → push on the receiver's), the achieved rate and the servers' CPU time per delivered message; then the
ratio of imweb to the bare `websockets` relay (bench/relay.py) measured in the same run. Every server is started
by the script on loopback and stopped by PID; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
import uuid

from bench.common import (
    CONNECT_CONCURRENCY,
    Person,
    Server,
    Tally,
    cpu_seconds,
    create_people,
    open_socket,
    percentile,
    send_frame,
    start_embedded,
    start_relay,
    start_scaled,
)

STARTERS = {"imweb": start_embedded, "reference": start_relay, "scaled": start_scaled}
IDLE_SAMPLE_SECONDS = 2.0
QUIET_LIMIT_SECONDS = 60.0


async def _drain(ws, on_frame=None) -> None:
    async for frame in ws:
        if on_frame is not None:
            on_frame(frame if isinstance(frame, str) else frame.decode())


async def quiet(pids: list[int], idle_rate: float) -> None:
    """Wait until the servers' CPU use is back near idle (0.5 s samples), at most QUIET_LIMIT_SECONDS."""
    deadline = time.perf_counter() + QUIET_LIMIT_SECONDS
    while time.perf_counter() < deadline:
        began, cpu = time.perf_counter(), cpu_seconds(pids)
        await asyncio.sleep(0.5)
        if (cpu_seconds(pids) - cpu) / (time.perf_counter() - began) <= idle_rate * 1.5 + 0.05:
            return


async def load(server: Server, pairs: list[tuple[Person, Person]], rate: float, seconds: float, drain: float) -> dict:
    # The servers' idle CPU (the worker's and beat's timers, heartbeats): measured over a fixed interval before any
    # load and subtracted, so the figure per message is the cost of messages.
    pids = server.pids()
    idle_from, idle_cpu = time.perf_counter(), cpu_seconds(pids)
    await asyncio.sleep(IDLE_SAMPLE_SECONDS)
    idle_rate = (cpu_seconds(pids) - idle_cpu) / (time.perf_counter() - idle_from)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def opened(person: Person, index: int):
        async with gate:
            return await open_socket(server, person, index)

    # Senders on the first web process, receivers on the second (when there are two): pushes cross processes.
    senders = await asyncio.gather(*(opened(sender, 0) for sender, _ in pairs))
    receivers = await asyncio.gather(*(opened(receiver, 1) for _, receiver in pairs))
    tally = Tally()

    def on_receive(frame: str) -> None:
        for client_id, seq in server.parse(frame):
            tally.mark(client_id, seq)

    readers = [asyncio.ensure_future(_drain(ws)) for ws in senders]
    readers += [asyncio.ensure_future(_drain(ws, on_receive)) for ws in receivers]
    await quiet(pids, idle_rate)  # the servers' work for the new sockets (presence, first renders) is done
    per_pair = max(1, round(rate * seconds / len(pairs)))
    interval = len(pairs) / rate
    give_up_at = seconds * 3 + 10  # far behind schedule (an overloaded server): stop offering more

    async def send_pair(index: int, ws, sender: Person, receiver: Person) -> None:
        for n in range(per_pair):
            delay = start + (n + index / len(pairs)) * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif time.perf_counter() - start > give_up_at:
                return
            client_id = str(uuid.uuid4())
            tally.sent_at[client_id] = time.perf_counter()
            tally.sent += 1
            await ws.send(send_frame(sender, receiver, f"bench {index} {n}", client_id))

    cpu_before = cpu_seconds(pids)
    start = time.perf_counter() + 0.1
    await asyncio.gather(*(send_pair(i, ws, *pair) for i, (ws, pair) in enumerate(zip(senders, pairs, strict=True))))
    sending = time.perf_counter() - start
    tally.sent_done = True
    if tally.received >= tally.sent:
        tally.all_received.set()
    try:
        await asyncio.wait_for(tally.all_received.wait(), drain)
    except TimeoutError:
        pass
    cpu = cpu_seconds(pids) - cpu_before - idle_rate * (time.perf_counter() - start)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*(ws.close() for ws in [*senders, *receivers]), return_exceptions=True)
    await asyncio.gather(*readers, return_exceptions=True)
    latencies = sorted(tally.latencies)
    span = (tally.last_receive - start) if tally.received else math.nan
    return {
        "server": server.name,
        "pairs": len(pairs),
        "offered": rate,
        "seconds": sending,
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
    }


def report(r: dict) -> None:
    print(f"[{r['server']}] pairs={r['pairs']} offered={r['offered']:g} msg/s, sending took {r['seconds']:.1f} s")
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


STORED = """
from chat.models import Message
print("BENCH-STORED", Message.objects.filter(sender_jid__startswith={prefix!r}, body__startswith="bench ").count())
"""


def run(name: str, args: argparse.Namespace) -> dict:
    server = STARTERS[name]()
    try:
        prefix = f"d{uuid.uuid4().hex[:6]}"
        pairs, _ = create_people(server, prefix, args.pairs)
        result = asyncio.run(asyncio.wait_for(load(server, pairs, args.rate, args.seconds, args.drain), args.timeout))
        if server.manage is not None:  # what the database holds: late pushes are not lost messages
            output = server.manage(STORED.format(prefix=prefix))
            result["stored"] = int(output.split("BENCH-STORED", 1)[1].split()[0])
        return result
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="sender/receiver pairs (default 100)")
    parser.add_argument("--rate", type=float, default=200, help="offered messages per second, all pairs (default 200)")
    parser.add_argument("--seconds", type=float, default=10, help="how long to offer that rate (default 10)")
    parser.add_argument("--drain", type=float, default=10, help="seconds to wait for the last pushes (default 10)")
    parser.add_argument("--servers", default="imweb,reference", help="comma-separated: imweb, reference, scaled")
    args = parser.parse_args()
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = [name for name in names if name not in STARTERS]
    if unknown or not names:
        parser.error(f"--servers takes {', '.join(STARTERS)}; not {', '.join(unknown) or 'nothing'}")
    if not (1 <= args.pairs <= 5000 and 0 < args.rate <= 100_000 and 0 < args.seconds <= 600 and 0 < args.drain <= 120):
        parser.error("bounds: 1-5000 pairs, rate up to 100000 msg/s, up to 600 s, drain up to 120 s")
    args.timeout = args.seconds * 3 + args.drain + 120  # the whole load phase, connecting included
    results = {}
    for name in names:
        results[name] = run(name, args)
        report(results[name])
    reference = results.get("reference")
    for name in ("imweb", "scaled"):
        mine = results.get(name)
        if mine and reference and reference["achieved"] and reference["cpu_us"]:
            print(
                f"[ratio {mine['server']}/reference] achieved={mine['achieved'] / reference['achieved']:.2f}x "
                f"p99={mine['p99'] / reference['p99']:.1f}x CPU per message={mine['cpu_us'] / reference['cpu_us']:.1f}x"
            )
    return 0 if all(r["lost"] == 0 and r["duplicated"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
