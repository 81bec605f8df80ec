"""Files between imweb and a real Prosody 0.12 (s2s plain: the file path does not depend on the stream's TLS).

The whole imweb service runs as `make run` starts it, its IMWEB_SITE_URL the address it serves, so the links it
gives out are the ones the other side fetches; alice is a slixmpp client on Prosody. One way, bob uploads a
picture and sends it to alice: her client gets a XEP-0066 link (and the URL as the body, as Conversations and
Dino show files) and fetches the same bytes over HTTP, with no imweb session. The other way, alice shares a
file by link: bob sees it as a card, and it is fetched (here from a loopback server, which the service is told
to allow with IMWEB_FETCH_ALLOW_NETWORKS) only when he opens it. Beside the files, alice's client asks imweb
itself what a client asks a server it has never met: a ping, and what it is and where to report abuse.
"""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree

import pytest
from PIL import Image
from websockets.sync.client import ClientConnection

from tests.interop.conftest import ALICE_PASSWORD, IMWEB, PROSODY_DOMAIN
from tests.interop.harness import ChatClient, ImwebService, LoopThread, Prosody
from tests.interop.minidns import MiniDNS
from tests.scaled.site import Person, receive_until
from tests.servers import Service, free_port, wait_for

ALICE = f"alice@{PROSODY_DOMAIN}"
BOB = f"bob@{IMWEB}"
OOB = "jabber:x:oob"
WAIT = 60  # seconds: the first stanza each way opens an s2s stream


def picture(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def tls_mode() -> str:
    return "off"


@pytest.fixture(scope="module")
def shared_from_prosody() -> Iterator[tuple[str, bytes, list[str]]]:
    """A loopback web server standing in for Prosody's HTTP upload service: (its URL of one picture, the
    picture's bytes, the paths requested so far)."""
    data, hits = picture((20, 120, 200)), []

    class Upload(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200 if self.path == "/upload/k3/beach.png" else 404)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Upload)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/upload/k3/beach.png", data, hits
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def imweb_service(dns: MiniDNS, prosody: Prosody, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImwebService]:
    """The whole imweb beside Prosody; the links it gives out start with the address it serves."""
    s2s_port, web_port = free_port(), free_port()
    env = {
        "IMWEB_DOMAIN": IMWEB,
        "IMWEB_SITE_URL": f"http://127.0.0.1:{web_port}",
        "IMWEB_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",  # the stand-in upload server above is on loopback
        "IMWEB_S2S_PORT": str(s2s_port),
        "IMWEB_S2S_BIND": "127.0.0.1",
        "IMWEB_S2S_TLS": "off",
        "IMWEB_S2S_PEERS": f"{PROSODY_DOMAIN}=127.0.0.1:{prosody.s2s_port}",
        "IMWEB_DNS_SERVER": f"127.0.0.1:{dns.port}",
        "IMWEB_DIALBACK_SECRET": "interop dialback secret",
        "IMWEB_ABUSE_ADDRESSES": f"mailto:abuse@{IMWEB}",
    }
    dns.publish_xmpp_server(IMWEB, s2s_port)
    service = Service(tmp_path_factory.mktemp("imweb-files"), port=web_port, env=env).start()
    yield ImwebService(service, s2s_port)
    service.stop()


@pytest.fixture(scope="module")
def people(
    imweb_service: ImwebService, loop_thread: LoopThread, prosody: Prosody
) -> Iterator[tuple[Person, ClientConnection, ChatClient]]:
    """bob on imweb (signed in, socket open) and alice's client on Prosody."""
    bob = Person(imweb_service.service.url, "bob").sign_up()
    socket = bob.open_socket()
    alice = ChatClient(loop_thread, f"{ALICE}/phone", ALICE_PASSWORD, prosody.c2s_port).connect()
    yield bob, socket, alice
    alice.disconnect()
    socket.close()
    bob.close()


