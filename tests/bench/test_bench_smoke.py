"""The benchmarks run at a tiny size and print their figure lines: every message delivered once, every idle
socket held, every storm connection ready. Timings are printed by the benchmarks, never asserted here."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.servers import BASE_DIR

NUMBER = r"[0-9.]+|nan"
TINY = ("--pairs", "2", "--rate", "10", "--seconds", "2", "--drain", "60")


def run_bench(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=BASE_DIR, capture_output=True, text=True, timeout=280
    )  # fmt: skip
    assert result.returncode == 0, f"{args[0]} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def assert_delivery_figures(out: str, server: str) -> None:
    assert f"[{server}] sent=20 received=20 lost=0 duplicated=0" in out, out
    assert re.search(rf"\[{server}\] latency ms: p50=({NUMBER}) p95=({NUMBER}) p99=({NUMBER}) max=", out), out
    assert re.search(rf"\[{server}\] achieved=\d+ msg/s server CPU per message=-?\d+ us", out), out


def test_delivery_prints_its_figures_for_imweb_prosody_and_the_reference_with_nothing_lost_or_duplicated():
    out = run_bench("bench.delivery", "--servers", "imweb,prosody,reference", *TINY)

    for server in ("imweb", "prosody", "reference"):
        assert_delivery_figures(out, server)
    assert "[imweb] sent=20 received=20 lost=0 duplicated=0 stored=20" in out, out  # and stored once each
    assert "[imweb] settings: per-person message limit lifted for the load run (bench/settings.py)" in out, out
    for other in ("reference", "prosody"):
        pattern = rf"\[ratio imweb/{other}\] achieved=({NUMBER})x p99=({NUMBER})x CPU per message=({NUMBER})x"
        assert re.search(pattern, out), out


def test_delivery_over_the_api_prints_its_figures_with_nothing_lost_duplicated_or_refused():
    out = run_bench("bench.delivery", "--servers", "api", *TINY)

    assert_delivery_figures(out, "imweb-api")
    assert "[imweb-api] sent=20 received=20 lost=0 duplicated=0 stored=20" in out, out
    assert "[imweb-api] errors=0 (status: none)" in out, out


def test_idle_prints_memory_per_connected_user_for_imweb_prosody_and_the_reference():
    out = run_bench("bench.idle", "--users", "5", "--servers", "imweb,prosody,reference")

    for server in ("imweb", "prosody", "reference"):
        assert re.search(rf"\[{server}\] idle users=5 open=5 web RSS before=({NUMBER}) MiB after=", out), out
        assert re.search(rf"\[{server}\] .* per user=-?({NUMBER}) KiB", out), out
    assert "[ratio imweb/reference] memory per idle user=" in out, out
    assert "[ratio imweb/prosody] memory per idle user=" in out, out


def test_storm_gets_every_connection_ready_on_imweb_and_prosody():
    out = run_bench("bench.storm", "--users", "20", "--servers", "imweb,prosody", "--timeout", "60")

    for server in ("imweb", "prosody"):
        pattern = rf"\[{server}\] storm users=20 ready=20 failed=0 in ({NUMBER}) s \(\d+/s\) server CPU per socket=-?"
        assert re.search(pattern, out), out
    assert re.search(rf"\[ratio imweb/prosody\] storm ready per second=({NUMBER})x", out), out


def test_ceiling_runs_a_step_per_server_and_prints_the_highest_sustained_rate():
    out = run_bench(
        "bench.ceiling", "--servers", "imweb,prosody", "--pairs", "2", "--start", "10", "--seconds", "2",
        "--max-steps", "1",
    )  # fmt: skip

    for server in ("imweb", "prosody"):
        assert f"[{server}] step 1: offered=10 msg/s sent=20 received=20 lost=0 duplicated=0 " in out, out
        assert re.search(rf"\[{server}\] highest sustained rate=\d+ msg/s \(0 lost, p99 < 100 ms\)", out), out
    assert re.search(rf"\[ratio imweb/prosody\] highest sustained rate=({NUMBER})x", out), out


def test_delivery_in_scaled_mode_prints_its_figures_with_nothing_lost_or_duplicated():
    out = run_bench("bench.delivery", "--servers", "scaled", *TINY)

    assert "[imweb-scaled] sent=20 received=20 lost=0 duplicated=0 stored=20" in out, out
    assert re.search(rf"\[imweb-scaled\] latency ms: p50=({NUMBER}) p95=({NUMBER}) p99=({NUMBER}) max=", out), out


def test_catch_up_sends_every_missed_message_once_on_the_page_socket_and_the_api_stream():
    out = run_bench("bench.catchup", "--missed", "30", "--rounds", "1")

    for way in ("page", "api"):
        pattern = rf"\[imweb-{way}\] catch-up of 30 missed messages: received=30 duplicated=0 seconds median=({NUMBER})"
        assert re.search(pattern, out), out


def test_the_summary_table_puts_imweb_beside_prosody_and_the_relay(tmp_path):
    (tmp_path / "delivery.txt").write_text(
        "[imweb] sent=20 received=20 lost=0 duplicated=0 stored=20\n"
        "[imweb] latency ms: p50=20.0 p95=30.0 p99=40.0 max=50.0\n"
        "[imweb] achieved=10 msg/s server CPU per message=20000 us (idle subtracted)\n"
        "[prosody] sent=20 received=20 lost=0 duplicated=0\n"
        "[prosody] latency ms: p50=1.0 p95=2.0 p99=4.0 max=5.0\n"
        "[prosody] achieved=10 msg/s server CPU per message=400 us (idle subtracted)\n"
        "[reference] sent=20 received=20 lost=0 duplicated=0\n"
        "[reference] latency ms: p50=1.0 p95=1.0 p99=2.0 max=2.0\n"
        "[reference] achieved=10 msg/s server CPU per message=500 us (idle subtracted)\n"
    )
    out = run_bench("bench.summary", str(tmp_path))

    assert "| figure | imweb | Prosody 0.12 | relay | imweb / Prosody | imweb / relay |" in out, out
    assert "| delivery: p99 ms | 40 | 4 | 2 | 10.00x | 20.00x |" in out, out
    assert "| delivery: server CPU per message, us | 20,000 | 400 | 500 | 50.00x | 40.00x |" in out, out
