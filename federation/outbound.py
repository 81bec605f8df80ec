"""Our side of s2s connections: one outbound stream per remote domain, opened on demand (RFC 6120, XEP-0220).

Stanzas travel only on streams we opened (docs/federation.md §7.1), so sending to a domain means: resolve it, connect,
open a stream, STARTTLS when the peer offers it (or our policy requires it), dialback, and only once the peer says
our key is `valid` write the stanzas that queued up meanwhile, in order. Each stanza's future is resolved when its
bytes are written (handed over), or fails with a `DeliveryError` whose message says why in plain words.

The same stream carries our `db:verify` questions when a peer claims that domain on one of our inbound streams
(XEP-0220 §2.1.3): Prosody and ejabberd answer them before our own dialback is done.

An idle stream gets a whitespace keepalive every few minutes (RFC 6120 §4.6.1) and is closed after the idle
timeout; the next stanza opens a new one. After a failed attempt the domain is left alone for a short while
(federation.backoff), and stanzas for it fail at once with the last reason instead of hammering the peer.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lxml import etree

from federation.backoff import next_attempt
from federation.dialback import dialback_key
from federation.errors import StreamError
from federation.resolver import ResolutionError
from federation.serialize import STREAM_CLOSE, stream_header
from federation.stream import (
    CLOSE_TIMEOUT,
    DB_RESULT,
    DB_VERIFY,
    ERROR,
    FEATURES,
    PROCEED,
    STARTTLS,
    TLS_FAILURE,
    TLS_NS,
    DeliveryError,
    PeerClosed,
    Wire,
    dialback_element,
    logger,
    stream_error_of,
)
from federation.xmlstream import Event, StanzaReceived, StreamClosed, StreamOpened, XMLStreamParser

if TYPE_CHECKING:
    from federation.service import FederationService

MAX_ROUTES = 8  # addresses tried per attempt, so a domain with a hundred SRV records cannot stall us
MAX_REMEMBERED_FAILURES = 10_000


class _Failed(Exception):
    """The stream cannot go on; `reason` is for the people whose stanzas did not go out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutboundStream:
    """The stream from our domain to one remote domain; see the module docstring."""

    def __init__(self, pool: OutboundPool, domain: str) -> None:
        self.pool = pool
        self.service = pool.service
        self.config = pool.service.config
        self.domain = domain
        self.wire: Wire | None = None
        self.ready = False  # dialback done: stanzas may be written
        self.dialback_sent = False  # db:verify questions may be written
        self.remote_id: str | None = None
        self.queue: deque[tuple[bytes, asyncio.Future[None]]] = deque()
        self.verifies: dict[str, tuple[str, asyncio.Future[bool]]] = {}  # stream id -> (key, answer)
        self.wake = asyncio.Event()
        self.last_used = asyncio.get_running_loop().time()
        self.task = asyncio.create_task(self._run())
        self.service.track(self.task)

    @property
    def label(self) -> str:
        return f"outbound {self.config.domain}->{self.domain}"

    def submit(self, data: bytes) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.append((data, future))
        self.wake.set()
        return future

    def verify(self, stream_id: str, key: str) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        previous = self.verifies.get(stream_id)
        if previous is not None and not previous[1].done():
            previous[1].set_exception(DeliveryError("replaced by a newer verification of the same stream"))
        self.verifies[stream_id] = (key, future)
        if self.dialback_sent:
            self._ask(stream_id, key)
        return future

    def forget_verify(self, stream_id: str) -> None:
        self.verifies.pop(stream_id, None)

    def _ask(self, stream_id: str, key: str) -> None:
        assert self.wire is not None
        self.wire.send(dialback_element("verify", text=key, from_=self.config.domain, to=self.domain, id=stream_id))

    # --- the life of the stream ----------------------------------------------------------------------------

    async def _run(self) -> None:
        reason = "the connection was closed"
        try:
            try:
                async with asyncio.timeout(self.config.handshake_timeout):
                    await self._connect()
                    await self._handshake()
            except TimeoutError:
                raise _Failed(
                    f"{self.domain} did not complete the connection and dialback within "
                    f"{self.config.handshake_timeout:.0f} s"
                ) from None
            self.pool.succeeded(self.domain)
            assert self.wire is not None
            self.service.stream_state(
                self.domain, connected_out=True, tls=self.wire.tls_version is not None, auth_method="dialback"
            )
            logger.info("%s: authenticated, sending", self.label)
            reason = await self._serve()
        except _Failed as failed:
            reason = failed.reason
            self.pool.failed(self, reason)
        except StreamError as err:
            # The peer's bytes broke the XML rules: tell it (RFC 6120 §4.9) and give up on this stream.
            reason = f"{self.domain} sent invalid XML ({err})"
            if self.wire is not None:
                self.wire.fail(err)
            self.pool.failed(self, reason)
        except PeerClosed as closed:
            reason = f"{self.domain}: {closed.reason}"
            self.pool.failed(self, reason)
        except (OSError, ssl.SSLError, EOFError) as err:
            reason = f"the connection to {self.domain} failed: {err or type(err).__name__}"
            self.pool.failed(self, reason)
        except asyncio.CancelledError:
            reason = "the federation service is stopping"
            raise
        except Exception as err:  # noqa: BLE001  (a bug here must end this stream only)
            logger.exception("%s: internal error", self.label)
            reason = f"internal error: {err}"
            self.pool.failed(self, reason)
        finally:
            self.pool.forget(self)
            self._fail_all(reason)
            if self.wire is not None:
                self.wire.close()
            logger.info("%s: closed (%s)", self.label, reason)

    def _fail_all(self, reason: str) -> None:
        error = DeliveryError(reason)
        while self.queue:
            _, future = self.queue.popleft()
            if not future.done():
                future.set_exception(error)
        for _, future in self.verifies.values():
            if not future.done():
                future.set_exception(error)
        self.verifies.clear()

    async def _connect(self) -> None:
        try:
            routes = await self.pool.service.resolver.resolve(self.domain)
        except ResolutionError as err:
            raise _Failed(f"cannot find the server of {self.domain}: {err}") from None
        problems = []
        for host, port in routes[:MAX_ROUTES]:
            try:
                async with asyncio.timeout(self.config.connect_timeout):
                    reader, writer = await asyncio.open_connection(host, port)
            except (OSError, TimeoutError) as err:
                problems.append(f"{host}:{port}: {err or 'timed out'}")
                continue
            parser = XMLStreamParser(max_stanza_bytes=self.config.max_stanza_bytes_unauthenticated)
            self.wire = Wire(reader, writer, parser)
            logger.debug("%s: connected to %s:%s", self.label, host, port)
            return
        raise _Failed(f"could not connect to {self.domain} ({'; '.join(problems) or 'no address'})")

    async def _handshake(self) -> None:
        """Stream header, features, STARTTLS (then all that again), dialback; returns once our key is valid."""
        wire = self.wire
        assert wire is not None
        while True:  # at most twice: before and after STARTTLS
            features = await self._open_stream()
            starttls = features.find(STARTTLS) if features is not None else None
            if wire.encrypted or (starttls is None and self.config.tls != "required"):
                break
            if starttls is None:
                wire.fail(StreamError("policy-violation", "STARTTLS is required by our policy"))
                raise _Failed(f"{self.domain} does not offer STARTTLS, which IMWEB_S2S_TLS='required' demands")
            if self.config.tls == "off":
                if starttls.find(f"{{{TLS_NS}}}required") is not None:
                    wire.write(STREAM_CLOSE)
                    raise _Failed(f"{self.domain} requires STARTTLS, and IMWEB_S2S_TLS is 'off'")
                break
            wire.write(f"<starttls xmlns='{TLS_NS}'/>".encode())
            answer = await self._next_element()
            if answer.tag == TLS_FAILURE:
                raise _Failed(f"{self.domain} refused to start TLS")
            if answer.tag != PROCEED:
                raise StreamError("unsupported-stanza-type", "expected <proceed/> after <starttls/>")
            try:
                await wire.start_tls(
                    self.service.client_tls, server_hostname=self.domain, handshake_timeout=self.config.connect_timeout
                )
            except ssl.SSLError as err:
                raise _Failed(f"the TLS handshake with {self.domain} failed: {err.reason or err}") from None
            logger.debug("%s: encrypted (%s)", self.label, wire.tls_version)

        # XEP-0220 §2.1.1: our key for the stream id the peer gave us (the post-TLS one).
        assert self.remote_id is not None
        key = dialback_key(
            self.config.dialback_secret, receiving=self.domain, originating=self.config.domain, stream_id=self.remote_id
        )
        wire.send(dialback_element("result", text=key, from_=self.config.domain, to=self.domain))
        self.dialback_sent = True
        for stream_id, (pending_key, future) in list(self.verifies.items()):
            if not future.done():
                self._ask(stream_id, pending_key)
        while True:  # until the peer's verdict on our key; bounded by the handshake timeout
            element = await self._next_element()
            if element.tag != DB_RESULT:
                self._other(element)
                continue
            verdict = element.get("type")
            if element.get("from", "").lower() != self.domain or not verdict:
                continue
            if verdict == "valid":
                self.ready = True
                wire.parser.set_max_stanza_bytes(self.config.max_stanza_bytes)
                return
            if verdict == "invalid":
                raise _Failed(
                    f"{self.domain} rejected our dialback key: it could not confirm with {self.config.domain} that "
                    "we sent it (check that our domain resolves to this server and that every federation process "
                    "shares IMWEB_DIALBACK_SECRET)"
                )
            condition = _dialback_error(element)
            raise _Failed(f"{self.domain} could not check our dialback key ({condition})")

    async def _open_stream(self) -> etree._Element | None:
        """Send our header; read the peer's header and, for XMPP 1.0, its features."""
        wire = self.wire
        assert wire is not None
        wire.write(stream_header(from_=self.config.domain, to=self.domain, stream_id=None))
        event = await self._next_event()
        if not isinstance(event, StreamOpened):
            raise StreamError("bad-format", "expected the stream header")
        if not event.id:
            raise _Failed(f"{self.domain} gave our stream no id, so dialback is impossible")
        self.remote_id = event.id
        if not (event.version or "").startswith("1."):
            return None  # pre-1.0 peers send no features and expect dialback at once (XEP-0220 §2.1.1)
        element = await self._next_element()
        if element.tag != FEATURES:
            raise StreamError("bad-format", "expected stream features")
        return element

    async def _next_event(self) -> Event:
        assert self.wire is not None
        event = await self.wire.next_event()
        if isinstance(event, StreamClosed):
            raise PeerClosed("the peer closed the stream")
        return event

    async def _next_element(self) -> etree._Element:
        """The peer's next top-level element; its stream error ends the stream."""
        event = await self._next_event()
        if not isinstance(event, StanzaReceived):
            raise StreamError("bad-format", "a new stream header in the middle of the stream")
        if event.element.tag == ERROR:
            condition, text = stream_error_of(event.element)
            raise _Failed(f"{self.domain} closed the stream with the error {condition}" + (f": {text}" if text else ""))
        return event.element

    def _other(self, element: etree._Element) -> None:
        """Elements besides our own dialback verdict: answers to our db:verify questions, else ignored."""
        if element.tag == DB_VERIFY and element.get("type"):
            entry = self.verifies.pop(element.get("id", ""), None)
            if entry is None or element.get("from", "").lower() != self.domain:
                return
            _, future = entry
            if not future.done():
                future.set_result(element.get("type") == "valid")
            return
        # Without XEP-0288 (bidi), which we do not offer, stanzas never come on our own stream (RFC 6120 §4.2).
        logger.info("%s: ignoring <%s/> on our outbound stream", self.label, etree.QName(element).localname)

    async def _serve(self) -> str:
        """Write queued stanzas and read answers until the stream ends; returns why it ended."""
        reader = asyncio.create_task(self._read_loop())
        writer = asyncio.create_task(self._write_loop())
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer in done and writer.exception() is None:
                # We closed an idle stream: give the peer time to answer with its close tag (RFC 6120 §4.4),
                # which ends the read loop.
                await asyncio.wait({reader}, timeout=CLOSE_TIMEOUT)
                return "closed after being idle"
            first = reader if reader in done else writer
            error = first.exception()
            if error is not None:
                raise error
            return "the stream ended"
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)

    async def _read_loop(self) -> None:
        while True:  # ends with the peer's close or an error
            self._other(await self._next_element())

    async def _write_loop(self) -> None:
        wire = self.wire
        assert wire is not None
        loop = asyncio.get_running_loop()
        while True:  # ends when the stream has been idle for the idle timeout
            if self.queue:
                batch = list(self.queue)
                self.queue.clear()
                for data, _ in batch:
                    wire.write(data)
                await wire.drain()
                self.last_used = loop.time()
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)  # handed over: written after dialback succeeded
                continue
            self.wake.clear()
            try:
                async with asyncio.timeout(self.config.keepalive_interval):
                    await self.wake.wait()
                continue
            except TimeoutError:
                pass
            if loop.time() - self.last_used >= self.config.idle_timeout and not self.verifies:
                # The queue is empty (a submit would have woken us). From now on new stanzas open a new stream.
                self.pool.forget(self)
                wire.write(STREAM_CLOSE)
                await wire.drain()
                return
            wire.write(b" ")  # RFC 6120 §4.6.1 whitespace keepalive
            await wire.drain()

    def close(self) -> None:
        """The service is stopping: close the stream (RFC 6120 §4.4) without waiting for anything."""
        if self.wire is not None:
            self.wire.write(STREAM_CLOSE)
            self.wire.close()
        self.task.cancel()


