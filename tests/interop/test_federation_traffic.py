"""Both directions against a real Prosody, with STARTTLS required and off: an imweb user in the web UI's doors
(HTTP forms and the WebSocket, as the browser uses them) and alice, a slixmpp client on Prosody.

The whole imweb service runs as `make run` starts it. slixmpp's roster defaults are those of a typical client:
it approves a subscription request and asks back (auto_authorize, auto_subscribe), and it answers receipt
requests (XEP-0184). The tests of one module run in order on the same two servers: contact, presence,
messages and receipts, typing, then a request from Prosody's side.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
from websockets.sync.client import ClientConnection

from tests.interop.conftest import ALICE_PASSWORD, IMWEB, PROSODY_DOMAIN
from tests.interop.harness import ChatClient, ImwebService, LoopThread, Prosody
from tests.scaled.site import Person, receive_until
from tests.servers import wait_for

ALICE = f"alice@{PROSODY_DOMAIN}"
BOB = f"bob@{IMWEB}"
CAROL = f"carol@{IMWEB}"
CHATSTATES = "http://jabber.org/protocol/chatstates"
WAIT = 60  # seconds: the first stanza each way opens (and for TLS, encrypts) an s2s stream


@dataclass
class ProsodyUser:
    """alice's slixmpp client, plus the presence stanzas it received (filled on the client's loop)."""

    client: ChatClient
    presences: list[tuple[str, str]] = field(default_factory=list)  # (bare from, type)
    composing: list[str] = field(default_factory=list)  # bare JIDs whose XEP-0085 <composing/> arrived

    @property
    def loop(self) -> LoopThread:
        return self.client.loop

    def record_presence(self, presence: object) -> None:
        self.presences.append((presence["from"].bare, presence["type"]))  # type: ignore[index]

    def record_composing(self, message: object) -> None:
        self.composing.append(message["from"].bare)  # type: ignore[index]

    async def listen(self) -> None:
        """Record presence, and chat states (slixmpp's own 'message' event only fires for messages with a body)."""
        xmpp = self.client.xmpp
        assert xmpp is not None
        xmpp.add_event_handler("presence", self.record_presence)
        matcher = MatchXPath(f"{{jabber:client}}message/{{{CHATSTATES}}}composing")
        xmpp.register_handler(Callback("composing", matcher, self.record_composing))

    def send_raw(self, xml: str) -> None:
        async def send() -> None:
            assert self.client.xmpp is not None
            self.client.xmpp.send_raw(xml)

        self.loop.run(send())

    def messages_from(self, jid: str) -> list[str]:
        """The XML of every message alice got from `jid`."""
        return [str(m) for m in list(self.client.messages) if m["from"].bare == jid]


@dataclass
class ImwebUser:
    person: Person
    socket: ClientConnection

    def until(self, pattern: str, what: str, timeout: float = WAIT) -> str:
        """The first WebSocket frame matching the regex `pattern`."""
        return receive_until(self.socket, lambda frame: re.search(pattern, frame) is not None, timeout, what)

    def send(self, frame: dict[str, object]) -> None:
        self.socket.send(json.dumps(frame))


def contact_row(jid: str, show: str) -> str:
    return rf'data-jid="{re.escape(jid)}" data-show="{show}"'


@pytest.fixture(scope="module")
def alice_client(loop_thread: LoopThread, prosody: Prosody) -> Iterator[ProsodyUser]:
    client = ChatClient(loop_thread, f"{ALICE}/phone", ALICE_PASSWORD, prosody.c2s_port, receipts=True)
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
def bob(imweb_service: ImwebService) -> Iterator[ImwebUser]:
    yield from _imweb_user(imweb_service, "bob")


@pytest.fixture(scope="module")
def carol(imweb_service: ImwebService) -> Iterator[ImwebUser]:
    yield from _imweb_user(imweb_service, "carol")


def test_an_imweb_user_adds_a_prosody_user_who_accepts_and_both_see_presence(bob, alice_client):
    added = bob.person.post("/contacts/add", {"jid": ALICE})
    assert added.status_code == 200, added.text

    # alice's client approves and asks back; her request lands in bob's Requests, and he accepts it.
    bob.until(r'aria-label="Accept alice@prosody\.localhost"', "alice's request in bob's Requests")
    accepted = bob.person.post("/contacts/accept", {"jid": ALICE})
    assert accepted.status_code == 200, accepted.text

    # bob sees alice available, with the network badge naming her server.
    frame = bob.until(contact_row(ALICE, "available"), "alice available in bob's contacts")
    assert re.search(r'class="badge badge--network"[^>]*>prosody\.localhost<', frame)
    # alice sees bob available (his open socket makes him online).
    wait_for(lambda: (BOB, "available") in alice_client.presences, WAIT, "bob's presence at alice's client")


def test_messages_both_ways_and_a_receipt_comes_back(bob, alice_client, imweb_service):
    client_id = str(uuid.uuid4())
    bob.send({"type": "message.send", "to": ALICE, "body": "Hello from imweb", "client_id": client_id})

    wait_for(lambda: any("Hello from imweb" in xml for xml in alice_client.messages_from(BOB)), WAIT, "bob's message")
    [xml] = [xml for xml in alice_client.messages_from(BOB) if "Hello from imweb" in xml]
    assert f'<origin-id xmlns="urn:xmpp:sid:0" id="{client_id}"' in xml.replace("'", '"')

    # alice's client acknowledged it (XEP-0184): the hop of bob's message is "delivered".
    query = (
        "from federation.models import OutboxItem;"
        f"print(OutboxItem.objects.get(message__client_id='{client_id}').state)"
    )
    # (the shell prints a banner first: the answer is its last line)
    wait_for(lambda: imweb_service.django(query).split()[-1] == "delivered", WAIT, "the receipt", interval=1)

    alice_client.client.send_message(BOB, "Hello from Prosody", "p-1")
    bob.until(r"Hello from Prosody", "alice's message in bob's conversation list")


def test_typing_both_ways(bob, alice_client):
    bob.send({"type": "sync"})
    frame = bob.until(r'data-conversation="\d+"', "bob's conversation list")
    conversation = int(re.search(r'data-conversation="(\d+)"', frame).group(1))
    bob.send({"type": "conversation.open", "conversation": conversation})

    alice_client.send_raw(f"<message to='{BOB}' type='chat'><composing xmlns='{CHATSTATES}'/></message>")
    bob.until(rf'id="typing-{conversation}"[^>]*>alice is typing', "alice typing at bob's socket")

    bob.send({"type": "typing.started", "conversation": conversation})
    wait_for(lambda: BOB in alice_client.composing, WAIT, "bob typing at alice's client")


def test_the_prosody_user_asks_first_and_lands_in_requests(carol, alice_client):
    async def subscribe() -> None:
        assert alice_client.client.xmpp is not None
        alice_client.client.xmpp.send_presence(pto=CAROL, ptype="subscribe")

    alice_client.loop.run(subscribe())

    frame = carol.until(r'aria-label="Accept alice@prosody\.localhost"', "alice's request in carol's Requests")
    assert 'id="requests"' in frame
    assert not re.search(contact_row(ALICE, r"[a-z]+"), frame)  # a request, not (yet) a contact


def test_a_first_message_from_a_prosody_stranger_waits_in_requests(carol, alice_client):
    alice_client.client.send_message(CAROL, "Hi, we have not met", "stranger-1")

    frame = carol.until(r'data-request="1"', "alice's message as a request in carol's conversation list")
    assert "Hi, we have not met" in frame
