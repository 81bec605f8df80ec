"""`manage.py runfederation`: runs the XMPP server-to-server transport until SIGTERM or SIGINT (wiring only).

The supervisor (`make run`) starts it beside the web and worker processes. It runs three things on one event
loop: the s2s service (listener and outbound pool), the outbox sender (`federation.sender`: outbox rows out to
remote servers), and the inbound handler `federation.handlers.handle` (stanzas in, to accounts/chat actions).
Without that handler every inbound stanza is logged, and a message gets the error reply that RFC 6121 §8.5.2
(via RFC 6120 §8.3) requires for a recipient that does not exist here: `service-unavailable`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import signal
from collections.abc import Callable

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from lxml import etree

from federation.conf import FederationConfig, from_settings
from federation.sender import DEFAULT_RETENTION_SECONDS, OutboxSender
from federation.service import FederationService, OnStanza

logger = logging.getLogger("federation")


class Command(BaseCommand):
    help = "Run the XMPP server-to-server listener and outbound pool until SIGTERM."

    def handle(self, *args: object, **options: object) -> None:
        config = from_settings()
        asyncio.run(self._serve(config))

    async def _serve(self, config: FederationConfig) -> None:
        service = FederationService(config, on_stanza=_handler(lambda: service))
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        try:
            await service.start()
        except OSError as err:
            raise CommandError(f"cannot listen for XMPP servers on port {config.port}: {err}") from None
        sender = OutboxSender(
            service,
            retention_seconds=float(getattr(settings, "IMWEB_FEDERATION_RETENTION_SECONDS", DEFAULT_RETENTION_SECONDS)),
        )
        try:
            await sender.start()
            self.stdout.write(f"federation: {config.domain} listening on port {service.port}", ending="\n")
            self.stdout.flush()
            await stopping.wait()
        finally:
            await sender.stop()
            await service.stop()


def _handler(service: Callable[[], FederationService]) -> OnStanza:
    """`federation.handlers.handle` when the app provides it, else log-and-bounce."""
    if importlib.util.find_spec("federation.handlers") is None:
        return lambda domain, stanza: _log_and_bounce(service(), domain, stanza)
    from federation.handlers import handle  # an import error in it is a bug to see, not a fallback

    return handle


async def _log_and_bounce(service: FederationService, domain: str, stanza: etree._Element) -> None:
    kind = etree.QName(stanza).localname
    logger.info("from %s: <%s from=%r to=%r type=%r>", domain, kind, stanza.get("from"), stanza.get("to"),
                stanza.get("type"))  # fmt: skip
    if kind == "message":
        service.bounce(stanza, "service-unavailable")
