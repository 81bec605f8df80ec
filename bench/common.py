"""What the benchmarks share: the servers they start (imweb embedded or scaled, Prosody, the reference relay), the
people they create, the load generator's client side (bench/links.py), and measuring server processes by PID."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from websockets.asyncio.client import ClientConnection, connect

from bench.xmpp import PASSWORD as XMPP_PASSWORD
from bench.xmpp import ProsodyServer
from tests.servers import BASE_DIR, Service, free_port, stop_process, wait_for

USERS_SCRIPT = Path(__file__).with_name("users.py")
CONNECT_TIMEOUT = 30.0
# Sockets opened at once by the delivery and idle benchmarks (bench.storm opens all at once). Before the
# delivery redesign imweb's accept waited for the session lookup behind other sockets' database work and more at
# once failed; the figure stays so that runs before and after connect the same way.
CONNECT_CONCURRENCY = 5
# Prosody logs a session in without any database work: the benchmarks open its sessions more at a time.
XMPP_CONNECT_CONCURRENCY = 50


# --- Servers ------------------------------------------------------------------------------------------------


@dataclass
class Server:
    """A server under test: where clients connect, how they authenticate and read pushes, and its PIDs.

    `kind` says how the load generator talks to it: "ws" (a WebSocket per person: imweb's /ws/ or the relay),
    "api" (imweb's JSON API: POST /api/v1/messages to send, the /api/v1/stream WebSocket to receive) or "xmpp"
    (a c2s session per person on Prosody)."""

    name: str
    http_urls: list[str]
    ws_path: str
    pids: Callable[[], list[int]]
    stop: Callable[[], object]
    parse: Callable[[str], list[tuple[str, int]]]
    manage: Callable[[str], str] | None = None  # runs code in `manage.py shell`, returns its output
    kind: str = "ws"
    prosody: ProsodyServer | None = None
    # What the benchmark changed on this server for the load run (printed with its figures).
    settings_notes: list[str] = field(default_factory=list)

    def ws_url(self, index: int) -> str:
        return self.http_urls[index % len(self.http_urls)].replace("http://", "ws://") + self.ws_path


# imweb pushes rendered message partials (templates/chat/_message.html): <article id="msg-<conv>-<seq>" ...
# data-client-id="<uuid>">. The client id says which send it was, the seq which stored message.
_ARTICLE = re.compile(r'<article id="msg-\d+-(\d+)"[^>]*?data-client-id="([0-9a-f-]{36})"')


def parse_imweb(frame: str) -> list[tuple[str, int]]:
    return [(client_id, int(seq)) for seq, client_id in _ARTICLE.findall(frame)]


def parse_relay(frame: str) -> list[tuple[str, int]]:
    data = json.loads(frame)
    return [(data["client_id"], data["seq"])] if data.get("type") == "message" else []


def bench_env(settings_module: str = "bench.settings") -> dict[str, str]:
    return {"DJANGO_SETTINGS_MODULE": settings_module, "PYTHONPATH": str(BASE_DIR), "IMWEB_LOG_LEVEL": "WARNING"}


def raise_open_files_limit(wanted: int = 65536) -> int:
    """Raise this process's limit of open files (the load generator holds a socket per user; servers started from
    here inherit it). Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (wanted, hard):
        if soft >= limit:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard)))
            break
        except (ValueError, OSError):  # not allowed to raise the hard limit: take what there is
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_files_limit(pid: int) -> int | None:
    try:
        return psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE)[0]
    except (psutil.Error, AttributeError):
        return None


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def start_embedded(kind: str = "ws") -> Server:
    """imweb as `make run` starts it (supervisor, SQLite, embedded Valkey), on free ports, with its own var dir.
    kind="api": the benchmark drives it through the JSON API instead of the pages' WebSocket."""
    var_dir = Path(tempfile.mkdtemp(prefix="imweb-bench-"))  # short: the Valkey socket path must stay < 100 chars
    env = bench_env()
    service = Service(var_dir, env=env).start()
    shell_env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}},
        **env,
        "IMWEB_VAR_DIR": str(var_dir),
        "IMWEB_EMAIL_BACKEND": "file",
    }

    def manage(code: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=BASE_DIR, env=shell_env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"manage.py shell failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def pids() -> list[int]:
        assert service.process is not None
        return [service.process.pid, *(p.pid for p in psutil.Process(service.process.pid).children(recursive=True))]

    def stop() -> None:
        service.stop()
        shutil.rmtree(var_dir, ignore_errors=True)

    name = "imweb-api" if kind == "api" else "imweb"
    return Server(name, [service.url], "/ws/", pids, stop, parse_imweb, manage, kind=kind)


def start_api() -> Server:
    return start_embedded(kind="api")


def start_scaled(web_processes: int = 2, kind: str = "ws") -> Server:
    """imweb in scaled mode: durable PostgreSQL + redis-server + N Daphne + worker + beat (tests/scaled/site.py)."""
    from tests.scaled.site import ScaledSite
    from tests.servers import Postgres, RedisServer

    postgres = Postgres(durable=True).start()
    redis_server = RedisServer().start()
    base_dir = Path(tempfile.mkdtemp(prefix="imweb-bench-scaled-"))
    site = ScaledSite(
        base_dir,
        database_url=postgres.create_database("imweb"),
        redis_url=redis_server.url,
        web_processes=web_processes,
        env=bench_env(),
    )
    try:
        site.start(federation=False)
    except BaseException:
        site.stop()
        redis_server.stop()
        postgres.stop()
        raise

    def stop() -> None:
        site.stop()
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(base_dir, ignore_errors=True)

    def pids() -> list[int]:
        roots = [p.popen.pid for p in site.processes] + [postgres.process.pid, redis_server.process.pid]
        found = []
        for pid in roots:
            try:
                found += [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
            except psutil.NoSuchProcess:
                pass
        return found

    def manage(code: str) -> str:
        return site.manage("shell", "-c", code, timeout=600).stdout

    name = "imweb-scaled-api" if kind == "api" else "imweb-scaled"
    return Server(name, site.web_urls, "/ws/", pids, stop, parse_imweb, manage, kind=kind)


def start_prosody() -> Server:
    """Prosody 0.12 (bench/xmpp.py): the real XMPP server the figures are compared with."""
    prosody = ProsodyServer().start()
    assert prosody.process is not None
    pid = prosody.process.pid
    notes = [
        "mod_limits not loaded (no c2s rate limit), offline storage off, log warnings only (bench/xmpp.py)",
    ]
    return Server("prosody", [], "", lambda: [pid], prosody.stop, lambda frame: [], kind="xmpp", prosody=prosody,
                  settings_notes=notes)  # fmt: skip


def start_relay() -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.relay", "--port", str(port)], cwd=BASE_DIR, stdout=subprocess.DEVNULL
    )

    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the relay exited with {process.returncode}")
        return any(c.laddr.port == port for c in psutil.Process(process.pid).net_connections("tcp"))

    wait_for(listening, 30, "the reference relay")
    return Server("reference", [f"http://127.0.0.1:{port}"], "/", lambda: [process.pid], lambda: stop_process(process),
                  parse_relay)  # fmt: skip


# --- People -------------------------------------------------------------------------------------------------


@dataclass
class Person:
    jid: str
    session: str | None = None  # imweb: a logged-in session key; the relay: none (its URL names the user)
    conversation: int | None = None  # imweb: the pair's conversation, which the person's tab has open
    token: str | None = None  # imweb, when the API is driven: the person's API token
    password: str | None = None  # Prosody: the account's password (SASL PLAIN)


def create_people(
    server: Server, prefix: str, pairs: int, idle: int = 0
) -> tuple[list[tuple[Person, Person]], list[Person]]:
    """`pairs` sender/receiver pairs (mutual contacts) and `idle` people, each with a session (imweb), an API
    token (imweb driven through its API) or an account and password (Prosody)."""
    if server.prosody is not None:
        domain = server.prosody.domain
        names = [f"{prefix}{role}{n}" for n in range(pairs) for role in ("s", "r")]
        names += [f"{prefix}i{n}" for n in range(idle)]
        server.prosody.add_accounts(names, XMPP_PASSWORD)
        made = [
            (Person(f"{prefix}s{n}@{domain}", password=XMPP_PASSWORD),
             Person(f"{prefix}r{n}@{domain}", password=XMPP_PASSWORD))
            for n in range(pairs)
        ]  # fmt: skip
        return made, [Person(f"{prefix}i{n}@{domain}", password=XMPP_PASSWORD) for n in range(idle)]
    if server.manage is None:  # the relay has no accounts
        made = [(Person(f"{prefix}s{n}@relay"), Person(f"{prefix}r{n}@relay")) for n in range(pairs)]
        return made, [Person(f"{prefix}i{n}@relay") for n in range(idle)]
    spec = json.dumps({"prefix": prefix, "pairs": pairs, "idle": idle, "tokens": server.kind == "api"})
    output = server.manage(f"SPEC = {spec!r}\n" + USERS_SCRIPT.read_text())
    line = next(line for line in output.splitlines() if line.startswith("BENCH-USERS "))
    data = json.loads(line.removeprefix("BENCH-USERS "))
    server.settings_notes = [f"{what} lifted for the load run (bench/settings.py)" for what in data.get("lifted", [])]
    made = [(Person(**sender), Person(**receiver)) for sender, receiver in data["pairs"]]
    return made, [Person(**person) for person in data["idle"]]


def print_settings_notes(server: Server) -> None:
    for note in server.settings_notes:
        print(f"[{server.name}] settings: {note}", flush=True)


async def open_socket(
    server: Server, person: Person, index: int = 0, open_timeout: float = CONNECT_TIMEOUT
) -> ClientConnection:
    """A WebSocket as the person: the session cookie and an allowed Origin for imweb, ?user= for the relay."""
    url = server.ws_url(index)
    if person.session is None:
        return await connect(f"{url}?user={person.jid}", open_timeout=open_timeout, max_size=2**20)
    origin = server.http_urls[index % len(server.http_urls)]
    ws = await connect(
        url, origin=origin, additional_headers={"Cookie": f"sessionid={person.session}"},
        open_timeout=open_timeout, max_size=2**20, compression=None,
    )  # fmt: skip
    if person.conversation is not None:
        # As a tab with the chat open: pushes for this conversation start after the seq it already shows.
        await ws.send(json.dumps({"type": "conversation.open", "conversation": person.conversation, "after": 1}))
    return ws


def api_headers(person: Person) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}"}


