"""Federation keeps working through bad peers and long outages, against a real Prosody beside the whole service:

- a peer that accepts TCP and never speaks, and one that trickles a byte at a time, are timed out at the
  handshake limit (outbound: the sender's hop says why; inbound: a `connection-timeout` stream error) while
  messages to and from Prosody flow as usual meanwhile;
- messages sent during a long Prosody outage, with our federation process killed (SIGKILL) and brought back
  by the supervisor meanwhile, all reach Prosody afterwards, in order, once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.conftest import (  # noqa: F401  (fixtures used by name)
    ALICE_PASSWORD,
    IMWEB,
    PROSODY_DOMAIN,
    dns,
    loop_thread,
    prosody,
    prosody_installed,
)
from tests.interop.harness import ChatClient, ImwebService, LoopThread, Prosody
from tests.interop.minidns import MiniDNS
from tests.servers import Service, free_port, wait_for

pytestmark = pytest.mark.e2e

# Long enough for the checks made while the bad peers hang (each reads the database in a `manage.py shell`).
HANDSHAKE_SECONDS = 20
ALICE = f"alice@{PROSODY_DOMAIN}"
SILENT, TRICKLE = "silent.localhost", "trickle.localhost"
OUTAGE_COUNT = 20

SETUP = """
from accounts.models import User
User.objects.create_user("bob", "bob@example.org", "correct horse battery staple")
"""

SEND = """
import uuid
from django.conf import settings
from accounts.models import User
from chat.actions import send_message
settings.IMWEB_MESSAGE_RATE_LIMITS = ((1000, 1),)  # one person sending a burst, on purpose
bob = User.objects.get(username="bob")
for to, body in {sends!r}:
    send_message(bob, to=to, body=body, client_id=uuid.uuid4())
