"""The benchmarks run at a tiny size and print their figure lines: every message delivered once, every idle
socket held. Timings are printed by the benchmarks, never asserted here."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.servers import BASE_DIR

NUMBER = r"[0-9.]+|nan"


def run_bench(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=BASE_DIR, capture_output=True, text=True, timeout=280
    )  # fmt: skip
    assert result.returncode == 0, f"{args[0]} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_delivery_prints_its_figures_for_imweb_and_the_reference_with_nothing_lost_or_duplicated():
    out = run_bench("bench.delivery", "--pairs", "2", "--rate", "10", "--seconds", "2", "--drain", "60")

    for server in ("imweb", "reference"):
        assert f"[{server}] sent=20 received=20 lost=0 duplicated=0" in out, out
        assert re.search(rf"\[{server}\] latency ms: p50=({NUMBER}) p95=({NUMBER}) p99=({NUMBER}) max=", out), out
        assert re.search(rf"\[{server}\] achieved=\d+ msg/s server CPU per message=-?\d+ us", out), out
    assert "[imweb] sent=20 received=20 lost=0 duplicated=0 stored=20" in out, out  # and stored once each
    assert re.search(rf"\[ratio imweb/reference\] achieved=({NUMBER})x p99=({NUMBER})x CPU per message=", out), out


def test_idle_prints_memory_per_connected_user_for_imweb_and_the_reference():
    out = run_bench("bench.idle", "--users", "5")

    for server in ("imweb", "reference"):
        assert re.search(rf"\[{server}\] idle users=5 open=5 web RSS before=({NUMBER}) MiB after=", out), out
        assert re.search(rf"\[{server}\] .* per user=-?({NUMBER}) KiB", out), out
    assert "[ratio imweb/reference] memory per idle user=" in out, out


def test_delivery_in_scaled_mode_prints_its_figures_with_nothing_lost_or_duplicated():
    out = run_bench(
        "bench.delivery", "--servers", "scaled", "--pairs", "2", "--rate", "10", "--seconds", "2", "--drain", "60"
    )

    assert "[imweb-scaled] sent=20 received=20 lost=0 duplicated=0 stored=20" in out, out
    assert re.search(rf"\[imweb-scaled\] latency ms: p50=({NUMBER}) p95=({NUMBER}) p99=({NUMBER}) max=", out), out
