"""imweb federates with a real Prosody 0.12, with s2s STARTTLS off and required (each test runs in both modes).

Prosody finds imweb.localhost through DNS SRV (our loopback DNS server, via its libunbound forwarder) and
authenticates to us by dialback; we reach prosody.localhost through a static route and do the same. The user
side on Prosody is a real c2s client (slixmpp), so what is checked is what people would see.
"""

from __future__ import annotations

import re
import uuid

import pytest
from lxml import etree

from federation.stream import DeliveryError
from tests.interop.conftest import IMWEB, PROSODY_DOMAIN
from tests.interop.harness import ChatClient, Prosody, RunningService
from tests.servers import wait_for

SERVER = "jabber:server"


def message(sender: str, recipient: str, body: str) -> etree._Element:
    stanza = etree.Element(f"{{{SERVER}}}message", nsmap={None: SERVER})
    stanza.set("from", sender)
    stanza.set("to", recipient)
    stanza.set("type", "chat")
    stanza.set("id", uuid.uuid4().hex)
    etree.SubElement(stanza, f"{{{SERVER}}}body").text = body
    return stanza


def test_prosody_user_reaches_our_callback_after_dialback(
    imweb: RunningService, prosody: Prosody, alice: ChatClient, tls_mode: str
) -> None:
    message_id = f"a-{tls_mode}-{uuid.uuid4().hex}"

    alice.send_message(f"bob@{IMWEB}", f"hello bob, over {tls_mode} s2s", message_id)

    found = wait_for(lambda: imweb.received.find(id=message_id), 60, "Alice's message at imweb's on_stanza")
    from_domain, stanza = found  # type: ignore[misc]
    assert from_domain == PROSODY_DOMAIN
    assert stanza.tag == f"{{{SERVER}}}message"
    assert stanza.get("from") == f"alice@{PROSODY_DOMAIN}/phone"
    assert stanza.get("to") == f"bob@{IMWEB}"
    assert stanza.findtext(f"{{{SERVER}}}body") == f"hello bob, over {tls_mode} s2s"
    # Prosody's own account of it: its outbound stream to us was authenticated by dialback, encrypted when required.
    log = prosody.log()
    assert f"Outgoing s2s connection {PROSODY_DOMAIN}->{IMWEB} complete" in log
    s2s_encrypted = re.search(r"\ss2s(in|out)[0-9a-f]+\s+info\s+Stream encrypted", log)
    assert bool(s2s_encrypted) == (tls_mode == "required")


def test_our_message_reaches_the_prosody_user(
    imweb: RunningService, prosody: Prosody, alice: ChatClient, tls_mode: str
) -> None:
    body = f"hello alice, from imweb over {tls_mode} s2s ({uuid.uuid4().hex})"

    imweb.send(message(f"bob@{IMWEB}/web", f"alice@{PROSODY_DOMAIN}", body))

    received = wait_for(
        lambda: next((m for m in list(alice.messages) if m["body"] == body), None), 60, "imweb's message at Alice"
    )
    assert str(received["from"]) == f"bob@{IMWEB}/web"  # type: ignore[index]
    assert received["type"] == "chat"  # type: ignore[index]
    assert f"Incoming s2s connection {IMWEB}->{PROSODY_DOMAIN} complete" in prosody.log()


def test_messages_sent_before_dialback_completes_arrive_in_order(
    imweb: RunningService, alice: ChatClient, tls_mode: str
) -> None:
    tag = uuid.uuid4().hex
    bodies = [f"{tag} #{n}" for n in range(20)]

    async def send_all() -> None:
        # Queue all of them at once: the first ones wait for the stream (or share it), all keep their order.
        futures = [imweb.service.enqueue(message(f"bob@{IMWEB}/web", f"alice@{PROSODY_DOMAIN}", b)) for b in bodies]
        for future in futures:
            await future

    imweb.loop.run(send_all(), timeout=60)

    def arrived() -> list[str] | None:
        seen = [m["body"] for m in list(alice.messages) if m["body"].startswith(tag)]
        return seen if len(seen) == len(bodies) else None

    assert wait_for(arrived, 60, "all 20 messages at Alice") == bodies


def test_message_to_an_unknown_prosody_user_comes_back_as_an_error(
    imweb: RunningService, alice: ChatClient, tls_mode: str
) -> None:
    stanza = message(f"bob@{IMWEB}/web", f"nobody@{PROSODY_DOMAIN}", "is anyone there?")

    imweb.send(stanza)

    found = wait_for(lambda: imweb.received.find(id=stanza.get("id")), 60, "Prosody's error bounce")
    from_domain, bounce = found  # type: ignore[misc]
    assert from_domain == PROSODY_DOMAIN
    assert bounce.get("type") == "error"
    assert bounce.find(f"{{{SERVER}}}error/{{urn:ietf:params:xml:ns:xmpp-stanzas}}service-unavailable") is not None


def test_sending_to_a_domain_nobody_serves_fails_in_plain_words(imweb: RunningService, tls_mode: str) -> None:
    # nowhere.localhost is neither in the static routes nor in the (test) DNS.
    with pytest.raises(DeliveryError) as raised:
        imweb.send(message(f"bob@{IMWEB}/web", "carol@nowhere.localhost", "hello?"), timeout=60)

    assert "nowhere.localhost" in str(raised.value)
