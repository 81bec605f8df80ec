"""Denying a domain at the transport, between two in-process services on loopback: a denied server is refused at
dialback with <policy-violation/> (its stanzas never reach us), our streams with it are closed when the denial
arrives, and nothing of ours leaves for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from federation.service import FederationService
from federation.stream import DeliveryError
from tests.federation.conftest import running_pair
from tests.interop.harness import LoopThread, RawPeer, RunningService
from tests.servers import wait_for

SERVER = "jabber:server"
REASON = "federation with a.localhost is disabled by this server's operator"


@pytest.fixture
def pair(loop: LoopThread, tmp_path: Path) -> Iterator[tuple[RunningService, RunningService]]:
    yield from running_pair(loop, tmp_path, "a.localhost", "b.localhost")


def chat(sender: str, recipient: str, n: int) -> etree._Element:
    stanza = etree.Element(f"{{{SERVER}}}message", nsmap={None: SERVER}, to=recipient, id=f"n{n}")
    stanza.set("from", sender)
    etree.SubElement(stanza, f"{{{SERVER}}}body").text = f"body {n}"
    return stanza


def test_a_denied_server_is_refused_at_dialback_with_policy_violation(
    pair: tuple[RunningService, RunningService],
) -> None:
    a, b = pair
    b.service.denied = {"a.localhost"}

    with pytest.raises(DeliveryError, match="policy-violation") as refused:
        a.send(chat("x@a.localhost", "y@b.localhost", 1), timeout=30)

    assert "disabled by this server's operator" in str(refused.value)  # the peer's operator reads why
    assert b.received.items == []


def test_raw_peer_claiming_a_denied_domain_gets_the_stream_error(
    pair: tuple[RunningService, RunningService],
) -> None:
    _, b = pair
    b.service.denied = {"a.localhost"}
    peer = RawPeer(b.service.port)
    try:
        peer.open(from_="a.localhost", to="b.localhost")
        peer.send(b"<db:result from='a.localhost' to='b.localhost'>0123</db:result>")
        assert peer.stream_error() == "policy-violation"
    finally:
        peer.close()


def test_denying_closes_open_streams_and_stops_our_sending(pair: tuple[RunningService, RunningService]) -> None:
    a, b = pair
    a.send(chat("x@a.localhost", "y@b.localhost", 1), timeout=30)
    b.send(chat("y@b.localhost", "x@a.localhost", 2), timeout=30)
    wait_for(lambda: b.received.find(id="n1") and a.received.find(id="n2"), 10, "both directions working")
    assert any("a.localhost" in stream.authenticated for stream in b.service.inbound)
    states: list[tuple[str, dict[str, object]]] = []
    b.service.state_listener = lambda domain, **fields: states.append((domain, fields))

    b.service.denied = {"a.localhost"}
    b.loop.run(_close(b.service))

    wait_for(
        lambda: not any("a.localhost" in stream.authenticated for stream in b.service.inbound), 10, "inbound closed"
    )
    assert "a.localhost" not in b.service.pool.streams
    with pytest.raises(DeliveryError, match=REASON):
        b.send(chat("y@b.localhost", "x@a.localhost", 3), timeout=10)
    wait_for(lambda: ("a.localhost", {"connected_in": False}) in states, 10, "connected_in cleared")
    assert ("a.localhost", {"connected_out": False}) in states


async def _close(service: FederationService) -> None:
    service.close_domain("a.localhost", REASON)
