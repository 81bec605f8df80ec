"""The outbox sender, inside the federation process: outbox rows -> the s2s transport, per domain, in order.

What to send is in the database (`federation.outbox`); this only decides *when*, like Synapse's per-destination
queues. One asyncio task per destination domain sends that domain's queued rows strictly in id order through
`FederationService.enqueue` (which keeps order on the stream) and records each hand-over. A failure records the
reason in plain words on the domain's `RemoteDomain` row and backs off (`federation.backoff`: 1 s, 2 s, 4 s ...
capped at a minute), in the database, so a restart does not hammer a dead peer. After the retention
(IMWEB_FEDERATION_RETENTION_SECONDS) a row that never got through fails with the last reason, and its sender
sees it.

Wake-ups come from the `federation.wake` channel-layer group (`outbox.wake()` after a commit, the Celery beat
tick, the admin's "retry now", policy changes); the table is also polled every few seconds, so a lost wake-up
only delays.

Crash safety: a row is marked `sending` before it is handed to the stream and `sent` after. If the process dies
in between, the row is found `sending` on the next start and goes back to `queued`, so it is sent again. The peer
may then get it twice; that is acceptable only because every message we send carries an XEP-0359 origin-id and
the receiving side de-duplicates by it (as imweb does for remote messages). The other order - marking first -
could lose a stanza, which the database-is-the-truth rule forbids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import OperationalError, transaction
from django.db.models import Q
from django.utils import timezone
from lxml import etree

from federation import policy
from federation.backoff import next_attempt
from federation.models import OutboxItem, RemoteDomain
from federation.outbox import EPHEMERAL_EVENT, WAKE_GROUP, notify_senders
from federation.service import FederationService
from federation.stream import DeliveryError

logger = logging.getLogger("federation")

POLL_INTERVAL = 5.0
STATE_WRITE_ATTEMPTS = 5  # a stream event recorded on a busy database is tried this often
BATCH = 100  # rows handed to a stream per round trip to the database
DEFAULT_RETENTION_SECONDS = 3 * 24 * 60 * 60
STOP_TIMEOUT = 5.0
# Our own stanzas, re-read from their wire form: no entities, no network, as for anything else we parse.
_EPHEMERAL_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _forget_ephemeral(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.debug("outbox: an ephemeral stanza was not sent: %s", future.exception())


def duration_words(seconds: float) -> str:
    """'3 days', '2 hours', '1 minute', '40 seconds': the largest whole unit, for plain-words reasons."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"


