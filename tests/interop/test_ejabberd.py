"""Both directions against a real ejabberd 23.01, with s2s STARTTLS required and off: an imweb user in the web
UI's doors (HTTP forms and the WebSocket) and erin, a slixmpp client on ejabberd.

The counterpart of test_federation_traffic.py (whose helpers it uses) for the other server imweb must federate
with. ejabberd differs from Prosody where it matters to our s2s code: it verifies dialback keys over a separate
short-lived connection (with its own STARTTLS), it sends an empty SASL <mechanisms/> among its features, and it
answers a stanza on an unauthenticated stream with a stream error instead of dropping it (docs/federation.md §7).
The tests of one module run in order on the same two servers: contact, presence, messages and receipts,
typing, then a request and a first message from ejabberd's side.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.interop.conftest import IMWEB
from tests.interop.ejabberd import Ejabberd
from tests.interop.harness import ChatClient, ImwebService, LoopThread, port_accepts
from tests.interop.minidns import MiniDNS
from tests.interop.test_federation_traffic import CHATSTATES, WAIT, ImwebUser, ProsodyUser, contact_row
from tests.scaled.site import Person
from tests.servers import BASE_DIR, Service, free_port, wait_for

EJABBERD_DOMAIN = "ejabberd.localhost"
ERIN = f"erin@{EJABBERD_DOMAIN}"
ERIN_PASSWORD = "erin's secret"
BOB = f"bob@{IMWEB}"
CAROL = f"carol@{IMWEB}"


@pytest.fixture(scope="session")
def ejabberd_installed() -> None:
    """Install ejabberd with the project's own script when it is missing."""
    if not Ejabberd.installed():
        subprocess.run(["bash", str(BASE_DIR / "tests" / "install-system-deps.sh")], check=True, timeout=900)
    assert Ejabberd.installed(), "ejabberd is not installed; run tests/install-system-deps.sh as root"


