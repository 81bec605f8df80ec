"""`make bench`: every benchmark in turn, imweb beside Prosody 0.12 and the relay, then one side-by-side table.

`python -m bench.suite [--out DIR] [--pairs 100] [--rate 500] [--seconds 20] [--storm-users 2000]
[--idle-users 1000] [--ceiling "--start 100 --factor 2 --seconds 10 --max-steps 12 --budget 240"] [--minutes 25]`

Steps, in order, each a `python -m bench.<script>` process whose output is shown and saved in DIR:

1. delivery.txt: bench.delivery for imweb, prosody and reference at the design load (100 pairs, 500 msg/s, 20 s);
2. delivery-api.txt: the same load through imweb's JSON API (its ratios use step 1's Prosody and relay);
3. ceiling.txt: bench.ceiling for imweb, prosody and reference;
4. storm.txt: bench.storm for imweb, prosody and reference (2,000 users);
5. idle.txt: bench.idle for imweb, prosody and reference (1,000 users);
6. scaled.txt: bench.delivery --servers scaled at the design load;
7. catchup.txt: bench.catchup (1,000 missed messages, on the page socket and the API stream).

Then bench.summary's table. The whole run is bounded by --minutes: each step gets at most its share of what is
left, and a step still running at its limit is interrupted (SIGINT, so it stops its servers) and then killed.
The load average is sampled every 10 s and printed with the table.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.summary import table
from tests.servers import BASE_DIR

LOAD_SAMPLE_SECONDS = 10.0
STOP_GRACE_SECONDS = 90.0


def steps(args: argparse.Namespace) -> list[tuple[str, list[str], float]]:
    """(output file, arguments, share of the time budget)."""
    load = ["--pairs", str(args.pairs), "--rate", str(args.rate), "--seconds", str(args.seconds)]
    return [
        ("delivery.txt", ["bench.delivery", "--servers", "imweb,prosody,reference", *load], 4),
        ("delivery-api.txt", ["bench.delivery", "--servers", "api", *load], 3),
        ("ceiling.txt", ["bench.ceiling", "--servers", "imweb,prosody,reference", *shlex.split(args.ceiling)], 12),
        ("storm.txt", ["bench.storm", "--servers", "imweb,prosody,reference", "--users", str(args.storm_users)], 4),
        ("idle.txt", ["bench.idle", "--servers", "imweb,prosody,reference", "--users", str(args.idle_users)], 3),
        ("scaled.txt", ["bench.delivery", "--servers", "scaled", *load], 4),
        ("catchup.txt", ["bench.catchup", "--missed", "1000", "--rounds", "3"], 1),
    ]


class LoadSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.samples.append(os.getloadavg()[0])
            self.stopping.wait(LOAD_SAMPLE_SECONDS)


def run_step(out: Path, argv: list[str], limit: float) -> tuple[int | None, float]:
    """Run one benchmark, its output shown and saved; interrupt it at `limit` seconds. Returns (status, seconds)."""
    print(f"\n=== python -m {' '.join(argv)}  (at most {limit / 60:.1f} min)", flush=True)
    began = time.monotonic()
    with out.open("w") as saved:
        process = subprocess.Popen(
            [sys.executable, "-m", *argv], cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip

        def interrupt() -> None:
            if process.poll() is None:
                print(f"=== {argv[0]} reached its {limit / 60:.1f} min limit: interrupting it", flush=True)
                process.send_signal(signal.SIGINT)  # KeyboardInterrupt: its finally blocks stop its servers

        timer = threading.Timer(limit, interrupt)
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                saved.write(line)
        finally:
            timer.cancel()
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: only what this step started
                process.wait()
    return process.returncode, time.monotonic() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(BASE_DIR / "test-output" / "bench"), help="where outputs are saved")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--storm-users", type=int, default=2000)
    parser.add_argument("--idle-users", type=int, default=1000)
    parser.add_argument("--ceiling", default="--start 100 --factor 2 --seconds 10 --max-steps 12 --budget 240")
    parser.add_argument("--minutes", type=float, default=25, help="bound on the whole run (default 25)")
    parser.add_argument("--only", default="", help="comma-separated output names to run (e.g. storm,idle)")
    args = parser.parse_args()
    if not 1 <= args.minutes <= 240:
        parser.error("--minutes must be 1-240")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in steps(args) if not args.only or s[0].removesuffix(".txt") in args.only.split(",")]
    deadline = time.monotonic() + args.minutes * 60
    sampler = LoadSampler()
    sampler.start()
    statuses = []
    for index, (name, argv, share) in enumerate(chosen):
        left = deadline - time.monotonic()
        if left < 30:
            print(f"=== no time left for {name}: skipped", flush=True)
            statuses.append((name, "skipped", 0.0))
            continue
        # Its share of what is left: a step may use what the steps before it left unused, never the later steps' share.
        limit = max(30.0, left * share / sum(s for _, _, s in chosen[index:]))
        status, seconds = run_step(out / name, argv, min(limit, left))
        statuses.append((name, status, seconds))
    sampler.stopping.set()
    print("\n=== steps")
    for name, status, seconds in statuses:
        print(f"- {name}: exit status {status}, {seconds / 60:.1f} min")
    if sampler.samples:
        samples = sampler.samples
        print(
            f"- load average (1 min) during the run: min {min(samples):.1f}, mean {sum(samples) / len(samples):.1f}, "
            f"max {max(samples):.1f} ({len(samples)} samples)"
        )
    print("\n=== summary (imweb / other: above 1 is better for rates, worse for latency, CPU and memory)\n")
    print(table(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