def send_frame(sender: Person, receiver: Person, body: str, client_id: str) -> str:
    """A message frame: to the pair's conversation when there is one (imweb), else to the receiver's address."""
    frame: dict[str, object] = {"type": "message.send", "to": receiver.jid, "body": body, "client_id": client_id}
    if sender.conversation is not None:
        frame["conversation"] = sender.conversation
    return json.dumps(frame)


# --- Measuring ------------------------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass
class Tally:
    sent: int = 0
    sent_at: dict[str, float] = field(default_factory=dict)
    seqs: dict[str, set[int]] = field(default_factory=dict)  # client id → seqs it was pushed with, at the receiver
    # body → client id of every send: the API shows a message's client id only to its sender, so the receiver's
    # pushes are matched by their body (unique per send: "bench <pair> <n>").
    body_ids: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    first_send: float = 0.0
    last_receive: float = 0.0
    all_received: asyncio.Event = field(default_factory=asyncio.Event)
    sent_done: bool = False

    @property
    def received(self) -> int:
        return len(self.seqs)

    @property
    def duplicated(self) -> int:
        return sum(1 for seqs in self.seqs.values() if len(seqs) > 1)

    def expect(self, client_id: str, body: str) -> None:
        """A send is about to leave: its clock starts now."""
        self.sent_at[client_id] = time.perf_counter()
        self.body_ids[body] = client_id
        self.sent += 1

    def mark(self, client_id: str | None, seq: int, body: str | None = None) -> None:
        if (client_id is None or client_id not in self.sent_at) and body is not None:
            client_id = self.body_ids.get(body)
        if client_id is None or client_id not in self.sent_at:
            return  # not one of ours (or an echo of our own send, on the sender's socket)
        now = time.perf_counter()
        if client_id not in self.seqs:
            self.seqs[client_id] = set()
            self.latencies.append(now - self.sent_at[client_id])
            self.last_receive = now
        self.seqs[client_id].add(seq)
        if self.received >= self.sent and self.sent_done:
            self.all_received.set()