class OutboxSender:
    """Sends the outbox through `service`; see the module docstring. `clock` is for tests."""

    def __init__(
        self,
        service: FederationService,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        poll_interval: float = POLL_INTERVAL,
        clock: Callable[[], datetime] = timezone.now,
        jitter: Callable[[], float] | None = random.random,
    ) -> None:
        self.service = service
        self.retention = timedelta(seconds=retention_seconds)
        self.poll_interval = poll_interval
        self.clock = clock
        self.jitter = jitter
        self.wakeup = asyncio.Event()
        self.domains: dict[str, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.main: asyncio.Task[None] | None = None
        self.listener: asyncio.Task[None] | None = None
        self.stopping = False

    # --- life -------------------------------------------------------------------------------------------------

    async def start(self, *, listen: bool = True) -> None:
        """Recover from a crash, load the deny list, and start sending (and listening for wake-ups)."""
        await self.recover()
        self.main = asyncio.create_task(self._run())
        if listen:
            self.listener = asyncio.create_task(self._listen())

    async def recover(self) -> None:
        """Rows left `sending` by a crash go back to the queue; load the deny list; listen to stream events."""
        requeued = await database_sync_to_async(self._recover)()
        if requeued:
            logger.info("outbox: %d stanzas were being handed over when we stopped; sending them again", requeued)
        await self._load_policy()
        self.service.state_listener = self.domain_state

    async def stop(self) -> None:
        # The flag ends the loops even when a library swallows a cancellation (seen with the pub/sub layer when
        # SIGTERM arrives while it subscribes); what still runs after the grace is cancelled again by asyncio.run.
        self.stopping = True
        self.wakeup.set()
        tasks = [task for task in (self.main, self.listener, *self.domains.values(), *self.tasks) if task]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            if pending:
                logger.warning("outbox: %d tasks did not stop in time", len(pending))
        self.domains.clear()
        if self.listener is not None:
            # The pub/sub layer keeps a receiver task and a Redis connection per loop: close them.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await get_channel_layer().flush()

    def wake(self) -> None:
        self.wakeup.set()

    # --- the loop ---------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self.stopping:
            self.wakeup.clear()
            try:
                await self.run_once()
            except Exception:  # a database hiccup must not end sending; the next poll retries)
                logger.exception("outbox: a pass over the queue failed")
            try:
                async with asyncio.timeout(self.poll_interval):
                    await self.wakeup.wait()
            except TimeoutError:
                pass

    async def run_once(self) -> list[str]:
        """One pass: expire old rows, fail rows of denied domains, start a task for each domain that is due.

        Returns the domains whose sending started in this pass (tests wait on them with `drained()`).
        """
        due = await database_sync_to_async(self._due_domains)()
        started = []
        for domain in due:
            task = self.domains.get(domain)
            if task is None or task.done():
                self.domains[domain] = asyncio.create_task(self._drain(domain))
                started.append(domain)
        return started

    async def drained(self) -> None:
        """Wait until every domain task started so far has finished (for tests)."""
        await asyncio.gather(*self.domains.values(), return_exceptions=True)

    # --- database side (run in a thread) -------------------------------------------------------------------------

    def _recover(self) -> int:
        # Streams do not survive a restart: the operators' view must not show connections a crash left behind.
        # (With several federation processes for one domain, each one's streams reappear as they reconnect.)
        RemoteDomain.objects.filter(Q(connected_in=True) | Q(connected_out=True)).update(
            connected_in=False, connected_out=False
        )
        return OutboxItem.objects.filter(state=OutboxItem.State.SENDING).update(state=OutboxItem.State.QUEUED)

    def _due_domains(self) -> list[str]:
        now = self.clock()
        self._expire(now)
        for remote in RemoteDomain.objects.filter(policy.refused(), outbox__state=OutboxItem.State.QUEUED).distinct():
            policy.fail_denied(remote)
        return list(
            RemoteDomain.objects.filter(outbox__state=OutboxItem.State.QUEUED)
            .exclude(policy.refused())
            .filter(Q(backoff_until__isnull=True) | Q(backoff_until__lte=now))
            .values_list("domain", flat=True)
            .distinct()
        )

    def _expire(self, now: datetime) -> None:
        """Rows queued longer than the retention fail, with how long we tried and the last error."""
        cutoff = now - self.retention
        with transaction.atomic():
            items = list(
                OutboxItem.objects.select_related("message", "domain")
                .select_for_update()
                .filter(state=OutboxItem.State.QUEUED, created_at__lte=cutoff)
            )
            for item in items:
                last = item.error or item.domain.last_error or "no attempt succeeded"
                item.state = OutboxItem.State.FAILED
                item.error = (
                    f"could not reach {item.domain.domain} for {duration_words(self.retention.total_seconds())}: {last}"
                )
                item.save(update_fields=["state", "error"])
            notify_senders(items)
        if items:
            logger.warning("outbox: %d stanzas expired undelivered", len(items))

    def _claim(self, domain: str) -> list[OutboxItem]:
        """The next queued rows of `domain`, in order, marked `sending` (attempts counted)."""
        with transaction.atomic():
            remote = RemoteDomain.objects.get(domain=domain)
            now = self.clock()
            if policy.refuses(remote) or (remote.backoff_until and remote.backoff_until > now):
                return []
            items = list(
                OutboxItem.objects.select_related("message")
                .filter(domain=remote, state=OutboxItem.State.QUEUED)
                .order_by("id")[:BATCH]
            )
            for item in items:
                item.state = OutboxItem.State.SENDING
                item.attempts += 1
            OutboxItem.objects.bulk_update(items, ["state", "attempts"])
        return items

    def _finish(
        self, domain: str, sent: list[OutboxItem], failed: list[OutboxItem], rejected: list[tuple[OutboxItem, str]],
        reason: str | None, retry_at: datetime | None,
    ) -> None:  # fmt: skip
        """Record one batch: handed over, to retry (with the domain's backoff), refused for good."""
        now = self.clock()
        with transaction.atomic():
            remote = RemoteDomain.objects.select_for_update().get(domain=domain)
            if sent:
                # A receipt may have come back already (marked delivered): keep that.
                OutboxItem.objects.filter(pk__in=[i.pk for i in sent], state=OutboxItem.State.SENDING).update(
                    state=OutboxItem.State.SENT, sent_at=now, error=""
                )
            if failed:
                OutboxItem.objects.filter(pk__in=[i.pk for i in failed], state=OutboxItem.State.SENDING).update(
                    state=OutboxItem.State.QUEUED, error=reason or ""
                )
            for item, why in rejected:
                OutboxItem.objects.filter(pk=item.pk).update(state=OutboxItem.State.FAILED, error=why)
            if reason is None:
                if sent:
                    remote.last_success_at = now
                remote.failures = 0
                remote.backoff_until = None
            else:
                remote.failures += 1
                remote.last_error = reason
                remote.last_error_at = now
                attempt_at = next_attempt(remote.failures, now, jitter=self.jitter)
                remote.backoff_until = max(attempt_at, retry_at) if retry_at else attempt_at
            remote.save()
            notify_senders([*sent, *failed, *(item for item, _ in rejected)])

    # --- sending ----------------------------------------------------------------------------------------------

    async def _drain(self, domain: str) -> None:
        """Send `domain`'s queued rows in order until none is left or a failure backs the domain off."""
        try:
            await self._drain_rounds(domain)
        finally:
            # A row committed while this task was ending may have had its wake-up see the task still running:
            # one more pass picks it up now rather than at the next poll.
            self.wake()

    async def _drain_rounds(self, domain: str) -> None:
        while not self.stopping:  # bounded by the queue: each round claims rows or ends
            items = await database_sync_to_async(self._claim)(domain)
            if not items:
                return
            futures: list[asyncio.Future[None] | None] = []
            rejected: list[tuple[OutboxItem, str]] = []
            for item in items:
                try:
                    futures.append(self.service.enqueue(etree.fromstring(item.stanza.encode())))
                except (ValueError, etree.XMLSyntaxError) as err:  # never sendable: say so, do not retry
                    futures.append(None)
                    rejected.append((item, f"this stanza cannot be sent: {err}"))
            sent: list[OutboxItem] = []
            failed: list[OutboxItem] = []
            reason: str | None = None
            for item, future in zip(items, futures, strict=True):
                if future is None:
                    continue
                try:
                    await future
                except DeliveryError as err:
                    failed.append(item)
                    reason = reason or str(err)
                else:
                    sent.append(item)
            retry_at = None
            if reason is not None and self.service.pool is not None:
                # The pool keeps its own short backoff in memory; never come back before it would let us try.
                pool_failure = self.service.pool.failures.get(domain)
                retry_at = pool_failure[1] if pool_failure else None
            await database_sync_to_async(self._finish)(domain, sent, failed, rejected, reason, retry_at)
            if reason is not None:
                logger.info("outbox: %s backs off after: %s", domain, reason)
                self._wake_at_backoff(domain)
                return

    def _wake_at_backoff(self, domain: str) -> None:
        """Come back when the backoff ends, instead of waiting for the next poll (max one minute anyway)."""

        async def later() -> None:
            remote = await database_sync_to_async(RemoteDomain.objects.filter(domain=domain).first)()
            if remote is not None and remote.backoff_until is not None:
                await asyncio.sleep(max(0.0, (remote.backoff_until - self.clock()).total_seconds()))
                self.wake()

        task = asyncio.create_task(later())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- what the transport tells us, and what others tell us ----------------------------------------------------

    def domain_state(self, domain: str, **fields: object) -> None:
        """Record a stream event on the domain's row (connected_in/out, tls, auth_method)."""

        def save() -> None:
            RemoteDomain.objects.get_or_create(domain=domain)
            RemoteDomain.objects.filter(domain=domain).update(updated_at=timezone.now(), **fields)

        async def run() -> None:
            # A busy database (SQLite's lock, a failed-over PostgreSQL) is retried briefly: a lost "closed"
            # would show the operator a stream as connected until the next event.
            for attempt in range(STATE_WRITE_ATTEMPTS):
                try:
                    await database_sync_to_async(save)()
                    return
                except OperationalError:
                    if attempt + 1 < STATE_WRITE_ATTEMPTS:
                        await asyncio.sleep(0.05 * 2**attempt)
                        continue
                    logger.exception("could not record the state of %s", domain)
                except Exception:  # (only the operators' view is stale)
                    logger.exception("could not record the state of %s", domain)
                    return

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _load_policy(self) -> None:
        """Give the transport the operator's current policy (it refuses streams with these domains)."""

        def load() -> tuple[set[str], frozenset[str] | None]:
            return policy.denied_domains(), policy.allowed_domains()

        self.service.denied, self.service.allowed = await database_sync_to_async(load)()

    async def handle_event(self, event: dict[str, object]) -> None:
        kind, domain = event.get("type"), str(event.get("domain") or "")
        if kind == EPHEMERAL_EVENT:
            self.send_ephemeral(domain, str(event.get("stanza") or ""))
            return
        if kind == "federation.policy":
            await self._load_policy()
            if self.service.refuses(domain):
                self.service.close_domain(domain, policy.denied_reason(domain))
        elif kind == "federation.retry" and self.service.pool is not None:
            self.service.pool.failures.pop(domain, None)
        self.wake()

    def send_ephemeral(self, domain: str, text: str) -> None:
        """Send a stanza that is never stored (a chat state) if the domain can be reached now; otherwise it is
        forgotten. It is our own serialisation (federation.outbox.chat_state), parsed without entities."""
        if self.service.pool is None or not domain or self.service.refuses(domain):
            return
        try:
            stanza = etree.fromstring(text.encode(), _EPHEMERAL_PARSER)
            future = self.service.enqueue(stanza)
        except (etree.XMLSyntaxError, ValueError) as err:
            logger.info("outbox: not sending an ephemeral stanza to %s: %s", domain, err)
            return
        future.add_done_callback(_forget_ephemeral)

    async def _listen(self) -> None:
        """Wake-ups from other processes, through the channel layer (lost ones are covered by polling)."""
        while not self.stopping:
            try:
                layer = get_channel_layer()
                channel = await layer.new_channel()
                await layer.group_add(WAKE_GROUP, channel)
                logger.info("outbox: listening for wake-ups")
                while not self.stopping:  # or until the layer fails
                    await self.handle_event(await layer.receive(channel))
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001  (Valkey away: keep polling, listen again later)
                logger.warning("outbox: wake-ups unavailable (%s); polling every %.0f s", err, self.poll_interval)
                await asyncio.sleep(self.poll_interval)