@pytest.fixture(scope="module")
def ejabberd(
    ejabberd_installed: None, tls_mode: str, dns: MiniDNS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ejabberd]:
    server = Ejabberd(
        tmp_path_factory.mktemp(f"ejabberd-{tls_mode}"),
        domain=EJABBERD_DOMAIN,
        tls=tls_mode,
        dns_port=dns.port,
        c2s_port=free_port(),
        s2s_port=free_port(),
    )
    dns.publish_xmpp_server(EJABBERD_DOMAIN, server.s2s_port)
    server.start()
    server.register("erin", ERIN_PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def imweb_beside_ejabberd(
    dns: MiniDNS, ejabberd: Ejabberd, tls_mode: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ImwebService]:
    """The whole imweb for imweb.localhost, as conftest's `imweb_service` but with ejabberd as the peer."""
    s2s_port = free_port()
    env = {
        "IMWEB_DOMAIN": IMWEB,
        "IMWEB_S2S_PORT": str(s2s_port),
        "IMWEB_S2S_BIND": "127.0.0.1",
        "IMWEB_S2S_TLS": tls_mode,
        "IMWEB_S2S_PEERS": f"{EJABBERD_DOMAIN}=127.0.0.1:{ejabberd.s2s_port}",
        "IMWEB_DNS_SERVER": f"127.0.0.1:{dns.port}",  # never the system's: these tests stay on loopback
        "IMWEB_DIALBACK_SECRET": "interop dialback secret",
    }
    dns.publish_xmpp_server(IMWEB, s2s_port)
    # ejabberd resolves an SRV target with the system's resolver, not ours (docs/federation.md §2): name one it knows.
    dns.set(f"_xmpp-server._tcp.{IMWEB}", "SRV", f"0 5 {s2s_port} localhost.")
    service = Service(tmp_path_factory.mktemp(f"imweb-ejabberd-{tls_mode}"), env=env).start()
    # ejabberd bounces for a while after a failed connect (s2s_max_retry_delay): listen before it dials us.
    wait_for(lambda: port_accepts(s2s_port), 60, f"imweb's s2s listener on port {s2s_port}")
    yield ImwebService(service, s2s_port)
    service.stop()


@pytest.fixture(scope="module")
def erin(loop_thread: LoopThread, ejabberd: Ejabberd) -> Iterator[ProsodyUser]:
    """erin's client on ejabberd (the traffic test's XMPP user wrapper; nothing in it is Prosody's own)."""
    client = ChatClient(loop_thread, f"{ERIN}/laptop", ERIN_PASSWORD, ejabberd.c2s_port, receipts=True)
    user = ProsodyUser(client)
    client.connect()
    loop_thread.run(user.listen())
    yield user
    client.disconnect()


def _imweb_user(service: ImwebService, username: str) -> Iterator[ImwebUser]:
    person = Person(service.service.url, username).sign_up()
    socket = person.open_socket()
    yield ImwebUser(person, socket)
    socket.close()
    person.close()


@pytest.fixture(scope="module")
def bob(imweb_beside_ejabberd: ImwebService) -> Iterator[ImwebUser]:
    yield from _imweb_user(imweb_beside_ejabberd, "bob")


@pytest.fixture(scope="module")
def carol(imweb_beside_ejabberd: ImwebService) -> Iterator[ImwebUser]:
    yield from _imweb_user(imweb_beside_ejabberd, "carol")


def accepted_dialback(log: str, transport: str, direction: str, originating: str, receiving: str) -> bool:
    """Whether ejabberd's log says it accepted dialback for originating -> receiving over `transport` (tls|tcp)."""
    line = rf"\({transport}\|<[^>]+>\) Accepted {direction} s2s dialback authentication {originating} -> {receiving} "
    return re.search(line.replace(".", r"\."), log) is not None


def test_an_imweb_user_adds_an_ejabberd_user_who_accepts_and_both_see_presence(bob, erin, ejabberd, tls_mode):
    added = bob.person.post("/contacts/add", {"jid": ERIN})
    assert added.status_code == 200, added.text

    # erin's client approves and asks back; her request lands in bob's Requests, and he accepts it.
    bob.until(r'aria-label="Accept erin@ejabberd\.localhost"', "erin's request in bob's Requests")
    accepted = bob.person.post("/contacts/accept", {"jid": ERIN})
    assert accepted.status_code == 200, accepted.text

    frame = bob.until(contact_row(ERIN, "available"), "erin available in bob's contacts")
    assert 'class="badge badge--network"' in frame and ">ejabberd.localhost<" in frame
    wait_for(lambda: (BOB, "available") in erin.presences, WAIT, "bob's presence at erin's client")

    # Both directions were authenticated by dialback, over TLS when it is required; ejabberd logs the transport.
    transport = "tls" if tls_mode == "required" else "tcp"
    log = ejabberd.log()
    assert accepted_dialback(log, transport, "inbound", IMWEB, EJABBERD_DOMAIN), log[-3000:]
    assert accepted_dialback(log, transport, "outbound", EJABBERD_DOMAIN, IMWEB), log[-3000:]


def test_messages_both_ways_and_a_receipt_comes_back(bob, erin, imweb_beside_ejabberd):
    client_id = str(uuid.uuid4())
    bob.send({"type": "message.send", "to": ERIN, "body": "Hello from imweb", "client_id": client_id})

    wait_for(lambda: any("Hello from imweb" in xml for xml in erin.messages_from(BOB)), WAIT, "bob's message")
    [xml] = [xml for xml in erin.messages_from(BOB) if "Hello from imweb" in xml]
    assert f'<origin-id xmlns="urn:xmpp:sid:0" id="{client_id}"' in xml.replace("'", '"')

    # erin's client acknowledged it (XEP-0184): the hop of bob's message is "delivered".
    query = (
        "from federation.models import OutboxItem;"
        f"print(OutboxItem.objects.get(message__client_id='{client_id}').state)"
    )
    # (the shell prints a banner first: the answer is its last line)
    wait_for(lambda: imweb_beside_ejabberd.django(query).split()[-1] == "delivered", WAIT, "the receipt", interval=1)

    erin.client.send_message(BOB, "Hello from ejabberd", "e-1")
    bob.until(r"Hello from ejabberd", "erin's message in bob's conversation list")


def test_typing_both_ways(bob, erin):
    bob.send({"type": "sync"})
    frame = bob.until(r'data-conversation="\d+"', "bob's conversation list")
    conversation = int(re.search(r'data-conversation="(\d+)"', frame).group(1))
    bob.send({"type": "conversation.open", "conversation": conversation})

    erin.send_raw(f"<message to='{BOB}' type='chat'><composing xmlns='{CHATSTATES}'/></message>")
    bob.until(rf'id="typing-{conversation}"[^>]*>erin is typing', "erin typing at bob's socket")

    bob.send({"type": "typing.started", "conversation": conversation})
    wait_for(lambda: BOB in erin.composing, WAIT, "bob typing at erin's client")


def test_the_ejabberd_user_asks_first_and_lands_in_requests(carol, erin):
    async def subscribe() -> None:
        assert erin.client.xmpp is not None
        erin.client.xmpp.send_presence(pto=CAROL, ptype="subscribe")

    erin.loop.run(subscribe())

    frame = carol.until(r'aria-label="Accept erin@ejabberd\.localhost"', "erin's request in carol's Requests")
    assert 'id="requests"' in frame
    assert not re.search(contact_row(ERIN, r"[a-z]+"), frame)  # a request, not (yet) a contact


def test_a_first_message_from_an_ejabberd_stranger_waits_in_requests(carol, erin):
    erin.client.send_message(CAROL, "Hi, we have not met", "stranger-1")

    frame = carol.until(r'data-request="1"', "erin's message as a request in carol's conversation list")
    assert "Hi, we have not met" in frame
