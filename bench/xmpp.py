"""Prosody 0.12 as the benchmarks' real-XMPP yardstick, and a raw asyncio c2s client fast enough to load it.

The Prosody here runs on loopback with its own config and data folder (the same facts as tests/interop/harness.py:
`run_as_root = true`, no mod_tls, plain SASL allowed without TLS), logs only warnings, keeps no offline messages
and does not load mod_limits, so no c2s rate limit applies. Accounts are written straight into its data folder in
the format `prosodyctl register` writes (one `prosodyctl` process per account would take minutes for thousands).

The client logs in as a real one does (stream header, SASL PLAIN, stream restart, resource binding, initial
presence) and then only writes <message/> stanzas and scans what it reads for <message/> ids: a regex over the
byte stream, because a full XML parser in the load generator would cost more CPU than Prosody spends per message.
"""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.servers import free_port, wait_for

PROSODY = shutil.which("prosody") or "/usr/bin/prosody"
DOMAIN = "bench.localhost"
PASSWORD = "bench-password"
OPEN_FILES = 65536  # raised by the shell wrapper before Prosody starts (a connect storm holds thousands of sockets)
READ_SIZE = 1 << 16
LOGIN_LIMIT_BYTES = 1 << 16  # a login answer larger than this is not Prosody's

STREAM_HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "to='{domain}' version='1.0'>"
)
_MESSAGE = re.compile(rb"<message\b([^>]*)>(.*?)</message>", re.DOTALL)
_ID = re.compile(rb"""\sid=(?:'([^']*)'|"([^"]*)")""")
_TYPE_ERROR = re.compile(rb"""\stype=['"]error['"]""")


