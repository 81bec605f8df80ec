"""The federation service between two in-process instances (a.localhost and b.localhost on loopback): sending,
ordering, failures in plain words, backoff, idle close and reopen, and what the service refuses to send."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from federation.conf import FederationConfig
from federation.serialize import to_xml
from federation.service import FederationService, _as_server_stanza
from federation.stream import DeliveryError, domain_of
from tests.interop.harness import LoopThread, Received, RunningService
from tests.servers import free_port, wait_for

SERVER = "jabber:server"


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


def config(domain: str, tmp_path: Path, peers: dict[str, tuple[str, int]], **overrides: object) -> FederationConfig:
    return FederationConfig(
        domain=domain,
        dialback_secret=overrides.pop("dialback_secret", f"{domain} secret"),  # type: ignore[arg-type]
        state_dir=tmp_path / domain,
        port=overrides.pop("port", 0),  # type: ignore[arg-type]
        bind="127.0.0.1",
        tls=overrides.pop("tls", "optional"),  # type: ignore[arg-type]
        peers=peers,
        **overrides,  # type: ignore[arg-type]
    )


def start(loop: LoopThread, cfg: FederationConfig, on_stanza: object = None) -> RunningService:
    received = Received()
    service = FederationService(cfg, on_stanza=on_stanza or received)  # type: ignore[arg-type]
    loop.run(service.start())
    return RunningService(service, received, loop)


@pytest.fixture
def pair(loop: LoopThread, tmp_path: Path) -> Iterator[tuple[RunningService, RunningService]]:
    """a.localhost and b.localhost, each with a static route to the other."""
    port_a, port_b = free_port(), free_port()
    a = start(loop, config("a.localhost", tmp_path, {"b.localhost": ("127.0.0.1", port_b)}, port=port_a))
    b = start(loop, config("b.localhost", tmp_path, {"a.localhost": ("127.0.0.1", port_a)}, port=port_b))
    yield a, b
    loop.run(a.service.stop())
    loop.run(b.service.stop())


def chat(sender: str, recipient: str, body: str, namespace: str | None = SERVER) -> etree._Element:
    tag = f"{{{namespace}}}message" if namespace else "message"
    stanza = etree.Element(tag, nsmap={None: namespace} if namespace else None)
    stanza.set("from", sender)
    stanza.set("to", recipient)
    stanza.set("id", body)
    body_tag = f"{{{namespace}}}body" if namespace else "body"
    etree.SubElement(stanza, body_tag).text = body
    return stanza


def test_stanzas_queued_before_the_stream_exists_are_handed_over_in_order(
    pair: tuple[RunningService, RunningService],
) -> None:
    a, b = pair
    bodies = [f"n{n}" for n in range(50)]

    async def send_all() -> None:
        futures = [a.service.enqueue(chat("x@a.localhost/r", "y@b.localhost", body)) for body in bodies]
        await asyncio.gather(*futures)

    a.loop.run(send_all())

    wait_for(lambda: len(b.received.items) == len(bodies), 20, "all 50 messages at b.localhost")
    assert [stanza.findtext(f"{{{SERVER}}}body") for _, stanza in b.received.items] == bodies
    assert {from_domain for from_domain, _ in b.received.items} == {"a.localhost"}


def test_both_directions_work_and_jabber_client_stanzas_are_sent_as_jabber_server(
    pair: tuple[RunningService, RunningService],
) -> None:
    a, b = pair

    a.send(chat("x@a.localhost", "y@b.localhost", "to b", namespace="jabber:client"))
    b.send(chat("y@b.localhost", "x@a.localhost/r", "to a", namespace=None))

    wait_for(lambda: b.received.find(id="to b") and a.received.find(id="to a"), 20, "a message each way")
    _, at_b = b.received.find(id="to b")  # type: ignore[misc]
    assert at_b.tag == f"{{{SERVER}}}message"
    assert at_b.findtext(f"{{{SERVER}}}body") == "to b"


def test_unreachable_server_fails_in_plain_words_then_backs_off(loop: LoopThread, tmp_path: Path) -> None:
    closed_port = free_port()  # nothing listens there
    a = start(loop, config("a.localhost", tmp_path, {"down.localhost": ("127.0.0.1", closed_port)}))
    try:
        with pytest.raises(DeliveryError, match=rf"could not connect to down\.localhost \(127\.0\.0\.1:{closed_port}"):
            a.send(chat("x@a.localhost", "y@down.localhost", "1"))

        # Right after a failure the domain is not tried again: the same reason, and when the next try is.
        with pytest.raises(DeliveryError, match=r"could not connect to down\.localhost.*next attempt in \d+ s"):
            a.send(chat("x@a.localhost", "y@down.localhost", "2"))
    finally:
        loop.run(a.service.stop())


def test_peer_that_rejects_our_dialback_key_is_reported(loop: LoopThread, tmp_path: Path) -> None:
    # b.localhost asks "a.localhost" about our key, but a.localhost's route leads to a server with another secret.
    port_a, port_b = free_port(), free_port()
    b = start(loop, config("b.localhost", tmp_path, {"a.localhost": ("127.0.0.1", port_a)}, port=port_b))
    impostor_cfg = config(
        "a.localhost", tmp_path / "impostor", {"b.localhost": ("127.0.0.1", port_b)}, port=port_a, dialback_secret="?"
    )
    impostor = start(loop, impostor_cfg)
    a = start(loop, config("a.localhost", tmp_path, {"b.localhost": ("127.0.0.1", port_b)}))
    try:
        with pytest.raises(DeliveryError, match=r"b\.localhost rejected our dialback key"):
            a.send(chat("x@a.localhost", "y@b.localhost", "hi"))
        assert b.received.items == []
    finally:
        for running in (a, impostor, b):
            loop.run(running.service.stop())


def test_idle_stream_is_closed_and_reopened_on_demand(loop: LoopThread, tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    quick = {"keepalive_interval": 0.1, "idle_timeout": 0.3}
    a = start(loop, config("a.localhost", tmp_path, {"b.localhost": ("127.0.0.1", port_b)}, port=port_a, **quick))
    b = start(loop, config("b.localhost", tmp_path, {"a.localhost": ("127.0.0.1", port_a)}, port=port_b))
    try:
        a.send(chat("x@a.localhost", "y@b.localhost", "first"))
        first_stream = a.service.pool.streams["b.localhost"]  # type: ignore[union-attr]

        wait_for(lambda: "b.localhost" not in a.service.pool.streams, 10, "the idle stream to close")  # type: ignore[union-attr]
        a.send(chat("x@a.localhost", "y@b.localhost", "second"))

        assert a.service.pool.streams["b.localhost"] is not first_stream  # type: ignore[union-attr]
        wait_for(lambda: b.received.find(id="second"), 10, "the second message")
    finally:
        loop.run(a.service.stop())
        loop.run(b.service.stop())


def test_a_failing_stanza_handler_bounces_internal_server_error(loop: LoopThread, tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()

    async def broken(from_domain: str, stanza: etree._Element) -> None:
        raise RuntimeError("the app has a bug")

    a = start(loop, config("a.localhost", tmp_path, {"b.localhost": ("127.0.0.1", port_b)}, port=port_a))
    b = start(loop, config("b.localhost", tmp_path, {"a.localhost": ("127.0.0.1", port_a)}, port=port_b), broken)
    try:
        a.send(chat("x@a.localhost/r", "y@b.localhost", "ping"))

        found = wait_for(lambda: a.received.find(id="ping"), 20, "the error bounce at a.localhost")
        _, bounce = found  # type: ignore[misc]
        assert (bounce.get("from"), bounce.get("to"), bounce.get("type")) == (
            "y@b.localhost",
            "x@a.localhost/r",
            "error",
        )
        error = bounce.find(f"{{{SERVER}}}error")
        assert error is not None and error.get("type") == "wait"
        assert error.find("{urn:ietf:params:xml:ns:xmpp-stanzas}internal-server-error") is not None
    finally:
        loop.run(a.service.stop())
        loop.run(b.service.stop())


@pytest.mark.parametrize(
    ("sender", "recipient", "complaint"),
    [
        ("x@elsewhere.example", "y@b.localhost", "must come from our domain"),
        (None, "y@b.localhost", "must come from our domain"),
        ("x@a.localhost", "y@a.localhost/r", "is local"),
        ("x@a.localhost", "a@b@c", "not a valid recipient"),
        ("x@a.localhost", None, "not a valid recipient"),
    ],
)
def test_stanzas_that_are_not_ours_to_federate_are_refused(
    pair: tuple[RunningService, RunningService], sender: str | None, recipient: str | None, complaint: str
) -> None:
    a, _ = pair
    stanza = etree.Element(f"{{{SERVER}}}message")
    for name, value in (("from", sender), ("to", recipient)):
        if value is not None:
            stanza.set(name, value)

    with pytest.raises(ValueError, match=complaint):
        a.send(stanza)


def test_non_stanza_elements_are_refused(pair: tuple[RunningService, RunningService]) -> None:
    a, _ = pair
    with pytest.raises(ValueError, match="not a stanza"):
        a.send(etree.Element("{jabber:server:dialback}result", {"from": "a.localhost", "to": "b.localhost"}))


def test_stanza_is_rewritten_into_jabber_server_keeping_foreign_namespaces() -> None:
    stanza = etree.fromstring(
        "<message xmlns='jabber:client' from='x@a.localhost' to='y@b.localhost' id='1'>"
        "<body>hi</body><request xmlns='urn:xmpp:receipts'/><x xmlns='urn:example'><item/></x></message>"
    )

    assert to_xml(_as_server_stanza(stanza)) == (
        b"<message from='x@a.localhost' to='y@b.localhost' id='1'><body>hi</body>"
        b"<request xmlns='urn:xmpp:receipts'/><x xmlns='urn:example'><item/></x></message>"
    )


@pytest.mark.parametrize(
    ("jid", "domain"),
    [
        ("alice@Prosody.Localhost/phone", "prosody.localhost"),
        ("prosody.localhost", "prosody.localhost"),
        ("prosody.localhost.", "prosody.localhost"),
        ("a@b/c@d/e", "b"),
        ("a@[::1]", "[::1]"),
        ("a@b@c", None),
        ("@b", None),
        ("a@", None),
        ("", None),
        ("a@b c", None),
        ("a@<b>", None),
        ("a@b.example:5269", None),
    ],
)
def test_domain_of_a_jid(jid: str, domain: str | None) -> None:
    assert domain_of(jid) == domain
