"""Highest sustained rate: step the offered rate until delivery stops keeping up, for each server.

`python -m bench.ceiling [--servers imweb,prosody,reference] [--pairs 100] [--start 100] [--factor 1.5]
[--seconds 10] [--drain 5] [--max-steps 8] [--refine 2] [--budget 300]`

Each server is started once, its pairs connected once (as bench.delivery connects them), and then each step offers
a rate for --seconds on the same connections (bench.delivery's schedule, Tally and CPU accounting), once the
previous step's messages have stopped arriving and the server's CPU is back near idle (at most 90 s). A step is
sustained when nothing was lost or duplicated and p99 < 100 ms. From --start the rate is multiplied by --factor
after every sustained step until a step is not; if the first step is not sustained, the rate is divided by
--factor (or lowered to half the rate the overloaded server delivered, if that is lower) until one is; then
--refine steps try the geometric middle of the highest sustained and the lowest failed rate. A step that lost
nothing and was only a little too slow (p99 under 500 ms) is repeated once (--retries; a repeat counts as a
step): on a shared machine one slow step can be another program's load. At most --max-steps steps and --budget
seconds per server. Prints every step, then `[<server>] highest sustained rate=N msg/s (0 lost, p99 < 100 ms)`
and the ratios of imweb to Prosody and to the relay. When the load generator (one Python process on the same
machine) used most of a core during the top step, the line says so: the figure is then a bound of the generator,
not of the server.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
import uuid

from bench.common import create_people, load_average, print_settings_notes, raise_open_files_limit
from bench.delivery import Connected, connect, disconnect, offer, parse_servers, settle, starter

P99_LIMIT_MS = 100.0
MIN_RATE = 1.0
SETTLE_LIMIT_SECONDS = 90.0
RETRY_BELOW_MS = 5 * P99_LIMIT_MS  # a step slower than this was overloaded, not unlucky: no repeat
GENERATOR_BOUND = 0.9  # the load generator's share of one core above which it, not the server, may be the limit


def sustained(r: dict) -> bool:
    return r["lost"] == 0 and r["duplicated"] == 0 and r["received"] > 0 and r["p99"] < P99_LIMIT_MS


async def between_steps(conn: Connected, name: str, step: int) -> None:
    """The previous step's backlog is worked off before the next (its late pushes would load the next step)."""
    if not await settle(conn, SETTLE_LIMIT_SECONDS):
        print(
            f"[{name}] step {step}: the server was still delivering after {SETTLE_LIMIT_SECONDS:.0f} s; "
            "the next step starts anyway",
            flush=True,
        )


async def search(conn: Connected, args: argparse.Namespace) -> dict:
    name = conn.server.name
    deadline = time.monotonic() + args.budget
    rate = args.start
    best: dict | None = None
    lowest_failed: float | None = None
    stopped = ""
    retries_left, refines_left = args.retries, args.refine
    for step in range(1, args.max_steps + 1):
        if time.monotonic() > deadline:
            stopped = f"the {args.budget:.0f} s budget was spent"
            break
        open_links = sum(1 for link in [*conn.senders, *conn.receivers] if link.is_open())
        if open_links < 2 * len(conn.pairs):
            stopped = f"only {open_links} of {2 * len(conn.pairs)} connections were still open"
            break
        r = await offer(conn, rate, args.seconds, args.drain, give_up_after=args.seconds + 5, tag=f" s{step}")
        ok = sustained(r)
        retry = not ok and retries_left > 0 and r["lost"] == 0 and r["duplicated"] == 0 and r["received"] > 0
        retry = retry and r["p99"] < RETRY_BELOW_MS  # a little late, not overloaded
        print(
            f"[{name}] step {step}: offered={rate:g} msg/s sent={r['sent']} received={r['received']} "
            f"lost={r['lost']} duplicated={r['duplicated']} p99={r['p99']:.1f} ms achieved={r['achieved']:.0f} msg/s "
            f"server CPU per message={r['cpu_us']:.0f} us load generator CPU={r['generator_cpu'] * 100:.0f}% "
            f"{'sustained' if ok else 'not sustained'}{' (nothing lost: the same rate once more)' if retry else ''}",
            flush=True,
        )
        if r.get("errors"):
            print(f"[{name}] step {step}: API errors {r['errors']}", flush=True)
        if retry:  # only late, nothing lost: on a shared machine one slow step may be someone else's load
            retries_left -= 1
            await between_steps(conn, name, step)
            continue
        if ok:
            if best is None or rate > best["offered"]:
                best = r
        elif lowest_failed is None or rate < lowest_failed:
            lowest_failed = rate
        if best is None:  # nothing sustained yet: lower, at least to half of what the overloaded server delivered
            rate = rate / args.factor
            if r["achieved"] > 0:
                rate = min(rate, float(f"{max(MIN_RATE, r['achieved'] / 2):.2g}"))
            if rate < MIN_RATE:
                stopped = f"no rate down to {MIN_RATE:g} msg/s was sustained"
                break
        elif lowest_failed is None:  # nothing failed yet: higher
            rate = rate * args.factor
        else:  # bracketed: the geometric middle, --refine times
            if refines_left == 0:
                break
            refines_left -= 1
            rate = float(f"{math.sqrt(best['offered'] * lowest_failed):.3g}")
            if not best["offered"] < rate < lowest_failed:
                break
        await between_steps(conn, name, step)
    else:
        if best is not None and lowest_failed is None:
            stopped = f"the step limit ({args.max_steps}) was reached before a rate failed: the ceiling is higher"
    return {
        "server": name,
        "best": best,
        "stopped": stopped,
        "bounded_by_steps": best is not None and lowest_failed is None,
    }


