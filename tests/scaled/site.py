"""imweb in scaled mode, started the way README "Scaling out" tells operators: migrations once, then several Daphne
processes, a Celery worker, exactly one beat and the federation listener, all on one PostgreSQL and one Redis.
Plus a small HTTP + WebSocket client that signs people up with CSRF and opens their sockets with the session
cookie. Used by tests/scaled/ and by bench/ (its scaled-mode run)."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.servers import BASE_DIR, free_port, stop_process, wait_for

VENV_BIN = Path(sys.executable).parent
PASSWORD = "correct horse battery staple"


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ScaledSite:
    """Every process of one imweb site in scaled mode, stopped by PID (last started first)."""

    def __init__(
        self, base_dir: Path, *, database_url: str, redis_url: str, web_processes: int = 2, env: dict | None = None
    ) -> None:
        self.base_dir = base_dir
        self.web_ports = [free_port() for _ in range(web_processes)]
        self.s2s_port = free_port()
        self.processes: list[Process] = []
        inherited = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "IMWEB_VAR_DIR", "SECRET_KEY"}
        }
        self.env = {
            **inherited,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),  # the same on every process, as README asks
            "IMWEB_VAR_DIR": str(base_dir / "var"),
            "IMWEB_DOMAIN": "imweb.localhost",
            "IMWEB_EMAIL_BACKEND": "file",
            "IMWEB_S2S_PORT": str(self.s2s_port),
            "IMWEB_S2S_BIND": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }

    @property
    def web_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.web_ports]

    def _spawn(self, name: str, argv: list[str]) -> Process:
        log_path = self.base_dir / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(argv, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def manage(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`manage.py <args>` against this site's database and Redis (output captured, exit status checked)."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def _alive(self, process: Process) -> None:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}:\n{process.log()}")

    def start(self, *, federation: bool = True) -> ScaledSite:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput")  # once per release, before any process starts
        daphne = [str(VENV_BIN / "daphne"), "-b", "127.0.0.1"]
        for n, port in enumerate(self.web_ports, start=1):
            self._spawn(f"web{n}", [*daphne, "-p", str(port), "imweb.asgi:application"])
        worker = self._spawn("worker", [str(VENV_BIN / "celery"), "-A", "imweb", "worker", "--loglevel", "INFO"])
        # The beat's schedule state goes under the var dir rather than the current folder (the checkout).
        beat_state = str(self.base_dir / "var" / "celerybeat-schedule")
        beat = self._spawn(
            "beat", [str(VENV_BIN / "celery"), "-A", "imweb", "beat", "--loglevel", "INFO", "--schedule", beat_state]
        )
        s2s = None
        if federation and (BASE_DIR / "federation" / "management" / "commands" / "runfederation.py").exists():
            s2s = self._spawn("federation", [sys.executable, "manage.py", "runfederation"])

        def ready() -> bool:
            for process in self.processes:
                self._alive(process)
            return (
                all(healthz(url)[0] == 200 for url in self.web_urls)
                and " ready." in worker.log()
                and "beat: Starting" in beat.log()
                and (s2s is None or port_open(self.s2s_port))
            )

        wait_for(ready, 120, f"imweb in scaled mode ({', '.join(p.name for p in self.processes)})", interval=0.2)
        return self

    def stop(self) -> dict[str, int | None]:
        """Stop every process by PID, last started first; return each one's exit status."""
        for process in reversed(self.processes):
            stop_process(process.popen, grace=20)
        return {process.name: process.popen.returncode for process in self.processes}

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log()[-4000:]}" for p in self.processes)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def healthz(base_url: str) -> tuple[int, dict]:
    try:
        response = httpx.get(base_url + "/healthz", timeout=3)
    except httpx.HTTPError:
        return 0, {}
    return response.status_code, response.json() if response.headers.get("content-type", "").startswith(
        "application/json"
    ) else {}


_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Person:
    """Someone using imweb through one web process: an HTTP session (cookies) and WebSockets on the same site."""

    def __init__(self, base_url: str, username: str) -> None:
        self.base_url = base_url
        self.username = username
        self.http = httpx.Client(base_url=base_url, timeout=15, follow_redirects=False)

    @classmethod
    def resume(cls, person: Person, base_url: str) -> Person:
        """The same signed-in person (same session cookie) reaching another web process."""
        again = cls(base_url, person.username)
        again.http.cookies = person.http.cookies
        return again

    def _form_post(
        self, form_path: str, post_path: str, data: dict[str, str], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        page = self.http.get(form_path)
        page.raise_for_status()
        match = _CSRF_FIELD.search(page.text)
        assert match, f"no CSRF token on {form_path}"
        return self.http.post(post_path, data={"csrfmiddlewaretoken": match.group(1), **data}, headers=headers)

    def sign_up(self) -> Person:
        response = self._form_post(
            "/accounts/signup/",
            "/accounts/signup/",
            {"username": self.username, "email": f"{self.username}@example.org", "password1": PASSWORD},
        )
        assert response.status_code == 302, f"sign-up of {self.username} answered {response.status_code}"
        assert "sessionid" in self.http.cookies, "sign-up did not log in"
        return self

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        """A form post from the signed-in home page (its CSRF token), as the page's htmx would send it."""
        return self._form_post("/", path, data, headers={"HX-Request": "true"})

    def open_socket(self) -> ClientConnection:
        ws_url = self.base_url.replace("http://", "ws://") + "/ws/"
        cookies = "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())
        return connect(ws_url, origin=self.base_url, additional_headers={"Cookie": cookies}, open_timeout=15)

    def close(self) -> None:
        self.http.close()


def receive_until(ws: ClientConnection, predicate, timeout: float, what: str) -> str:
    """Read frames until one satisfies predicate(frame); fail after `timeout` seconds with what was seen."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no frame with {what} within {timeout:.0f}s; got {len(seen)} frames: {seen[-3:]}")
        try:
            frame = ws.recv(timeout=remaining)
        except TimeoutError:
            continue
        text = frame if isinstance(frame, str) else frame.decode()
        seen.append(text[:500])
        if predicate(text):
            return text