def prosody_escape(text: str) -> str:
    """Prosody's datamanager encoding of a host or user name in file paths: every non-alphanumeric as %xx."""
    return re.sub(r"[^A-Za-z0-9]", lambda match: f"%{ord(match.group()):02x}", text)


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ProsodyServer:
    """One Prosody process on 127.0.0.1:<free port>, its config and data in a temp folder, stopped by PID."""

    def __init__(self, domain: str = DOMAIN) -> None:
        self.domain = domain
        self.directory = Path(tempfile.mkdtemp(prefix="imweb-bench-prosody-"))
        self.c2s_port = free_port()
        self.config_path = self.directory / "prosody.cfg.lua"
        self.log_path = self.directory / "prosody.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def accounts_dir(self) -> Path:
        return self.directory / "data" / prosody_escape(self.domain) / "accounts"

    def write_config(self) -> None:
        d = self.directory
        (d / "data").mkdir(parents=True, exist_ok=True)
        (d / "certs").mkdir(exist_ok=True)
        self.config_path.write_text(
            f"""-- Throwaway Prosody for imweb's benchmarks; see bench/xmpp.py.
run_as_root = true
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
log = {{ warn = "{self.log_path}" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.c2s_port} }}
s2s_ports = {{ }}
c2s_direct_tls_ports = {{ }}
s2s_direct_tls_ports = {{ }}
admin_socket = "{d}/prosody.sock"
use_ipv6 = false
authentication = "internal_plain"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
-- mod_limits is not loaded, so this is inert; it is here so that enabling the module cannot throttle the load.
limits = {{ c2s = {{ rate = "100mb/s" }} }}
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "posix" }}
modules_disabled = {{ "offline" }}

VirtualHost "{self.domain}"
"""
        )

    def add_accounts(self, usernames: list[str], password: str = PASSWORD) -> None:
        """Accounts as `prosodyctl register` stores them with internal_plain: data/<host>/accounts/<user>.dat."""
        self.accounts_dir.mkdir(parents=True, exist_ok=True)
        record = f'return {{\n\t["password"] = {_lua_string(password)};\n}};\n'
        for name in usernames:
            (self.accounts_dir / f"{prosody_escape(name)}.dat").write_text(record)

    def accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.c2s_port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self) -> ProsodyServer:
        self.write_config()
        command = f'ulimit -n {OPEN_FILES} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" -F --config "$1"'
        with (self.directory / "stdout.log").open("wb") as stdout:
            # `exec` keeps the PID: the one we hold is Prosody's own.
            self.process = subprocess.Popen(
                ["sh", "-c", command, PROSODY, str(self.config_path)], stdout=stdout, stderr=subprocess.STDOUT
            )

        def listening() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Prosody exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            return self.accepts()

        wait_for(listening, 30, f"Prosody on port {self.c2s_port}")
        return self

    def log(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        stdout = self.directory / "stdout.log"
        return text + (stdout.read_text(errors="replace") if stdout.exists() else "")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


class LoginFailed(Exception):
    pass


class XmppClient:
    """One c2s session: `login()` up to the reflected initial presence, then `send_message()` and `read()`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, jid: str) -> None:
        self.reader = reader
        self.writer = writer
        self.jid = jid
        self.buffer = b""
        self.errors = 0  # <message type='error'/> bounces read by this session

    @classmethod
    async def login(cls, port: int, jid: str, password: str, resource: str = "bench") -> XmppClient:
        user, _, domain = jid.partition("@")
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=READ_SIZE)
        client = cls(reader, writer, jid)
        try:
            header = STREAM_HEADER.format(domain=domain).encode()
            writer.write(header)
            features = await client._until(b"</stream:features>")
            if b"<mechanism>PLAIN</mechanism>" not in features:
                raise LoginFailed(f"{jid}: Prosody offers no PLAIN: {features[-500:]!r}")
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            writer.write(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>".encode())
            answer = await client._until(b"<success", b"<failure")
            if b"<failure" in answer:
                raise LoginFailed(f"{jid}: SASL failed: {answer[-500:]!r}")
            writer.write(header)  # the stream restarts after SASL (RFC 6120 §6.4.6)
            await client._until(b"</stream:features>")
            writer.write(
                f"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}"
                "</resource></bind></iq>".encode()
            )
            bound = await client._until(b"</iq>")
            if b"type='result'" not in bound and b'type="result"' not in bound:
                raise LoginFailed(f"{jid}: bind failed: {bound[-500:]!r}")
            # Initial presence: from now on messages to the bare JID are routed to this session. Prosody reflects it
            # to the sender once it has handled it, which is when the session is ready.
            writer.write(b"<presence/>")
            await client._until(b"<presence")
        except BaseException:
            writer.close()
            raise
        return client

    async def _until(self, *markers: bytes) -> bytes:
        """Read until one of the markers has arrived; return everything up to the end of the first one found and
        keep the rest for later reads."""
        while True:
            found = [(self.buffer.find(m), m) for m in markers]
            found = [(at, m) for at, m in found if at >= 0]
            if found:
                at, marker = min(found)
                end = at + len(marker)
                if marker.startswith(b"<") and not marker.startswith(b"</"):  # an opening tag: up to its '>'
                    close = self.buffer.find(b">", end)
                    if close < 0:
                        found = []
                    else:
                        end = close + 1
                if found:
                    head, self.buffer = self.buffer[:end], self.buffer[end:]
                    return head
            if len(self.buffer) > LOGIN_LIMIT_BYTES:
                raise LoginFailed(f"{self.jid}: no {markers} in {len(self.buffer)} bytes")
            data = await self.reader.read(READ_SIZE)
            if not data:
                raise LoginFailed(f"{self.jid}: Prosody closed the stream while waiting for {markers}")
            self.buffer += data

    def send_message(self, to: str, body: str, message_id: str) -> None:
        self.writer.write(f"<message to='{to}' type='chat' id='{message_id}'><body>{body}</body></message>".encode())

    async def drain_if_full(self) -> None:
        if self.writer.transport.get_write_buffer_size() > READ_SIZE:
            await self.writer.drain()

    async def read(self, on_message: Callable[[str, bytes], None] | None = None) -> None:
        """Read until the stream ends, calling on_message(id, body-bytes) for every <message/> that arrives."""
        while True:
            data = await self.reader.read(READ_SIZE)
            if not data:
                return
            buffer = self.buffer + data
            end = 0
            for match in _MESSAGE.finditer(buffer):
                end = match.end()
                attributes = match.group(1)
                if _TYPE_ERROR.search(attributes):
                    self.errors += 1
                    continue
                found = _ID.search(attributes)
                if found is not None and on_message is not None:
                    on_message((found.group(1) or found.group(2) or b"").decode(), match.group(2))
            rest = buffer[end:]
            start = rest.rfind(b"<message")
            # An incomplete stanza waits for the next read; anything else before it was another kind of stanza.
            self.buffer = rest[start:] if start >= 0 else rest[-len(b"<message") :]

    def is_open(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    async def close(self) -> None:
        try:
            if not self.writer.is_closing():
                self.writer.write(b"</stream:stream>")
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (OSError, TimeoutError):
            pass
