"""`manage.py runfederation`: runs the XMPP server-to-server transport until SIGTERM or SIGINT (wiring only).

The supervisor (`make run`) starts it beside the web and worker processes. Until the app plugs in its own
handler, every inbound stanza is logged, and a message gets the error reply that RFC 6121 §8.5.2 (via RFC 6120
§8.3) requires for a recipient that does not exist here: `service-unavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand, CommandError
from lxml import etree

from federation.conf import FederationConfig, from_settings
from federation.service import FederationService

logger = logging.getLogger("federation")


class Command(BaseCommand):
    help = "Run the XMPP server-to-server listener and outbound pool until SIGTERM."

    def handle(self, *args: object, **options: object) -> None:
        config = from_settings()
        asyncio.run(self._serve(config))

    async def _serve(self, config: FederationConfig) -> None:
        service = FederationService(config, on_stanza=lambda domain, stanza: _log_and_bounce(service, domain, stanza))
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        try:
            await service.start()
        except OSError as err:
            raise CommandError(f"cannot listen for XMPP servers on port {config.port}: {err}") from None
        self.stdout.write(f"federation: {config.domain} listening on port {service.port}", ending="\n")
        self.stdout.flush()
        try:
            await stopping.wait()
        finally:
            await service.stop()


async def _log_and_bounce(service: FederationService, domain: str, stanza: etree._Element) -> None:
    kind = etree.QName(stanza).localname
    logger.info("from %s: <%s from=%r to=%r type=%r>", domain, kind, stanza.get("from"), stanza.get("to"),
                stanza.get("type"))  # fmt: skip
    if kind == "message":
        service.bounce(stanza, "service-unavailable")