def report(result: dict) -> None:
    best = result["best"]
    rate = best["offered"] if best else 0.0
    notes = []
    if best and best["generator_cpu"] >= GENERATOR_BOUND:
        notes.append(f"the load generator used {best['generator_cpu'] * 100:.0f}% of a core: it may be the limit")
    if result["stopped"]:
        notes.append(result["stopped"])
    suffix = f"; {'; '.join(notes)}" if notes else ""
    print(
        f"[{result['server']}] highest sustained rate={rate:g} msg/s (0 lost, p99 < {P99_LIMIT_MS:.0f} ms){suffix}",
        flush=True,
    )


def run(name: str, args: argparse.Namespace) -> dict:
    server = starter(name)()
    try:
        pairs, _ = create_people(server, f"c{uuid.uuid4().hex[:6]}", args.pairs)
        print_settings_notes(server)

        async def steps() -> dict:
            conn = await connect(server, pairs)
            try:
                return await search(conn, args)
            finally:
                await disconnect(conn)

        # Every step is bounded by its own schedule, and the search by --budget; this bounds the rest (connecting,
        # the waits for the servers to be quiet between steps).
        limit = args.budget + args.seconds * 2 + args.drain + 60 * (args.max_steps + 2)
        return asyncio.run(asyncio.wait_for(steps(), limit))
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="imweb,prosody,reference", help="as bench.delivery's --servers")
    parser.add_argument("--via", choices=("ws", "api"), default="ws", help="drive imweb and scaled through the API")
    parser.add_argument("--pairs", type=int, default=100, help="sender/receiver pairs (default 100)")
    parser.add_argument("--start", type=float, default=100, help="first offered rate, msg/s (default 100)")
    parser.add_argument("--factor", type=float, default=1.5, help="rate multiplier between steps (default 1.5)")
    parser.add_argument("--seconds", type=float, default=10, help="how long each step offers its rate (default 10)")
    parser.add_argument("--drain", type=float, default=5, help="seconds to wait for a step's last pushes (default 5)")
    parser.add_argument("--max-steps", type=int, default=8, help="steps per server at most (default 8)")
    parser.add_argument("--budget", type=float, default=300, help="seconds of steps per server at most (default 300)")
    parser.add_argument(
        "--retries", type=int, default=1, help="times a step with nothing lost but p99 too high is repeated (default 1)"
    )
    parser.add_argument(
        "--refine", type=int, default=2, help="steps between the last sustained and first failed rate (default 2)"
    )
    args = parser.parse_args()
    names = parse_servers(parser, args.servers, args.via)
    if not (
        1 <= args.pairs <= 5000 and MIN_RATE <= args.start <= 100_000 and 1.05 <= args.factor <= 10
        and 0 < args.seconds <= 120 and 0 < args.drain <= 60 and 1 <= args.max_steps <= 20
        and 1 <= args.budget <= 3600 and 0 <= args.retries <= 5 and 0 <= args.refine <= 5
    ):  # fmt: skip
        parser.error("bounds: 1-5000 pairs, start 1-100000 msg/s, factor 1.05-10, 1-120 s per step, drain up to 60 s, "
                     "1-20 steps, a budget of 1-3600 s, 0-5 retries and refinements")  # fmt: skip
    raise_open_files_limit()
    print(f"[machine] load average (1, 5, 15 min) at start: {load_average()}", flush=True)
    results = {}
    for name in names:
        results[name] = run(name, args)
        report(results[name])
    by_server = {r["server"]: r for r in results.values()}
    for mine_name in ("imweb", "imweb-api", "imweb-scaled", "imweb-scaled-api"):
        mine = by_server.get(mine_name)
        for other_name in ("prosody", "reference"):
            other = by_server.get(other_name)
            if not (mine and other):
                continue
            mine_rate = mine["best"]["offered"] if mine["best"] else 0.0
            other_rate = other["best"]["offered"] if other["best"] else 0.0
            ratio = mine_rate / other_rate if other_rate else math.nan
            bound = f" ({other_name}'s figure is a lower bound)" if other["bounded_by_steps"] else ""
            print(f"[ratio {mine_name}/{other_name}] highest sustained rate={ratio:.4f}x{bound}", flush=True)
    print(f"[machine] load average (1, 5, 15 min) at end: {load_average()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
