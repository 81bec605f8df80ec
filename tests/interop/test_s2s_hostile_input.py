"""The s2s listener of the real `manage.py runfederation` against hostile bytes, with STARTTLS off and required.

Each row of HOSTILE_INPUT is one attack or mistake, sent over a plain TCP socket (after STARTTLS when the policy
requires it, for rows that come after the stream is open), and the stream error (RFC 6120 §4.9.3) it must get.
After every row a fresh, well-behaved remote server (tester.localhost, our own FederationService in the test)
authenticates by dialback and gets a message through: the process keeps serving everyone else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from federation.conf import FederationConfig
from federation.dialback import dialback_key
from federation.serialize import STREAM_CLOSE
from federation.xmlstream import DIALBACK_NS, STREAMS_NS, StreamClosed
from tests.interop.conftest import IMWEB, Subprocess, start_runfederation, stop_runfederation
from tests.interop.harness import TLS_NS, LoopThread, RawPeer, RunningService, start_service, verify_request
from tests.servers import free_port, wait_for

TESTER = "tester.localhost"
TESTER_SECRET = "tester's dialback secret"
IMWEB_SECRET = "imweb's dialback secret, shared by all its processes"
HANDSHAKE_TIMEOUT = 5  # seconds, IMWEB_S2S_HANDSHAKE_TIMEOUT for the process under test
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def header(
    *,
    to: str | None = IMWEB,
    from_: str = TESTER,
    xmlns: str = "jabber:server",
    stream_ns: str = STREAMS_NS,
    version: str | None = "1.0",
    extra: str = "",
    declaration: str = "<?xml version='1.0'?>",
) -> bytes:
    """A stream header as a remote server sends it, with one thing changed at a time."""
    attributes = f" from='{from_}'" + (f" to='{to}'" if to is not None else "")
    attributes += f" version='{version}'" if version is not None else ""
    return (
        f"{declaration}<stream:stream xmlns='{xmlns}' xmlns:stream='{stream_ns}' xmlns:db='{DIALBACK_NS}'"
        f"{attributes}{extra}>"
    ).encode()


def message(*, from_: str = f"carol@{TESTER}/laptop", to: str = f"bob@{IMWEB}", body: str = "hi") -> bytes:
    return f"<message from='{from_}' to='{to}' type='chat' id='m1'><body>{body}</body></message>".encode()


ON_CONNECT = "on connect"  # the bytes are all the peer ever sends
AFTER_OPEN = "after the stream is open"  # the header (and STARTTLS if required) went well first
AFTER_DIALBACK = "after dialback"  # tester.localhost is authenticated on this stream first


@dataclass(frozen=True)
class Hostile:
    when: str
    data: bytes
    condition: str


# lol9 expands to 10^9 "lol"s: each entity is ten of the one before.
BILLION_LAUGHS = (
    b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol0 'lol'>"
    + b"".join(b"<!ENTITY lol%d '%s'>" % (n, b"&lol%d;" % (n - 1) * 10) for n in range(1, 10))
    + b"]>"
    + header(declaration="")
    + b"<message><body>&lol9;</body></message>"
)

HOSTILE_INPUT = {
    # --- before the stream exists ---------------------------------------------------------------------------------
    "plain HTTP": Hostile(ON_CONNECT, b"GET / HTTP/1.1\r\nHost: imweb.localhost\r\n\r\n", "not-well-formed"),
    "a TLS ClientHello (direct TLS)": Hostile(
        ON_CONNECT, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "not-well-formed"
    ),
    "binary garbage": Hostile(ON_CONNECT, bytes(range(1, 32)) * 4, "not-well-formed"),
    "billion laughs": Hostile(ON_CONNECT, BILLION_LAUGHS, "restricted-xml"),
    "external entity (XXE)": Hostile(
        ON_CONNECT,
        b"<?xml version='1.0'?><!DOCTYPE s [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>" + header(declaration=""),
        "restricted-xml",
    ),
    "comment before the header": Hostile(ON_CONNECT, b"<!-- hello -->" + header(declaration=""), "restricted-xml"),
    "processing instruction before the header": Hostile(
        ON_CONNECT, b"<?php system('id'); ?>" + header(declaration=""), "restricted-xml"
    ),
    "wrong stream namespace": Hostile(ON_CONNECT, header(stream_ns="http://example.com/streams"), "invalid-namespace"),
    "wrong default namespace (jabber:client)": Hostile(ON_CONNECT, header(xmlns="jabber:client"), "invalid-namespace"),
    "a 'to' that is not ours": Hostile(ON_CONNECT, header(to="example.org"), "host-unknown"),
    "no 'to' at all": Hostile(ON_CONNECT, header(to=None), "host-unknown"),
    "XMPP 2.0": Hostile(ON_CONNECT, header(version="2.0"), "unsupported-version"),
    "no version (pre-XMPP 1.0)": Hostile(ON_CONNECT, header(version=None), "unsupported-version"),
    "UTF-16": Hostile(ON_CONNECT, header().decode().encode("utf-16"), "unsupported-encoding"),
    "declared Latin-1": Hostile(
        ON_CONNECT, header(declaration="<?xml version='1.0' encoding='ISO-8859-1'?>"), "unsupported-encoding"
    ),
    "invalid UTF-8 in the header": Hostile(
        ON_CONNECT, header().replace(b"from='tester", b"from='caf\xc3(tester"), "not-well-formed"
    ),
    "an oversized header": Hostile(ON_CONNECT, header(extra=f" x='{'a' * 8000}'"), "policy-violation"),
    "a header that never ends (slowloris)": Hostile(ON_CONNECT, header()[:-1], "connection-timeout"),
    "only keepalives, never authenticating": Hostile(ON_CONNECT, header() + b" " * 10, "connection-timeout"),
    # --- on an open stream, before authentication ----------------------------------------------------------------
    "a stanza before dialback": Hostile(AFTER_OPEN, message(), "not-authorized"),
    "a spoofed 'from' before dialback": Hostile(AFTER_OPEN, message(from_="ceo@bank.example"), "not-authorized"),
    "db:result for a domain we do not serve": Hostile(
        AFTER_OPEN, f"<db:result from='{TESTER}' to='example.org'>k</db:result>".encode(), "host-unknown"
    ),
    "db:result without from": Hostile(
        AFTER_OPEN, f"<db:result to='{IMWEB}'>k</db:result>".encode(), "improper-addressing"
    ),
    "db:result claiming to be us": Hostile(
        AFTER_OPEN, f"<db:result from='{IMWEB}' to='{IMWEB}'>k</db:result>".encode(), "invalid-from"
    ),
    "a comment between stanzas": Hostile(AFTER_OPEN, b"<!-- hello -->", "restricted-xml"),
    "a processing instruction in a stanza": Hostile(AFTER_OPEN, b"<message><?x y?></message>", "restricted-xml"),
    "an undefined entity": Hostile(AFTER_OPEN, b"<message><body>&xxe;</body></message>", "restricted-xml"),
    "a DOCTYPE inside the stream": Hostile(AFTER_OPEN, b"<!DOCTYPE x [<!ENTITY a 'b'>]>", "restricted-xml"),
    "a second header without STARTTLS": Hostile(AFTER_OPEN, header(), "restricted-xml"),
    "deep nesting": Hostile(
        AFTER_OPEN, b"<message>" + b"<a>" * 200 + b"</a>" * 200 + b"</message>", "policy-violation"
    ),
    "too many attributes": Hostile(
        AFTER_OPEN, b"<message " + b" ".join(f"a{n}='x'".encode() for n in range(100)) + b"/>", "policy-violation"
    ),
    "an oversized stanza before dialback": Hostile(AFTER_OPEN, message(body="x" * 12_000), "policy-violation"),
    "text between stanzas": Hostile(AFTER_OPEN, b"hello", "bad-format"),
    "invalid UTF-8 in a stanza": Hostile(AFTER_OPEN, b"<message><body>\xff\xfe</body></message>", "not-well-formed"),
    "a NUL byte": Hostile(AFTER_OPEN, b"<message><body>\x00</body></message>", "not-well-formed"),
    "mismatched tags": Hostile(AFTER_OPEN, b"<message></iq>", "not-well-formed"),
    "an undeclared prefix": Hostile(AFTER_OPEN, b"<x:message/>", "not-well-formed"),
    "an element that is no stanza": Hostile(AFTER_OPEN, b"<foo xmlns='urn:example:foo'/>", "unsupported-stanza-type"),
    "a jabber:client stanza": Hostile(
        AFTER_OPEN, b"<message xmlns='jabber:client' to='bob@imweb.localhost'/>", "unsupported-stanza-type"
    ),
    "SASL we did not offer": Hostile(
        AFTER_OPEN,
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>",
        "unsupported-stanza-type",
    ),
    # --- after tester.localhost authenticated by dialback --------------------------------------------------------
    "a 'from' of a domain not authenticated here": Hostile(
        AFTER_DIALBACK, message(from_="ceo@bank.example"), "invalid-from"
    ),
    "a malformed 'from'": Hostile(AFTER_DIALBACK, message(from_="a@b@tester.localhost"), "invalid-from"),
    "a stanza for another server": Hostile(AFTER_DIALBACK, message(to="dave@elsewhere.example"), "host-unknown"),
    "a stanza without 'from'": Hostile(AFTER_DIALBACK, b"<message to='bob@imweb.localhost'/>", "improper-addressing"),
    "an oversized stanza after dialback": Hostile(AFTER_DIALBACK, message(body="x" * 530_000), "policy-violation"),
}


# --- the process under test and a well-behaved peer ------------------------------------------------------------


@dataclass
class Federation:
    """runfederation for imweb.localhost, and tester.localhost (in-process) as a well-behaved remote server."""

    process: Subprocess
    tester: RunningService
    tls_mode: str

    def raw_peer(self) -> RawPeer:
        return RawPeer(self.process.port, timeout=HANDSHAKE_TIMEOUT + 10)

    def open(self, peer: RawPeer) -> None:
        peer.open_authenticated_ready(from_=TESTER, to=IMWEB)

    def authenticate(self, peer: RawPeer) -> None:
        """Dialback as tester.localhost: imweb asks tester.localhost (our in-process service) about the key."""
        self.open(peer)
        assert peer.header is not None and peer.header.id
        key = dialback_key(TESTER_SECRET, receiving=IMWEB, originating=TESTER, stream_id=peer.header.id)
        peer.send(f"<db:result from='{TESTER}' to='{IMWEB}'>{key}</db:result>".encode())
        answer = peer.next_element()
        assert answer.tag == f"{{{DIALBACK_NS}}}result"
        assert (answer.get("from"), answer.get("to"), answer.get("type")) == (IMWEB, TESTER, "valid")

    def assert_still_serving(self) -> None:
        """A fresh stream authenticates by dialback, and its message is answered (runfederation bounces it)."""
        assert self.process.alive(), self.process.log()
        peer = self.raw_peer()
        try:
            self.authenticate(peer)
            message_id = uuid.uuid4().hex
            peer.send(
                f"<message from='carol@{TESTER}/laptop' to='nobody@{IMWEB}' type='chat' id='{message_id}'>"
                f"<body>still there?</body></message>".encode()
            )
            found = wait_for(lambda: self.tester.received.find(id=message_id), 30, "the bounce at tester.localhost")
            from_domain, bounce = found  # type: ignore[misc]
            assert from_domain == IMWEB
            assert bounce.get("type") == "error"
            assert bounce.find(f"{{jabber:server}}error/{{{STANZAS}}}service-unavailable") is not None
            peer.send(STREAM_CLOSE)
            assert isinstance(peer.next_event(), StreamClosed)  # RFC 6120 §4.4: it answers our close
        finally:
            peer.close()


@pytest.fixture(scope="module")
def federation(
    tls_mode: str, loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    imweb_port = free_port()
    tester = start_service(
        loop_thread,
        FederationConfig(
            domain=TESTER,
            dialback_secret=TESTER_SECRET,
            state_dir=Path(tmp_path_factory.mktemp(f"tester-{tls_mode}")),
            port=0,
            bind="127.0.0.1",
            tls=tls_mode,  # type: ignore[arg-type]
            peers={IMWEB: ("127.0.0.1", imweb_port)},
        ),
    )
    process = start_runfederation(
        Path(tmp_path_factory.mktemp(f"runfederation-{tls_mode}")),
        {
            "IMWEB_S2S_TLS": tls_mode,
            "IMWEB_S2S_BIND": "127.0.0.1",
            "IMWEB_S2S_PEERS": f"{TESTER}=127.0.0.1:{tester.service.port}",
            "IMWEB_DIALBACK_SECRET": IMWEB_SECRET,
            "IMWEB_S2S_HANDSHAKE_TIMEOUT": str(HANDSHAKE_TIMEOUT),
            "IMWEB_DNS_SERVER": f"127.0.0.1:{free_port()}",  # nobody answers: no lookup ever leaves loopback
        },
        imweb_port,
    )
    yield Federation(process, tester, tls_mode)
    code = stop_runfederation(process)
    loop_thread.run(tester.service.stop())
    assert code == 0, f"runfederation exited with {code} on SIGTERM:\n{process.log()}"


# --- the specification -------------------------------------------------------------------------------------------


def test_a_well_behaved_server_authenticates_and_is_answered(federation: Federation) -> None:
    federation.assert_still_serving()


@pytest.mark.parametrize("case", list(HOSTILE_INPUT.values()), ids=list(HOSTILE_INPUT))
def test_hostile_input_gets_its_stream_error_and_the_server_keeps_serving(
    federation: Federation, case: Hostile
) -> None:
    peer = federation.raw_peer()
    try:
        if case.when == AFTER_OPEN:
            federation.open(peer)
        elif case.when == AFTER_DIALBACK:
            federation.authenticate(peer)
        try:
            peer.send(case.data)
        except OSError:
            pass  # the listener may hang up before the last bytes of an oversized input are sent

        assert peer.stream_error() == case.condition
        with pytest.raises(EOFError):
            peer.next_event()  # and the connection is over
    finally:
        peer.close()

    federation.assert_still_serving()


def test_an_authenticated_stream_may_stay_quiet_longer_than_the_handshake_timeout(federation: Federation) -> None:
    peer = federation.raw_peer()
    try:
        federation.authenticate(peer)
        peer.sock.settimeout(HANDSHAKE_TIMEOUT + 2)

        # Nothing at all may come back while we say nothing: no connection-timeout once authenticated.
        with pytest.raises(TimeoutError):
            peer.next_event()
        peer.send(message(body="after a quiet while"))
        peer.send(STREAM_CLOSE)
        assert isinstance(peer.next_event(), StreamClosed)
    finally:
        peer.close()


def test_a_stalled_peer_does_not_hold_up_anyone_else(federation: Federation) -> None:
    stalled = [federation.raw_peer() for _ in range(5)]
    try:
        for peer in stalled:
            peer.send(header()[:40])  # and then nothing, for now

        federation.assert_still_serving()
    finally:
        for peer in stalled:
            peer.close()


def test_db_verify_is_answered_from_our_secret_on_any_stream(federation: Federation) -> None:
    # XEP-0220 §2.1.3: we are the authoritative server for imweb.localhost; any process knows the secret.
    peer = federation.raw_peer()
    try:
        federation.open(peer)
        peer.send(verify_request(IMWEB_SECRET, receiving=TESTER, originating=IMWEB, stream_id="s-1"))
        peer.send(verify_request("another secret", receiving=TESTER, originating=IMWEB, stream_id="s-2"))

        answers = [peer.next_element(), peer.next_element()]
    finally:
        peer.close()

    assert [(a.get("from"), a.get("to"), a.get("id"), a.get("type")) for a in answers] == [
        (IMWEB, TESTER, "s-1", "valid"),
        (IMWEB, TESTER, "s-2", "invalid"),
    ]


@pytest.mark.parametrize("tls_mode", ["required"], indirect=True)
def test_with_tls_required_nothing_is_accepted_before_starttls(federation: Federation) -> None:
    peer = federation.raw_peer()
    try:
        features = peer.open(from_=TESTER, to=IMWEB)
        # RFC 6120 §5.3.1: mandatory-to-negotiate STARTTLS is the only feature offered.
        assert [child.tag for child in features] == [f"{{{TLS_NS}}}starttls"]
        assert features.find(f"{{{TLS_NS}}}starttls/{{{TLS_NS}}}required") is not None
        peer.send(verify_request(IMWEB_SECRET, receiving=TESTER, originating=IMWEB, stream_id="s-1"))

        assert peer.stream_error() == "policy-violation"
    finally:
        peer.close()


@pytest.mark.parametrize("tls_mode", ["off"], indirect=True)
def test_with_tls_off_starttls_is_neither_offered_nor_accepted(federation: Federation) -> None:
    peer = federation.raw_peer()
    try:
        features = peer.open(from_=TESTER, to=IMWEB)
        assert features.find(f"{{{TLS_NS}}}starttls") is None
        peer.send(f"<starttls xmlns='{TLS_NS}'/>".encode())

        # RFC 6120 §5.4.2.2: <failure/>, then the stream and the connection are closed.
        assert peer.next_element().tag == f"{{{TLS_NS}}}failure"
        assert isinstance(peer.next_event(), StreamClosed)
    finally:
        peer.close()
    federation.assert_still_serving()
