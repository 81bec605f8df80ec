"""What inbound and outbound s2s streams share: the wire (reads, writes, STARTTLS), namespaces and small builders.

An XMPP s2s connection carries one XML stream in each direction (RFC 6120 §4). `Wire` owns one TCP connection:
it feeds what arrives to the hardened `XMLStreamParser` and hands out its events one at a time, writes our bytes,
and upgrades the connection to TLS in place (RFC 6120 §5.4.3.3), after which both sides start new streams.
The stream logic lives in `federation.inbound` (the listener's side) and `federation.outbound` (ours).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections import deque

from lxml import etree

from federation.errors import StreamError
from federation.serialize import STREAM_ERRORS_NS, stream_error, stream_header, to_xml
from federation.xmlstream import DIALBACK_NS, SERVER_NS, STREAMS_NS, Event, XMLStreamParser

logger = logging.getLogger("federation")

TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"  # RFC 6120 §5.4
DIALBACK_FEATURE_NS = "urn:xmpp:features:dialback"  # XEP-0220 §2.5

FEATURES = f"{{{STREAMS_NS}}}features"
ERROR = f"{{{STREAMS_NS}}}error"
STARTTLS = f"{{{TLS_NS}}}starttls"
PROCEED = f"{{{TLS_NS}}}proceed"
TLS_FAILURE = f"{{{TLS_NS}}}failure"
DB_RESULT = f"{{{DIALBACK_NS}}}result"
DB_VERIFY = f"{{{DIALBACK_NS}}}verify"
STANZA_TAGS = frozenset(f"{{{SERVER_NS}}}{kind}" for kind in ("message", "presence", "iq"))

READ_CHUNK = 65536
CLOSE_TIMEOUT = 5.0  # how long we wait for the peer's </stream:stream> after ours (Prosody waits 5 s too)

# A domainpart as RFC 7622 §3.2 allows it after the checks that matter here: no spaces, no characters that make
# it a different JID part or XML, at most 1023 bytes; or an IP literal. Internationalised names pass through.
_DOMAIN = re.compile(r"[^\s@/:\"'<>&\\\x00-\x1f\x7f]{1,1023}|\[[0-9A-Fa-f:.]+\]")


class DeliveryError(Exception):
    """A stanza was not handed over to the remote server; the message says why, in plain words."""


class PeerClosed(Exception):
    """The connection ended; `reason` says how, in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def domain_of(jid: str) -> str | None:
    """The domainpart of a JID (RFC 7622 §3.2), lower-cased; None if `jid` is not a plausible JID."""
    bare = jid.split("/", 1)[0]
    if bare.count("@") > 1:
        return None
    local, _, domain = bare.rpartition("@")
    if "@" in bare and not local:
        return None
    domain = domain.lower()
    domain = domain[:-1] if domain.endswith(".") else domain  # RFC 7622 §3.2: a final dot is not part of it
    if not _DOMAIN.fullmatch(domain):
        return None
    return domain


def dialback_element(kind: str, *, text: str | None = None, **attributes: str) -> etree._Element:
    """<db:result/> or <db:verify/> with the given attributes (`from_` for 'from') and optional key text."""
    element = etree.Element(f"{{{DIALBACK_NS}}}{kind}", nsmap={"db": DIALBACK_NS})
    for name, value in attributes.items():
        element.set(name.rstrip("_"), value)
    if text:
        element.text = text
    return element


def stream_error_of(element: etree._Element) -> tuple[str, str]:
    """(condition, text) of a received <stream:error/>, RFC 6120 §4.9.2."""
    condition, text = "undefined-condition", ""
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child)
        if name.namespace == STREAM_ERRORS_NS and name.localname == "text":
            text = (child.text or "").strip()[:200]
        elif name.namespace == STREAM_ERRORS_NS:
            condition = name.localname
    return condition, text


class Wire:
    """One TCP (then maybe TLS) connection carrying an XML stream each way; see the module docstring."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: XMLStreamParser) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = parser
        self.events: deque[Event] = deque()
        self.encrypted = False
        self.closed = False
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    @property
    def tls_version(self) -> str | None:
        """'TLSv1.3' and so on once the connection is encrypted, else None."""
        ssl_object = self.writer.get_extra_info("ssl_object")
        return ssl_object.version() if ssl_object is not None else None

    async def next_event(self) -> Event:
        """The next event of the peer's stream; raises StreamError, or PeerClosed at the end of the connection."""
        while not self.events:
            data = await self.reader.read(READ_CHUNK)
            if not data:
                raise PeerClosed("the connection was closed")
            self.events.extend(self.parser.feed(data))
        return self.events.popleft()

    def write(self, data: bytes) -> None:
        if not self.closed and not self.writer.is_closing():
            self.writer.write(data)

    def send(self, element: etree._Element) -> None:
        self.write(to_xml(element))

    async def drain(self) -> None:
        if not self.closed and not self.writer.is_closing():
            await self.writer.drain()

    async def start_tls(
        self, context: ssl.SSLContext, *, server_hostname: str | None, handshake_timeout: float
    ) -> None:
        """Upgrade to TLS right after <proceed/> (RFC 6120 §5.4.3.3), and start a fresh stream parser.

        Nothing may follow the STARTTLS exchange in plaintext: bytes the peer sent after it, already parsed or
        still buffered, would otherwise be read as if they had come over TLS (the STARTTLS command injection of
        CVE-2011-0411). Such a peer gets a policy-violation.
        """
        # asyncio keeps no public view of the bytes it has read but not handed out yet.
        if self.events or self.reader._buffer:
            raise StreamError("policy-violation", "data after the STARTTLS exchange and before the TLS handshake")
        await self.writer.drain()
        await self.writer.start_tls(context, server_hostname=server_hostname, ssl_handshake_timeout=handshake_timeout)
        self.encrypted = True
        self.parser.reset()

    def fail(self, error: StreamError, *, header: bytes | None = None) -> None:
        """Send `error` (after our stream header if we have not sent one yet, RFC 6120 §4.9.1.2) and close."""
        self.write((header or b"") + stream_error(error.condition, error.text or None))
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()

    async def wait_closed(self) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.writer.wait_closed()
        except (OSError, TimeoutError, ssl.SSLError):
            pass


def header_to(from_: str, to: str | None, stream_id: str | None) -> bytes:
    """Our stream header; without a `to` attribute when we do not know the peer (RFC 6120 §4.7.2)."""
    header = stream_header(from_=from_, to=to or "", stream_id=stream_id)
    return header if to else header.replace(b" to=''", b"", 1)