"""

# The outbox rows of bob's messages, by body, and what imweb stored from Alice.
STATE = """
import json
from federation.models import OutboxItem
from chat.models import Message
rows = OutboxItem.objects.filter(kind="message").select_related("message").order_by("id")
print(json.dumps({
    "outbox": [
        {"body": r.message.body, "domain": r.recipient.split("@")[-1], "state": r.state, "attempts": r.attempts,
         "error": r.error}
        for r in rows if r.message is not None
    ],
    "from_alice": list(Message.objects.filter(sender_jid=ALICE).values_list("body", flat=True)),
}))
""".replace("ALICE", repr(ALICE))


class HangingPeer:
    """A TCP server on loopback that accepts connections and then says nothing (`trickle=False`) or writes one
    byte of a stream header about every 0.3 s (`trickle=True`: 140 bytes, so longer than the handshake limit).
    Bounded: it stops at `stop()` or after 5 minutes."""

    def __init__(self, *, trickle: bool) -> None:
        self.trickle = trickle
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connections: dict[socket.socket, int] = {}  # each connection → how much of the header it has had
        header = (
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
            b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        )
        deadline = time.monotonic() + 300
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                connection, _ = self.listener.accept()
                connections[connection] = 0
                self.accepted += 1
            except TimeoutError:
                pass
            if not self.trickle:
                continue
            for connection, sent in list(connections.items()):
                try:
                    connection.sendall(header[sent : sent + 1])  # after the whole header: nothing more, ever
                    connections[connection] = sent + 1
                except OSError:
                    del connections[connection]
            self.stopping.wait(0.1)
        for connection in connections:
            connection.close()
        self.listener.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def tls_mode() -> str:
    return "required"


@pytest.fixture(scope="module")
def prosody_offline() -> bool:
    return True  # Prosody keeps what arrives for Alice while her client is not connected


@pytest.fixture(scope="module")
def hanging() -> Iterator[dict[str, HangingPeer]]:
    peers = {SILENT: HangingPeer(trickle=False), TRICKLE: HangingPeer(trickle=True)}
    yield peers
    for peer in peers.values():
        peer.stop()


@pytest.fixture(scope="module")
def service(
    dns: MiniDNS,  # noqa: F811
    prosody: Prosody,  # noqa: F811
    hanging: dict[str, HangingPeer],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ImwebService]:
    s2s_port = free_port()
    routes = {PROSODY_DOMAIN: prosody.s2s_port, **{domain: peer.port for domain, peer in hanging.items()}}
    env = {
        "IMWEB_DOMAIN": IMWEB,
        "IMWEB_S2S_PORT": str(s2s_port),
        "IMWEB_S2S_BIND": "127.0.0.1",
        "IMWEB_S2S_TLS": "required",
        "IMWEB_S2S_PEERS": ",".join(f"{domain}=127.0.0.1:{port}" for domain, port in routes.items()),
        "IMWEB_DNS_SERVER": f"127.0.0.1:{dns.port}",  # never the system's: these tests stay on loopback
        "IMWEB_DIALBACK_SECRET": "interop dialback secret",
        "IMWEB_S2S_HANDSHAKE_TIMEOUT": str(HANDSHAKE_SECONDS),
    }
    dns.publish_xmpp_server(IMWEB, s2s_port)
    running = Service(Path(tmp_path_factory.mktemp("imweb-faults-federation")), env=env).start()
    imweb = ImwebService(running, s2s_port)
    imweb.django(SETUP)
    yield imweb
    assert running.stop() == 0, running.log()[-4000:]


def state(imweb: ImwebService) -> dict:
    return json.loads(imweb.django(STATE).strip().splitlines()[-1])


def rows(imweb: ImwebService, domain: str) -> list[dict]:
    return [row for row in state(imweb)["outbox"] if row["domain"] == domain]


def hold_open(port: int, *, trickle: bool) -> tuple[threading.Thread, dict[str, object]]:
    """A client on our s2s port that never completes a stream: silent, or a byte every 0.3 s. The result holds
    what our server wrote and how long it kept the connection open."""
    result: dict[str, object] = {}

    def run() -> None:
        began = time.monotonic()
        received = b""
        with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_SECONDS * 4) as sock:
            sock.settimeout(0.3 if trickle else HANDSHAKE_SECONDS * 4)
            header = f"<?xml version='1.0'?><stream:stream to='{IMWEB}' xmlns='jabber:server'".encode()
            position = 0
            while time.monotonic() - began < HANDSHAKE_SECONDS * 4:
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    if trickle:
                        try:
                            sock.sendall(header[position % len(header) : position % len(header) + 1])
                        except OSError:
                            break
                        position += 1
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                received += chunk
        result.update(seconds=time.monotonic() - began, received=received.decode(errors="replace"))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_silent_and_trickling_peers_time_out_while_prosody_traffic_flows_both_ways(
    service: ImwebService,
    hanging: dict[str, HangingPeer],
    loop_thread: LoopThread,  # noqa: F811
    prosody: Prosody,  # noqa: F811
) -> None:
    alice = ChatClient(loop_thread, f"{ALICE}/phone", ALICE_PASSWORD, prosody.c2s_port).connect()
    try:
        sends = [(f"x@{SILENT}", "to the silent peer"), (f"y@{TRICKLE}", "to the trickling peer")]
        sends.append((ALICE, "to alice"))
        service.django(SEND.format(sends=sends))

        # Alice gets hers while our connections to the two bad peers are still waiting on them.
        wait_for(lambda: any(m["body"] == "to alice" for m in list(alice.messages)), 30, "the message at Alice", 0.2)
        outbox = state(service)["outbox"]
        for domain, peer in hanging.items():
            assert peer.accepted >= 1, f"imweb never tried {domain}"
            [row] = [row for row in outbox if row["domain"] == domain]
            assert row["state"] in {"queued", "sending"} and row["error"] == "", row  # still in its first attempt
        # Two connections to our listener that will never complete a stream, held open while Prosody talks.
        inbound = {
            "silent": hold_open(service.s2s_port, trickle=False),
            "trickle": hold_open(service.s2s_port, trickle=True),
        }
        # And the other way: Alice's message reaches imweb meanwhile.
        alice.send_message(f"bob@{IMWEB}", "from alice", "alice-1")
        wait_for(lambda: "from alice" in state(service)["from_alice"], 30, "Alice's message stored at imweb", 0.5)
        for name, (thread, result) in inbound.items():
            assert thread.is_alive(), f"the {name} inbound connection ended early: {result}"

        # Then each bad peer is given up on at the handshake limit, with the reason on the sender's side ...
        for domain in (SILENT, TRICKLE):
            reason = f"{domain} did not complete the connection and dialback within {HANDSHAKE_SECONDS} s"
            seen: list[dict] = []

            def failed_with_reason(domain: str = domain, reason: str = reason, seen: list[dict] = seen) -> bool:
                seen[:] = rows(service, domain)
                return any(reason in row["error"] for row in seen)

            try:
                wait_for(failed_with_reason, HANDSHAKE_SECONDS * 4, f"the {domain} hop saying it timed out", 0.5)
            except TimeoutError as exc:
                raise AssertionError(f"{exc}: {seen}") from None
        # ... and our listener closes the connections that never completed, with a stream error saying why.
        for name, (thread, result) in inbound.items():
            thread.join(HANDSHAKE_SECONDS * 4)
            assert not thread.is_alive(), f"the {name} inbound connection was never closed"
            assert "connection-timeout" in str(result["received"]), (name, result)
            assert float(result["seconds"]) < HANDSHAKE_SECONDS * 3, (name, result)  # type: ignore[arg-type]
        assert [m["body"] for m in list(alice.messages) if m["body"]].count("to alice") == 1
    finally:
        alice.disconnect()


def test_a_long_outage_with_our_federation_process_killed_meanwhile_delivers_everything_in_order_once(
    service: ImwebService,
    loop_thread: LoopThread,  # noqa: F811
    prosody: Prosody,  # noqa: F811
) -> None:
    prosody.stop()
    expected = [f"outage {n:02d}" for n in range(OUTAGE_COUNT)]
    service.django(SEND.format(sends=[(ALICE, body) for body in expected]))

    def waiting_with_a_failure() -> bool:
        mine = [row for row in rows(service, PROSODY_DOMAIN) if row["body"].startswith("outage")]
        return len(mine) == OUTAGE_COUNT and all(r["state"] == "queued" and r["attempts"] >= 1 for r in mine)

    wait_for(waiting_with_a_failure, 90, "every message queued with a failed attempt", 1.0)

    record = service.service.var_dir / "supervisor.json"
    killed = json.loads(record.read_text())["children"]["federation"]["pid"]
    os.kill(killed, signal.SIGKILL)

    def federation_back() -> bool:
        child = json.loads(record.read_text())["children"]["federation"]
        return child["state"] == "running" and child["pid"] != killed

    wait_for(federation_back, 30, "the federation process restarted by the supervisor", 0.2)

    prosody.start()
    alice = ChatClient(loop_thread, f"{ALICE}/laptop", ALICE_PASSWORD, prosody.c2s_port).connect()
    try:
        service.django(f"from federation.policy import retry_now; retry_now('{PROSODY_DOMAIN}')")

        def bodies() -> list[str]:
            return [str(m["body"]) for m in list(alice.messages) if str(m["body"]).startswith("outage")]

        wait_for(lambda: len(bodies()) >= OUTAGE_COUNT, 90, f"{OUTAGE_COUNT} messages at Alice", 0.2)
        assert bodies() == expected  # in order, none twice

        def handed_over() -> bool:
            mine = [row for row in rows(service, PROSODY_DOMAIN) if row["body"].startswith("outage")]
            return all(row["state"] != "queued" for row in mine)

        wait_for(handed_over, 30, "every outbox row past queued", 0.5)
        assert bodies() == expected  # still none twice once everything settled
    finally:
        alice.disconnect()