def test_a_picture_bob_sends_reaches_alice_as_a_link_her_client_fetches(people):
    bob, socket, alice = people
    data = picture((220, 60, 30))
    bob.http.get("/")  # the csrftoken cookie, as the page has it
    uploaded = bob.http.post(
        "/files/",
        files={"file": ("sunset.png", data, "image/png")},
        headers={"X-CSRFToken": bob.http.cookies["csrftoken"]},
    )
    assert uploaded.status_code == 201, uploaded.text

    socket.send(
        json.dumps(
            {
                "type": "message.send",
                "to": ALICE,
                "body": "",
                "client_id": str(uuid.uuid4()),
                "attachments": [uploaded.json()["token"]],
            }
        )
    )

    def arrived() -> str | None:
        return next((str(m) for m in list(alice.messages) if m["from"].bare == BOB and "sunset.png" in str(m)), None)

    xml = wait_for(arrived, WAIT, "bob's picture at alice's client")
    [url] = re.findall(rf"<x xmlns=.{re.escape(OOB)}.><url>([^<]+)</url>", xml)
    assert re.search(rf"<body>{re.escape(url)}</body>", xml)  # one file, no text: the body is the link
    assert url.startswith(f"{bob.base_url}/files/s/") and uploaded.json()["token"] not in url.split("/")
    # alice's client opens the link as any client would: no imweb session, just the URL.
    with urllib.request.urlopen(url, timeout=15) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.read() == data


def test_a_file_alice_shares_by_link_shows_as_a_card_and_is_fetched_when_bob_opens_it(
    people, shared_from_prosody, imweb_service
):
    bob, socket, alice = people
    url, data, hits = shared_from_prosody

    async def send() -> None:
        assert alice.xmpp is not None
        message = alice.xmpp.make_message(mto=BOB, mbody=f"from the beach\n{url}", mtype="chat")
        message["id"] = "oob-1"
        message.xml.append(_oob(url))
        message.send()

    alice.loop.run(send())

    # It reaches bob's list live, and the conversation's page shows it with its card (the conversation may be
    # the one the previous test opened, so the row alone does not say this message arrived: the page does).
    frame = receive_until(socket, lambda f: 'class="convrow' in f and ALICE in f, WAIT, "alice's message in bob's list")
    conversation = re.search(r'data-conversation="(\d+)"', frame).group(1)
    page = wait_for(
        lambda: (
            (answer := bob.http.get(f"/c/{conversation}/")).status_code == 200 and "beach.png" in answer.text and answer
        ),
        WAIT,
        "alice's shared file on bob's page",
    )
    [card] = re.findall(r'<a class="attachment attachment--file attachment--remote[^"]*" href="([^"]+)"', page.text)
    assert re.search(r'attachment__name">beach\.png<', page.text)
    assert re.search(r"Picture on 127\.0\.0\.1", page.text)
    assert "from the beach" in page.text and url not in page.text  # the link is the card, not text
    query = (
        "from chat.models import Attachment;"
        f"a = Attachment.objects.get(remote_url='{url}');"
        "print(a.token, a.name, a.size, bool(a.file))"
    )
    token, name, size, stored = imweb_service.django(query).split()[-4:]
    assert (name, size, stored) == ("beach.png", "0", "False")
    assert hits == []  # nothing fetched until someone opens it

    assert card == f"/files/{token}/{name}"
    opened = bob.http.get(card)

    assert opened.status_code == 200, opened.text
    assert opened.content == data
    assert hits == ["/upload/k3/beach.png"]


def _oob(url: str):
    from slixmpp.xmlstream import ET

    x = ET.Element(f"{{{OOB}}}x")
    ET.SubElement(x, f"{{{OOB}}}url").text = url
    return x


def test_alice_s_client_pings_imweb_and_reads_what_it_is_and_where_to_report_abuse(people):
    _, _, alice = people
    disco = "http://jabber.org/protocol/disco#info"

    async def ask() -> tuple[ElementTree.Element, ElementTree.Element]:
        assert alice.xmpp is not None
        ping = alice.xmpp.make_iq_get(ito=IMWEB)
        ping.xml.append(ElementTree.Element("{urn:xmpp:ping}ping"))
        pong = await ping.send(timeout=WAIT)
        info = await alice.xmpp.make_iq_get(queryxmlns=disco, ito=IMWEB).send(timeout=WAIT)
        return pong.xml, info.xml

    pong, info = alice.loop.run(ask(), timeout=2 * WAIT)
    assert pong.get("type") == "result" and pong.get("from") == IMWEB
    identity = info.find(f"{{{disco}}}query/{{{disco}}}identity")
    assert (identity.get("category"), identity.get("type")) == ("server", "im")
    features = {f.get("var") for f in info.findall(f"{{{disco}}}query/{{{disco}}}feature")}
    assert {"urn:xmpp:ping", "jabber:x:oob"} <= features
    values = [v.text for v in info.iter("{jabber:x:data}value")]
    assert f"mailto:abuse@{IMWEB}" in values
