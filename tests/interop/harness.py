"""What the interop tests drive: a throwaway Prosody, an asyncio loop in a thread, a slixmpp client, and a raw
s2s peer that speaks bytes. The fixtures in conftest.py start them once per module and stop them by PID."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import slixmpp
from lxml import etree

from federation.conf import FederationConfig
from federation.dialback import dialback_key
from federation.serialize import stream_header
from federation.service import FederationService
from federation.tls import generate_self_signed
from federation.xmlstream import STREAMS_NS, StanzaReceived, StreamClosed, StreamOpened, XMLStreamParser
from tests.servers import BASE_DIR, Service, wait_for

T = TypeVar("T")

PROSODY = "/usr/bin/prosody"
PROSODYCTL = "/usr/bin/prosodyctl"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
MAX_READS = 10_000  # bounds every read loop of the raw peers, on top of their socket timeouts


class LoopThread:
    """An asyncio event loop running in a daemon thread; tests hand it coroutines and wait for their results."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="interop-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        """Cancel what is still running on the loop (a client's background tasks), then stop and close it."""

        async def cancel_the_rest() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=5) if tasks else None

        self.run(cancel_the_rest(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- our service, in-process ------------------------------------------------------------------------------


@dataclass
class Received:
    """Stanzas our service's on_stanza callback was given, as (from_domain, element); filled from the loop thread."""

    items: list[tuple[str, etree._Element]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, from_domain: str, stanza: etree._Element) -> None:
        with self.lock:
            self.items.append((from_domain, stanza))

    def find(self, **attributes: str) -> tuple[str, etree._Element] | None:
        with self.lock:
            for from_domain, stanza in self.items:
                if all(stanza.get(name.rstrip("_")) == value for name, value in attributes.items()):
                    return from_domain, stanza
        return None


@dataclass
class RunningService:
    service: FederationService
    received: Received
    loop: LoopThread

    def send(self, stanza: etree._Element, timeout: float = 60.0) -> None:
        """Send and wait until it is handed over (or raise DeliveryError)."""
        self.loop.run(self.service.send(stanza), timeout=timeout)


def start_service(loop: LoopThread, config: FederationConfig) -> RunningService:
    received = Received()
    service = FederationService(config, on_stanza=received)
    loop.run(service.start())
    return RunningService(service, received, loop)


@dataclass
class ImwebService:
    """The whole imweb service (tests.servers.Service) with federation, and a way into its database."""

    service: Service
    s2s_port: int

    def env(self) -> dict[str, str]:
        """The environment the service's processes run with (so a helper process shares its DB and Valkey)."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "IMWEB_VAR_DIR"}
        }
        return env | {"IMWEB_VAR_DIR": str(self.service.var_dir)} | self.service.extra_env

    def django(self, code: str, timeout: float = 120.0) -> str:
        """Run `code` in `manage.py shell` against the service's database and Valkey; returns what it printed.

        Actions called here publish on commit through the service's Valkey, so the running processes are woken
        exactly as by a request of their own web process.
        """
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=BASE_DIR, env=self.env(), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"manage.py shell failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result.stdout


# --- Prosody -----------------------------------------------------------------------------------------------------


class Prosody:
    """Prosody 0.12 on loopback ports with its own config and data folder (docs/federation.md §3).

    `tls` is "required" (s2s STARTTLS mandatory, a self-signed certificate, `s2s_secure_auth = false`) or "off"
    (no mod_tls at all: with it loaded and no certificate, Prosody would still offer STARTTLS and then fail).
    Peers are found through `dns_port`, our MiniDNS, via libunbound's forwarder (docs/federation.md §2).
    """

    def __init__(
        self, directory: Path, *, domain: str, tls: str, dns_port: int, c2s_port: int, s2s_port: int,
        offline: bool = False,
    ) -> None:  # fmt: skip
        self.offline = offline  # keep messages for offline users (mod_offline) instead of bouncing them
        self.directory = directory
        self.domain = domain
        self.tls = tls
        self.dns_port = dns_port
        self.c2s_port = c2s_port
        self.s2s_port = s2s_port
        self.config_path = directory / "prosody.cfg.lua"
        self.log_path = directory / "prosody.log"
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        directory = self.directory
        (directory / "data").mkdir(parents=True, exist_ok=True)
        (directory / "certs").mkdir(exist_ok=True)
        modules = ["roster", "saslauth", "dialback", "disco", "ping", "posix"]
        tls_lines = ""
        if self.tls == "required":
            cert_pem, key_pem = generate_self_signed(self.domain)
            (directory / "certs" / f"{self.domain}.crt").write_bytes(cert_pem)
            (directory / "certs" / f"{self.domain}.key").write_bytes(key_pem)
            modules.insert(0, "tls")
            tls_lines = (
                f'ssl = {{ certificate = "{directory}/certs/{self.domain}.crt"; '
                f'key = "{directory}/certs/{self.domain}.key" }}\n'
            )
        module_list = "; ".join(f'"{name}"' for name in modules)
        self.config_path.write_text(
            f"""-- Throwaway Prosody for imweb's interop tests; see tests/interop/harness.py.
run_as_root = true
pidfile = "{directory}/prosody.pid"
data_path = "{directory}/data"
certificates = "{directory}/certs"
log = {{ {{ levels = {{ min = "debug" }}, to = "file", filename = "{self.log_path}" }} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.c2s_port} }}
s2s_ports = {{ {self.s2s_port} }}
c2s_direct_tls_ports = {{ }}
s2s_direct_tls_ports = {{ }}
use_ipv6 = false
authentication = "internal_plain"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
s2s_require_encryption = {"true" if self.tls == "required" else "false"}
s2s_secure_auth = false
unbound = {{ resolvconf = false; hoststxt = false; forward = "127.0.0.1@{self.dns_port}";
            options = {{ ["local-zone"] = "localhost. transparent" }} }}
modules_enabled = {{ {module_list} }}
modules_disabled = {{ {"" if self.offline else '"offline"'} }}
{tls_lines}
VirtualHost "{self.domain}"
"""
        )

    def register(self, username: str, password: str) -> None:
        subprocess.run(
            [PROSODYCTL, "--config", str(self.config_path), "register", username, self.domain, password],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def start(self) -> Prosody:
        self.write_config()
        with (self.directory / "stdout.log").open("wb") as stdout:
            self.process = subprocess.Popen(
                [PROSODY, "-F", "--config", str(self.config_path)], stdout=stdout, stderr=subprocess.STDOUT
            )

        def listening() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Prosody exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            return port_accepts(self.c2s_port) and port_accepts(self.s2s_port)

        wait_for(listening, 30, f"Prosody on ports {self.c2s_port} and {self.s2s_port}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # a clean shutdown, by PID
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    @staticmethod
    def installed() -> bool:
        return shutil.which(PROSODY) is not None


# --- a c2s client on Prosody ---------------------------------------------------------------------------------


class ChatClient:
    """A slixmpp c2s client (docs/federation.md: slixmpp is the c2s test client); it runs on `loop`."""

    def __init__(self, loop: LoopThread, jid: str, password: str, port: int, *, receipts: bool = False) -> None:
        self.loop = loop
        self.receipts = receipts  # answer XEP-0184 receipt requests, as most clients do
        self.port = port
        self.messages: list[slixmpp.Message] = []
        self._ready: asyncio.Event | None = None
        self.xmpp: slixmpp.ClientXMPP | None = None
        self._jid, self._password = jid, password

    async def _connect(self) -> None:
        self._ready = asyncio.Event()
        xmpp = slixmpp.ClientXMPP(self._jid, self._password)
        xmpp.enable_direct_tls = False
        xmpp.ssl_context.check_hostname = False
        xmpp.ssl_context.verify_mode = ssl.CERT_NONE
        xmpp.plugin["feature_mechanisms"].unencrypted_plain = True
        if self.receipts:
            xmpp.register_plugin("xep_0184")  # auto_ack: a <received/> for every message that asks
        xmpp.add_event_handler("session_start", self._session_start)
        xmpp.add_event_handler("message", self.messages.append)
        self.xmpp = xmpp
        xmpp.connect("127.0.0.1", self.port)
        async with asyncio.timeout(20):
            await self._ready.wait()

    async def _session_start(self, _event: object) -> None:
        assert self.xmpp is not None and self._ready is not None
        self.xmpp.send_presence()
        await self.xmpp.get_roster()
        self._ready.set()

    def connect(self) -> ChatClient:
        self.loop.run(self._connect(), timeout=30)
        return self

    def send_message(self, to: str, body: str, message_id: str) -> None:
        async def send() -> None:
            assert self.xmpp is not None
            message = self.xmpp.make_message(mto=to, mbody=body, mtype="chat")
            message["id"] = message_id
            message.send()

        self.loop.run(send())

    def disconnect(self) -> None:
        async def disconnect() -> None:
            if self.xmpp is not None:
                self.xmpp.disconnect(wait=1)
                async with asyncio.timeout(5):
                    await self.xmpp.disconnected

        try:
            self.loop.run(disconnect(), timeout=10)
        except TimeoutError:
            pass


# --- a raw s2s peer ------------------------------------------------------------------------------------------


class RawPeer:
    """A blocking TCP client that writes exact bytes to an s2s port and reads the answer with our own parser.

    It plays a remote server: open a stream, STARTTLS when the listener demands it, dialback, then whatever bytes a
    test wants to send. What comes back is parsed with XMLStreamParser, which accepts what a listener writes.
    """

    def __init__(self, port: int, *, timeout: float = 10.0) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.parser = XMLStreamParser(max_stanza_bytes=1_000_000)
        self.events: list[object] = []
        self.header: StreamOpened | None = None
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            return
        self.events += self.parser.feed(data)

    def next_event(self) -> object:
        """The listener's next event; raises EOFError if the connection ends first (bounded by the timeout)."""
        for _ in range(MAX_READS):  # each read blocks at most the socket timeout; EOF ends the loop
            if self.events:
                return self.events.pop(0)
            if self.eof:
                raise EOFError("the listener closed the connection")
            self._read()
        raise AssertionError(f"no complete event in {MAX_READS} reads")

    def next_element(self) -> etree._Element:
        event = self.next_event()
        if isinstance(event, StreamOpened):
            self.header = event
            return self.next_element()
        if isinstance(event, StreamClosed):
            raise EOFError("the listener closed its stream")
        assert isinstance(event, StanzaReceived), event
        return event.element

    def open(self, *, from_: str, to: str) -> etree._Element:
        """Send a stream header and return the listener's features."""
        self.send(stream_header(from_=from_, to=to, stream_id=None))
        features = self.next_element()
        assert features.tag == f"{{{STREAMS_NS}}}features", etree.tostring(features)
        return features

    def open_authenticated_ready(self, *, from_: str, to: str) -> etree._Element:
        """Open a stream, doing STARTTLS first if the listener requires it; return the final features."""
        features = self.open(from_=from_, to=to)
        starttls = features.find(f"{{{TLS_NS}}}starttls")
        if starttls is not None and starttls.find(f"{{{TLS_NS}}}required") is not None:
            self.send(f"<starttls xmlns='{TLS_NS}'/>".encode())
            assert self.next_element().tag == f"{{{TLS_NS}}}proceed"
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            self.sock = context.wrap_socket(self.sock, server_hostname=to)
            self.parser.reset()
            features = self.open(from_=from_, to=to)
        return features

    def stream_error(self) -> str:
        """Read up to the listener's stream error and return its condition; checks the stream then ends."""
        for _ in range(MAX_READS):  # each element is read with the socket timeout, and EOF raises
            element = self.next_element()
            if element.tag == f"{{{STREAMS_NS}}}error":
                break
        else:
            raise AssertionError(f"no stream error in {MAX_READS} elements")
        conditions = [
            etree.QName(child).localname
            for child in element
            if isinstance(child.tag, str) and etree.QName(child).localname != "text"
        ]
        assert len(conditions) == 1, etree.tostring(element)
        # RFC 6120 §4.9.1.1: the stream error is followed by the closing tag and the end of the connection.
        closed = self.next_event()
        assert isinstance(closed, StreamClosed), closed
        return conditions[0]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def verify_request(secret: str, *, receiving: str, originating: str, stream_id: str) -> bytes:
    """A db:verify that a receiving server sends to the authoritative server (XEP-0220 §2.1.3)."""
    key = dialback_key(secret, receiving=receiving, originating=originating, stream_id=stream_id)
    return f"<db:verify from='{receiving}' to='{originating}' id='{stream_id}'>{key}</db:verify>".encode()


# --- a scripted remote server ------------------------------------------------------------------------------------


class FakeRemote:
    """A listener for one connection that answers our outbound stream from a script, and records what it got.

    It sends its header with `features`, then answers our db:result with `dialback_answer` (no verification at
    all: it is a fake), and from then on only records bytes. Used to reach outbound paths a real peer rarely takes.
    """

    def __init__(self, *, domain: str, features: bytes, dialback_answer: bytes) -> None:
        self.domain = domain
        self.features = features
        self.dialback_answer = dialback_answer
        self.received = b""
        self.after_dialback = b""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(20)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="fake-remote", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(20)
            parser = XMLStreamParser()
            answered = False
            for _ in range(MAX_READS):  # each read is bounded by the socket timeout; ends when the peer closes
                try:
                    data = connection.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                self.received += data
                if answered:
                    self.after_dialback += data
                    continue
                try:
                    events = parser.feed(data)
                except Exception:  # noqa: BLE001  (a fake: it just stops answering)
                    return
                for event in events:
                    if isinstance(event, StreamOpened):
                        header = stream_header(from_=self.domain, to=event.from_ or "", stream_id="fake-id")
                        connection.sendall(header + self.features)
                    elif isinstance(event, StanzaReceived) and event.element.tag == "{jabber:server:dialback}result":
                        connection.sendall(self.dialback_answer)
                        answered = True

    def stop(self) -> None:
        self._listener.close()
        self._thread.join(5)
