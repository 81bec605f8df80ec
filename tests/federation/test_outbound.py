"""Outbound streams against a scripted remote server: keepalives, and failures reported in plain words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from federation.conf import FederationConfig, TLSPolicy
from federation.stream import DeliveryError
from tests.interop.harness import FakeRemote, LoopThread, RunningService, start_service
from tests.servers import wait_for

REMOTE = "remote.localhost"
DIALBACK_FEATURE = b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"
STARTTLS_REQUIRED = (
    b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
)
VALID = f"<db:result from='{REMOTE}' to='a.localhost' type='valid'/>".encode()


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


def service_towards(
    loop: LoopThread, remote: FakeRemote, tmp_path: Path, *, tls: TLSPolicy = "off", **timeouts: float
) -> RunningService:
    return start_service(
        loop,
        FederationConfig(
            domain="a.localhost",
            dialback_secret="a secret",
            state_dir=tmp_path,
            port=0,
            bind="127.0.0.1",
            tls=tls,
            peers={REMOTE: ("127.0.0.1", remote.port)},
            **timeouts,  # type: ignore[arg-type]
        ),
    )


def hello() -> etree._Element:
    return etree.fromstring(f"<message xmlns='jabber:server' from='x@a.localhost' to='y@{REMOTE}' id='h'/>")


def test_dialback_is_the_key_for_the_stream_id_the_peer_gave(loop: LoopThread, tmp_path: Path) -> None:
    from federation.dialback import dialback_key

    remote = FakeRemote(domain=REMOTE, features=DIALBACK_FEATURE, dialback_answer=VALID)
    running = service_towards(loop, remote, tmp_path)
    try:
        running.send(hello())

        key = dialback_key("a secret", receiving=REMOTE, originating="a.localhost", stream_id="fake-id")
        assert f"<db:result from='a.localhost' to='{REMOTE}'>{key}</db:result>".encode() in remote.received
        wait_for(lambda: b"<message from='x@a.localhost'" in remote.after_dialback, 10, "the message after dialback")
    finally:
        loop.run(running.service.stop())
        remote.stop()


def test_idle_authenticated_stream_sends_whitespace_keepalives(loop: LoopThread, tmp_path: Path) -> None:
    remote = FakeRemote(domain=REMOTE, features=DIALBACK_FEATURE, dialback_answer=VALID)
    running = service_towards(loop, remote, tmp_path, keepalive_interval=0.05, idle_timeout=60.0)
    try:
        running.send(hello())

        # RFC 6120 §4.6.1: single spaces between stanzas, more than one of them while idle.
        wait_for(lambda: remote.after_dialback.endswith(b"  "), 10, "whitespace keepalives")
    finally:
        loop.run(running.service.stop())
        remote.stop()


@pytest.mark.parametrize(
    ("features", "answer", "tls", "reason"),
    [
        pytest.param(
            DIALBACK_FEATURE,
            f"<db:result from='{REMOTE}' to='a.localhost' type='invalid'/>".encode(),
            "off",
            f"{REMOTE} rejected our dialback key",
            id="key-rejected",
        ),
        pytest.param(
            DIALBACK_FEATURE,
            f"<db:result from='{REMOTE}' to='a.localhost' type='error'><error type='cancel'>"
            "<remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>".encode(),
            "off",
            f"{REMOTE} could not check our dialback key (remote-connection-failed)",
            id="dialback-error",
        ),
        pytest.param(
            DIALBACK_FEATURE,
            b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
            b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>who?</text></stream:error>",
            "off",
            f"{REMOTE} closed the stream with the error host-unknown: who?",
            id="stream-error",
        ),
        pytest.param(
            DIALBACK_FEATURE,
            b"<message><!-- hi --></message>",
            "off",
            f"{REMOTE} sent invalid XML (restricted-xml",
            id="invalid-xml",
        ),
        pytest.param(
            STARTTLS_REQUIRED,
            VALID,
            "off",
            f"{REMOTE} requires STARTTLS, and IMWEB_S2S_TLS is 'off'",
            id="peer-requires-tls",
        ),
        pytest.param(
            DIALBACK_FEATURE,
            VALID,
            "required",
            f"{REMOTE} does not offer STARTTLS, which IMWEB_S2S_TLS='required' demands",
            id="we-require-tls",
        ),
    ],
)
def test_failures_are_reported_in_plain_words(
    loop: LoopThread, tmp_path: Path, features: bytes, answer: bytes, tls: TLSPolicy, reason: str
) -> None:
    remote = FakeRemote(domain=REMOTE, features=features, dialback_answer=answer)
    running = service_towards(loop, remote, tmp_path, tls=tls)
    try:
        with pytest.raises(DeliveryError) as raised:
            running.send(hello())

        assert reason in str(raised.value)
    finally:
        loop.run(running.service.stop())
        remote.stop()


def test_silent_peer_times_out_with_a_reason(loop: LoopThread, tmp_path: Path) -> None:
    # It answers the header but never the dialback key.
    remote = FakeRemote(domain=REMOTE, features=DIALBACK_FEATURE, dialback_answer=b"")
    running = service_towards(loop, remote, tmp_path, handshake_timeout=0.5)
    try:
        with pytest.raises(DeliveryError, match=rf"{REMOTE} did not complete the connection and dialback within"):
            running.send(hello())
    finally:
        loop.run(running.service.stop())
        remote.stop()
