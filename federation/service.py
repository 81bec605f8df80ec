"""The XMPP server-to-server transport as one object: the s2s listener, the outbound pool, and their settings.

This is the whole interface the rest of imweb needs:

    service = FederationService(config, on_stanza=handle)   # config: federation.conf.from_settings()
    await service.start()                                   # listen on IMWEB_S2S_PORT
    await service.send(stanza)                              # returns once handed over, or raises DeliveryError
    future = service.enqueue(stanza)                        # the same without waiting (order is kept)
    await service.stop()

`handle(from_domain, stanza)` is awaited for every stanza a remote server sent us, once that server's domain is
authenticated by dialback on its stream; stanzas of one stream arrive in order. Stanzas are lxml elements in the
`jabber:server` namespace; those we send may be built in jabber:server, jabber:client or no namespace at all.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable

from lxml import etree

from federation.bounce import error_reply
from federation.conf import FederationConfig
from federation.inbound import InboundStream
from federation.outbound import OutboundPool
from federation.resolver import Resolver
from federation.serialize import as_server_stanza, to_xml
from federation.stream import DeliveryError, domain_of
from federation.tls import client_context, server_context

logger = logging.getLogger("federation")

OnStanza = Callable[[str, etree._Element], Awaitable[None]]
STOP_TIMEOUT = 5.0
_CLIENT_NS = "jabber:client"
_STANZA_KINDS = frozenset({"message", "presence", "iq"})


class FederationService:
    """The s2s listener and outbound pool of one imweb domain; see the module docstring."""

    def __init__(self, config: FederationConfig, on_stanza: OnStanza, *, resolver: Resolver | None = None) -> None:
        self.config = config
        self.on_stanza = on_stanza
        self.resolver = resolver or Resolver(config.peers, nameserver=config.dns_server)
        self.pool: OutboundPool | None = None
        self.server: asyncio.Server | None = None
        self.inbound: set[InboundStream] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server_tls: ssl.SSLContext | None = None
        self.client_tls: ssl.SSLContext | None = None
        # Domains the operator denied (federation.policy); kept current by the outbox sender.
        self.denied: set[str] = set()
        # In allow-list mode (IMWEB_FEDERATION_ALLOWLIST_ONLY) the only domains we federate with; None: open.
        self.allowed: frozenset[str] | None = None
        # Told about stream events: state_listener(domain, connected_in=..., connected_out=..., tls=...,
        # auth_method=...); the outbox sender records them on the domain's row for the operators' view.
        self.state_listener: Callable[..., None] | None = None

    @property
    def domain(self) -> str:
        return self.config.domain

    def refuses(self, domain: str) -> bool:
        """True if the operator's policy says we do not federate with `domain`."""
        return domain in self.denied or (self.allowed is not None and domain not in self.allowed)

    def refusal(self, domain: str) -> str:
        """Why we do not federate with `domain`, in words for the peer's operator."""
        how = "disabled" if domain in self.denied else "not enabled"
        return f"federation with {domain} is {how} by this server's operator"

    @property
    def port(self) -> int:
        """The port the listener is bound to (useful when the config says 0: any free port)."""
        if self.server is None or not self.server.sockets:
            raise RuntimeError("the federation service is not started")
        return self.server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        """Load or create our certificate and start listening. Raises OSError if the port cannot be bound."""
        if self.config.tls != "off":
            self.server_tls = server_context(self.config)
            self.client_tls = client_context(self.config)
        self.pool = OutboundPool(self)
        self.server = await asyncio.start_server(
            self._accept, host=self.config.bind or None, port=self.config.port, reuse_address=True
        )
        logger.info("s2s listener for %s on port %s (STARTTLS %s)", self.config.domain, self.port, self.config.tls)

    async def stop(self) -> None:
        """Close every stream (telling peers, RFC 6120 §4.9.3.21 system-shutdown) and stop listening."""
        if self.server is not None:
            self.server.close()
        for stream in list(self.inbound):
            stream.shutdown()
        if self.pool is not None:
            self.pool.close_all()
        tasks = [task for task in self.tasks if not task.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()
            self.server = None
        logger.info("s2s service for %s stopped", self.config.domain)

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a reference to a background task until it ends, so stop() can wait for it."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def stream_state(self, domain: str, **fields: object) -> None:
        """A stream to or from `domain` changed (see `state_listener`); never raises."""
        if self.state_listener is not None:
            try:
                self.state_listener(domain, **fields)
            except Exception:  # (bookkeeping must never break a stream)
                logger.exception("recording the stream state of %s failed", domain)

    def connected_in(self, domain: str) -> bool:
        return any(domain in stream.authenticated for stream in self.inbound)

    def close_domain(self, domain: str, reason: str) -> None:
        """Federation with `domain` was denied: close its streams (RFC 6120 §4.9.3.14 policy-violation)."""
        for stream in list(self.inbound):
            if domain in stream.authenticated or stream.peer_domain == domain:
                stream.refuse(reason)
        if self.pool is not None:
            self.pool.close_domain(domain)

    # --- sending --------------------------------------------------------------------------------------------

    def enqueue(self, stanza: etree._Element) -> asyncio.Future[None]:
        """Queue `stanza` for its recipient's server; the future completes when it is handed over.

        Call it on the service's event loop. Stanzas to the same domain are written in the order they were
        enqueued. The future fails with DeliveryError and a plain-words reason when the stanza could not be handed
        over. A stanza that is not ours to send (no `to`, a `from` outside our domain, a local recipient) raises
        ValueError at once.
        """
        if self.pool is None:
            raise RuntimeError("the federation service is not started")
        stanza = as_server_stanza(stanza)
        sender, recipient = stanza.get("from"), stanza.get("to")
        if not sender or domain_of(sender) != self.config.domain:
            raise ValueError(f"a federated stanza must come from our domain {self.config.domain}, not {sender!r}")
        remote = domain_of(recipient or "")
        if remote is None:
            raise ValueError(f"not a valid recipient: {recipient!r}")
        if remote == self.config.domain:
            raise ValueError(f"{recipient} is local: deliver it without federation")
        data = to_xml(stanza)
        if len(data) > self.config.max_stanza_bytes:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.set_exception(DeliveryError(f"the stanza is {len(data)} bytes, more than peers accept"))
            return future
        return self.pool.submit(remote, data)

    async def send(self, stanza: etree._Element) -> None:
        """Send `stanza` and return once it is handed over; raises DeliveryError (or ValueError, see enqueue)."""
        await self.enqueue(stanza)

    def bounce(self, stanza: etree._Element, condition: str, *, error_type: str = "cancel") -> None:
        """Send the RFC 6120 §8.3 error reply for a stanza we received, if one is due; failures are only logged."""
        reply = error_reply(stanza, condition, error_type=error_type)
        if reply is None:
            return
        try:
            future = self.enqueue(reply)
        except ValueError as err:
            logger.info("not bouncing %s: %s", stanza.get("id"), err)
            return
        future.add_done_callback(_log_bounce_failure)

    # --- receiving ------------------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.inbound) >= self.config.max_inbound_streams:
            # RFC 6120 §13.12: refuse rather than let a flood of connections exhaust us.
            logger.warning("refusing an s2s connection: %d streams open", len(self.inbound))
            writer.close()
            return
        stream = InboundStream(self, reader, writer)
        self.inbound.add(stream)
        task = asyncio.current_task()
        if task is not None:
            self.track(task)  # type: ignore[arg-type]
        try:
            await stream.run()
        finally:
            self.inbound.discard(stream)


_as_server_stanza = as_server_stanza  # the name the transport tests use (it lives in federation.serialize)


def _log_bounce_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.info("an error reply could not be sent: %s", future.exception())
