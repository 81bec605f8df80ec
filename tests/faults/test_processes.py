"""imweb keeps serving through dead processes: each of the web process, the worker, the federation process and
the embedded Valkey killed with SIGKILL while two people chat comes back by itself within 10 s, the others serve
meanwhile, and the chat ends with every message stored exactly once and delivered exactly once, in order. A
SIGTERM stops everything within 10 s; a restart on the same state picks the chat up where it was."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.faults.chat import Conversation, Run
from tests.servers import Service, wait_for

pytestmark = pytest.mark.e2e

RECOVERY_SECONDS = 10.0
ENV = {"IMWEB_MESSAGE_RATE_LIMITS": "100000/10", "IMWEB_WEB_PROCESSES": "1"}


def processes(service: Service) -> dict[str, dict]:
    return json.loads((service.var_dir / "supervisor.json").read_text())["children"]


def health(service: Service) -> dict:
    """/healthz's answer (a 503 has its body too), {} when the web process does not answer."""
    try:
        with urllib.request.urlopen(service.url + "/healthz", timeout=2) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return json.loads(err.read())
    except (OSError, ValueError):
        return {}


def whole_again(service: Service, killed: int) -> bool:
    """Every process running (the killed one under a new PID) and /healthz saying ok."""
    children = processes(service)
    running = all(child["state"] == "running" for child in children.values())
    replaced = all(child["pid"] != killed for child in children.values())
    return running and replaced and health(service).get("status") == "ok"


async def kill_each_in_turn(service: Service, names: list[str], recoveries: dict[str, float]) -> None:
    for name in names:
        await asyncio.sleep(1.5)  # some traffic first
        pid = processes(service)[name]["pid"]
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        while not await asyncio.to_thread(whole_again, service, pid):
            assert time.monotonic() - killed_at < 60, f"{name} did not come back:\n{service.log()[-3000:]}"
            await asyncio.sleep(0.1)
        recoveries[name] = time.monotonic() - killed_at


def test_every_process_killed_in_turn_comes_back_and_no_message_is_lost_or_doubled(tmp_path_factory):
    service = Service(Path(tmp_path_factory.mktemp("kill")), env=ENV).start()
    try:
        run = Run(Conversation.start(service), count=120)
        recoveries: dict[str, float] = {}

        async def scenario() -> None:
            deadline = time.monotonic() + 150
            done = asyncio.Event()
            receiver = asyncio.ensure_future(run.receive(deadline, done))
            killer = asyncio.ensure_future(
                kill_each_in_turn(service, ["web", "worker", "federation", "beat", "valkey", "web"], recoveries)
            )
            await run.send_all(0.08, deadline)
            await killer
            done.set()
            await receiver

        asyncio.run(scenario())
        run.check()
        assert set(recoveries) == {"web", "worker", "federation", "beat", "valkey"}
        slow = {name: round(seconds, 1) for name, seconds in recoveries.items() if seconds > RECOVERY_SECONDS}
        assert not slow, f"back later than {RECOVERY_SECONDS:.0f} s: {slow}"
        assert run.reconnects >= 1  # the web process's deaths really cut Bo's stream
    finally:
        stopped_at = time.monotonic()
        code = service.stop()
        assert time.monotonic() - stopped_at < 10 and code == 0, service.log()[-3000:]


def test_a_stop_and_a_restart_mid_chat_lose_nothing(tmp_path_factory):
    var_dir = Path(tmp_path_factory.mktemp("restart"))
    service = Service(var_dir, env=ENV).start()
    port = service.port
    try:
        run = Run(Conversation.start(service, prefix="r"), count=60)

        async def restart() -> None:
            await asyncio.sleep(1.5)
            await asyncio.to_thread(service.stop)
            assert "all processes stopped" in service.log()
            await asyncio.to_thread(service.start)  # the same state folder and port: make run again

        async def scenario() -> None:
            deadline = time.monotonic() + 120
            done = asyncio.Event()
            receiver = asyncio.ensure_future(run.receive(deadline, done))
            restarter = asyncio.ensure_future(restart())
            await run.send_all(0.05, deadline)
            await restarter
            done.set()
            await receiver

        asyncio.run(scenario())
        assert service.port == port
        run.check()
    finally:
        service.stop()


def test_a_killed_supervisor_leaves_nothing_serving_and_the_next_start_works(tmp_path_factory):
    var_dir = Path(tmp_path_factory.mktemp("orphans"))
    service = Service(var_dir, env=ENV).start()
    children = processes(service)
    assert service.process is not None
    service.process.kill()  # SIGKILL: no chance to stop anything
    service.process.wait()

    def gone() -> bool:
        return not any(_alive(child["pid"]) for child in children.values())

    wait_for(gone, 10, "the killed supervisor's children to die with it")
    again = Service(var_dir, port=service.port, env=ENV).start()
    try:
        assert health(again).get("status") == "ok"
    finally:
        again.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped by init) serves nobody
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