class OutboundPool:
    """The outbound streams, one per remote domain, and when a failed domain may be tried again."""

    def __init__(self, service: FederationService) -> None:
        self.service = service
        self.streams: dict[str, OutboundStream] = {}
        self.failures: dict[str, tuple[int, datetime, str]] = {}  # domain -> (attempts, retry at, reason)
        self.closed = False

    def stream(self, domain: str) -> OutboundStream:
        """The stream to `domain`, opened if there is none; DeliveryError while the domain is backing off."""
        existing = self.streams.get(domain)
        if existing is not None:
            return existing
        if self.closed:
            raise DeliveryError("the federation service is stopping")
        if self.service.refuses(domain):
            raise DeliveryError(self.service.refusal(domain))
        failure = self.failures.get(domain)
        if failure is not None:
            _, retry_at, reason = failure
            wait = (retry_at - datetime.now(UTC)).total_seconds()
            if wait > 0:
                raise DeliveryError(f"{reason} (next attempt in {wait:.0f} s)")
        stream = OutboundStream(self, domain)
        self.streams[domain] = stream
        return stream

    def submit(self, domain: str, data: bytes) -> asyncio.Future[None]:
        try:
            return self.stream(domain).submit(data)
        except DeliveryError as err:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.set_exception(err)
            return future

    async def verify(self, domain: str, *, stream_id: str, key: str) -> bool:
        """Ask `domain`'s authoritative server whether it issued `key` for our stream `stream_id`."""
        stream = self.stream(domain)
        future = stream.verify(stream_id, key)
        try:
            async with asyncio.timeout(self.service.config.verify_timeout):
                return await future
        except TimeoutError:
            stream.forget_verify(stream_id)
            raise DeliveryError(f"{domain} did not answer our dialback verification in time") from None

    def succeeded(self, domain: str) -> None:
        self.failures.pop(domain, None)

    def failed(self, stream: OutboundStream, reason: str) -> None:
        """A stream ended badly. Only a failure to get ready counts towards backing off: a stream that worked
        and then broke is simply reopened on demand."""
        if stream.ready:
            return
        now = datetime.now(UTC)
        if len(self.failures) >= MAX_REMEMBERED_FAILURES:
            # Peers can make us try domains they merely claim (dialback): forget those whose wait is over.
            self.failures = {domain: entry for domain, entry in self.failures.items() if entry[1] > now}
        attempts = self.failures.get(stream.domain, (0, None, ""))[0] + 1
        retry_at = next_attempt(attempts, now, jitter=random.random)
        self.failures[stream.domain] = (attempts, retry_at, reason)
        logger.warning("%s: %s", stream.label, reason)

    def forget(self, stream: OutboundStream) -> None:
        if self.streams.get(stream.domain) is stream:
            del self.streams[stream.domain]
            if stream.ready:
                self.service.stream_state(stream.domain, connected_out=False)

    def close_domain(self, domain: str) -> None:
        """Close the stream to `domain`, if any (its operator-denied state refuses a new one)."""
        stream = self.streams.pop(domain, None)
        if stream is not None:
            stream.close()
            if stream.ready:
                self.service.stream_state(domain, connected_out=False)

    def close_all(self) -> None:
        self.closed = True
        for stream in list(self.streams.values()):
            stream.close()
        self.streams.clear()


def _dialback_error(element: etree._Element) -> str:
    for error in element:
        for condition in error:
            if isinstance(condition.tag, str):
                return etree.QName(condition).localname
    return "no reason given"
