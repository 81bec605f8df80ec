"""The listener's side of an s2s connection: a remote server opened it to send us stanzas (RFC 6120, XEP-0220).

One `InboundStream` per accepted TCP connection. In order:
1. The peer's header: `to` must be our domain (else `host-unknown`, RFC 6120 §4.9.3.6), `version` 1.x (§4.7.5).
   We answer with our header, a fresh stream id and the features our TLS policy allows (§4.3.2).
2. STARTTLS (§5.4) when offered and asked for; with the policy `required`, nothing else is accepted before it
   (`policy-violation`). Then the peer restarts the stream and gets a new id.
3. Dialback, XEP-0220. `db:verify`: we are the authoritative server, answer from our secret at once, on any
   stream. `db:result`: the peer claims a domain; we ask that domain's authoritative server over our own
   outbound stream, and answer valid/invalid here. A verified domain is authenticated *on this stream only*.
4. Stanzas, each checked: its `from` domain authenticated here (else `not-authorized`, or `invalid-from` when
   other domains are: §4.9.3.10, §4.9.3.17), its `to` domain ours (else `host-unknown`). Accepted stanzas go to
   the service's callback in order, through a queue, so a slow callback never stops dialback on this stream.

Anything else ends the stream with a stream error (§4.9): they are unrecoverable, and we log the peer's address.
A stream that has not authenticated within the handshake timeout, or sends nothing for the read timeout, gets
`connection-timeout` (§4.9.3.4). Every stream has its own task, so one bad peer affects no other.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from lxml import etree

from federation.bounce import STANZAS_NS
from federation.dialback import verify_key
from federation.errors import StreamError
from federation.serialize import STREAM_CLOSE
from federation.stream import (
    DB_RESULT,
    DB_VERIFY,
    DIALBACK_FEATURE_NS,
    STANZA_TAGS,
    STARTTLS,
    TLS_NS,
    DeliveryError,
    PeerClosed,
    Wire,
    dialback_element,
    domain_of,
    header_to,
    logger,
)
from federation.xmlstream import SERVER_NS, StanzaReceived, StreamClosed, StreamOpened, XMLStreamParser

if TYPE_CHECKING:
    from federation.service import FederationService

OnStanza = Callable[[str, etree._Element], Awaitable[None]]

DELIVERY_QUEUE = 100  # accepted stanzas waiting for the callback, per stream; beyond that reading pauses


class InboundStream:
    """One connection a remote server opened to our listener; see the module docstring."""

    def __init__(self, service: FederationService, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.service = service
        self.config = service.config
        self.wire = Wire(reader, writer, XMLStreamParser(max_stanza_bytes=self.config.max_stanza_bytes_unauthenticated))
        self.stream_id: str | None = None
        self.peer_domain: str | None = None  # the header's 'from', for our header's 'to' and the logs only
        self.authenticated: set[str] = set()
        self.verifying: dict[str, asyncio.Task[None]] = {}
        self.dialback_started = False
        self.header_sent = False
        self.started = time.monotonic()
        self.deliveries: asyncio.Queue[etree._Element | None] = asyncio.Queue(DELIVERY_QUEUE)
        self.delivery_task: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        return f"inbound {self.wire.peer} ({self.peer_domain or 'unknown'})"

    async def run(self) -> None:
        """Serve the connection until it ends; never raises (except when cancelled)."""
        try:
            await self._serve()
        except StreamError as err:
            logger.info("%s: closing with stream error %s", self.label, err)
            self.wire.fail(err, header=None if self.header_sent else self._header())
        except PeerClosed as closed:
            logger.debug("%s: %s", self.label, closed.reason)
        except (OSError, ssl.SSLError, EOFError) as err:
            logger.info("%s: connection failed: %s", self.label, err or type(err).__name__)
        except Exception:  # noqa: BLE001  (a bug here must end this stream only, never the listener)
            logger.exception("%s: internal error", self.label)
            self.wire.fail(StreamError("internal-server-error"), header=None if self.header_sent else self._header())
        finally:
            for task in self.verifying.values():
                task.cancel()
            self.wire.close()
            self.service.inbound.discard(self)
            for domain in self.authenticated:
                if not self.service.connected_in(domain):
                    self.service.stream_state(domain, connected_in=False)
            if self.delivery_task is not None:
                # Stanzas accepted before the end are still delivered: they were taken from the peer.
                await self.deliveries.put(None)
            await self.wire.wait_closed()

    def refuse(self, reason: str) -> None:
        """The operator denied a domain on this stream: close it with a policy-violation (RFC 6120 §4.9.3.14)."""
        logger.info("%s: closing: %s", self.label, reason)
        self.wire.fail(StreamError("policy-violation", reason), header=None if self.header_sent else self._header())

    def shutdown(self) -> None:
        """The service is stopping: tell the peer (RFC 6120 §4.9.3.21) and close."""
        self.wire.fail(StreamError("system-shutdown"), header=None if self.header_sent else self._header())

    # --- reading -------------------------------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:  # one event per turn; ends by an exception or the peer's close
            was_authenticated = bool(self.authenticated)
            try:
                async with asyncio.timeout_at(self._deadline()):
                    event = await self.wire.next_event()
            except TimeoutError:
                if was_authenticated:
                    raise StreamError("connection-timeout", "no data for too long") from None
                if self.authenticated:
                    continue  # dialback finished while we waited: the (longer) read timeout applies from now
                raise StreamError("connection-timeout", "not authenticated in time") from None
            if isinstance(event, StreamOpened):
                self._opened(event)
            elif isinstance(event, StanzaReceived):
                await self._element(event.element)
            elif isinstance(event, StreamClosed):
                # RFC 6120 §4.4: answer the peer's close with ours, then close the connection.
                self.wire.write(STREAM_CLOSE)
                await self.wire.drain()
                return

    def _deadline(self) -> float:
        loop_now = asyncio.get_running_loop().time()
        if self.authenticated:
            return loop_now + self.config.read_timeout
        # An absolute deadline: keepalives and dialback chatter cannot stretch the unauthenticated phase.
        elapsed = time.monotonic() - self.started
        return loop_now + max(0.0, self.config.handshake_timeout - elapsed)

    def _header(self) -> bytes:
        if self.stream_id is None:
            self.stream_id = secrets.token_hex(16)
        self.header_sent = True
        return header_to(self.config.domain, self.peer_domain, self.stream_id)

    def _opened(self, header: StreamOpened) -> None:
        # Every (re)started stream gets a new id (RFC 6120 §4.7.3); after STARTTLS dialback keys use the new one.
        self.stream_id = None
        self.header_sent = False
        from_domain = domain_of(header.from_) if header.from_ else None
        self.peer_domain = from_domain
        to = (header.to or "").lower().rstrip(".")
        if to != self.config.domain:
            raise StreamError("host-unknown", f"this server does not serve {header.to or '(no to)'}")
        version = header.version or ""
        if not version.startswith("1."):
            raise StreamError("unsupported-version", "XMPP 1.0 streams only")
        features = self._features()
        self.wire.write(self._header() + features)

    def _features(self) -> bytes:
        # RFC 6120 §5.3.1: when TLS is mandatory, offer only STARTTLS until it is done; XEP-0220 §2.5 dialback
        # feature with <errors/> (we send dialback errors, §2.4).
        policy = self.config.tls
        if not self.wire.encrypted and policy != "off":
            required = "<required/>" if policy == "required" else ""
            starttls = f"<starttls xmlns='{TLS_NS}'>{required}</starttls>"
            if policy == "required":
                return f"<stream:features>{starttls}</stream:features>".encode()
        else:
            starttls = ""
        dialback = f"<dialback xmlns='{DIALBACK_FEATURE_NS}'><errors/></dialback>"
        return f"<stream:features>{starttls}{dialback}</stream:features>".encode()

    async def _element(self, element: etree._Element) -> None:
        tag = element.tag
        if tag == STARTTLS:
            await self._starttls()
            return
        if self.config.tls == "required" and not self.wire.encrypted:
            raise StreamError("policy-violation", "STARTTLS is required first (RFC 6120 §5.3.1)")
        if tag == DB_VERIFY:
            self.dialback_started = True
            self._verify_request(element)
        elif tag == DB_RESULT:
            self.dialback_started = True
            self._result_request(element)
        elif tag in STANZA_TAGS:
            await self._stanza(element)
        else:
            raise StreamError("unsupported-stanza-type", f"unexpected {etree.QName(element).localname!r} element")

    async def _starttls(self) -> None:
        # Only once, only if offered, and only before anything else happened on the stream (RFC 6120 §5.3.1).
        if self.config.tls == "off" or self.wire.encrypted or self.dialback_started:
            # RFC 6120 §5.4.2.2: <failure/>, then close the stream and the connection.
            self.wire.write(f"<failure xmlns='{TLS_NS}'/>".encode() + STREAM_CLOSE)
            self.wire.close()
            raise PeerClosed("refused a STARTTLS that was not offered")
        self.wire.write(f"<proceed xmlns='{TLS_NS}'/>".encode())
        await self.wire.start_tls(
            self.service.server_tls, server_hostname=None, handshake_timeout=self.config.connect_timeout
        )
        self.header_sent = False  # the peer restarts the stream (§5.4.3.3); we answer its new header
        logger.debug("%s: encrypted (%s)", self.label, self.wire.tls_version)

    # --- dialback (XEP-0220) -------------------------------------------------------------------------------

    def _verify_request(self, element: etree._Element) -> None:
        """We are the authoritative server: did we issue this key? (XEP-0220 §2.1.3, §2.4.2)."""
        if element.get("type"):
            # A verify *answer* on a stream we did not open: Prosody ignores it too.
            logger.info("%s: ignoring a db:verify answer on an inbound stream", self.label)
            return
        receiving, originating, stream_id = element.get("from"), element.get("to"), element.get("id")
        if not receiving or not originating or not stream_id:
            raise StreamError("improper-addressing", "db:verify needs from, to and id")
        valid = originating.lower() == self.config.domain and verify_key(
            self.config.dialback_secret,
            element.text or "",
            receiving=receiving.lower(),
            originating=self.config.domain,
            stream_id=stream_id,
        )
        answer = "valid" if valid else "invalid"
        if not valid:
            logger.warning("%s: %s asked about a key we did not issue (id %s)", self.label, receiving, stream_id)
        self.wire.send(dialback_element("verify", from_=originating, to=receiving, id=stream_id, type=answer))

    def _result_request(self, element: etree._Element) -> None:
        """The peer claims a domain: check the key with that domain's authoritative server (XEP-0220 §2.1.2)."""
        if element.get("type"):
            logger.info("%s: ignoring a typed db:result on an inbound stream", self.label)
            return
        claimed, to = element.get("from"), element.get("to")
        if not claimed or not to:
            raise StreamError("improper-addressing", "db:result needs from and to")
        if to.lower().rstrip(".") != self.config.domain:
            raise StreamError("host-unknown", f"this server does not serve {to}")
        domain = domain_of(claimed)
        if domain is None or domain != claimed.lower().rstrip(".") or domain == self.config.domain:
            raise StreamError("invalid-from", f"{claimed!r} is not a remote server's domain")
        if domain in self.authenticated or domain in self.verifying:
            return
        if self.service.refuses(domain):
            # The whole stream ends rather than a dialback error for this domain (XEP-0220 §2.4): a denied
            # server must not keep a connection open to us at all, and policy-violation (RFC 6120 §4.9.3.14)
            # with its text tells the peer's operator exactly why, where a dialback error would read as a
            # transient failure and be retried.
            raise StreamError("policy-violation", self.service.refusal(domain))
        if len(self.authenticated) + len(self.verifying) >= self.config.max_domains_per_stream:
            raise StreamError("policy-violation", "too many domains on one stream")
        key = (element.text or "").strip()
        self.verifying[domain] = asyncio.create_task(self._check_key(domain, key))

    async def _check_key(self, domain: str, key: str) -> None:
        assert self.stream_id is not None
        try:
            valid = await self.service.pool.verify(domain, stream_id=self.stream_id, key=key)
        except DeliveryError as err:
            # XEP-0220 §2.4: we could not reach the authoritative server; the peer may try again later.
            logger.info("%s: could not verify %s: %s", self.label, domain, err)
            answer = dialback_element("result", from_=self.config.domain, to=domain, type="error")
            error = etree.SubElement(answer, f"{{{SERVER_NS}}}error", type="cancel")
            etree.SubElement(error, f"{{{STANZAS_NS}}}remote-connection-failed", nsmap={None: STANZAS_NS})
            self.wire.send(answer)
            return
        finally:
            self.verifying.pop(domain, None)
        if valid:
            self.authenticated.add(domain)
            # Authenticated peers may send stanzas up to the full size (RFC 6120 §13.12, Prosody: 512 kB).
            self.wire.parser.set_max_stanza_bytes(self.config.max_stanza_bytes)
            logger.info("%s: %s authenticated by dialback", self.label, domain)
            self.service.stream_state(
                domain, connected_in=True, tls=self.wire.tls_version is not None, auth_method="dialback"
            )
        else:
            logger.warning("%s: the authoritative server of %s denied the key", self.label, domain)
        self.wire.send(
            dialback_element("result", from_=self.config.domain, to=domain, type="valid" if valid else "invalid")
        )

    # --- stanzas ---------------------------------------------------------------------------------------------

    async def _stanza(self, stanza: etree._Element) -> None:
        sender, recipient = stanza.get("from"), stanza.get("to")
        if not sender or not recipient:
            raise StreamError("improper-addressing", "a stanza needs from and to (RFC 6120 §8.1.1.1, §8.1.2.1)")
        from_domain = domain_of(sender)
        if from_domain is None:
            raise StreamError("invalid-from", f"malformed from {sender!r}")
        if from_domain not in self.authenticated:
            if not self.authenticated:
                raise StreamError("not-authorized", "no domain is authenticated on this stream yet")
            raise StreamError("invalid-from", f"{from_domain} is not authenticated on this stream")
        if domain_of(recipient) != self.config.domain:
            raise StreamError("host-unknown", f"this server does not serve {recipient}")
        if self.delivery_task is None:
            self.delivery_task = asyncio.create_task(self._deliver())
            self.service.track(self.delivery_task)
        await self.deliveries.put(stanza)

    async def _deliver(self) -> None:
        """Hand accepted stanzas to the service's callback one at a time, in the order they arrived."""
        while True:  # ends at the None put by run() when the stream is over
            stanza = await self.deliveries.get()
            if stanza is None:
                return
            from_domain = domain_of(stanza.get("from", "")) or ""
            try:
                await self.service.on_stanza(from_domain, stanza)
            except Exception:  # noqa: BLE001  (the app's bug must not end the stream; the sender hears of it)
                logger.exception("%s: the stanza handler failed", self.label)
                self.service.bounce(stanza, "internal-server-error", error_type="wait")
