"""Which remote servers we federate with: the operator's per-domain allow/deny list (actions and checks).

Open federation is the default: `default` and `allow` both federate. With IMWEB_FEDERATION_ALLOWLIST_ONLY on,
only domains the operator set to `allow` federate and every other domain is treated as denied. `deny` stops
everything with that domain: its queued stanzas fail at once with a
reason the sender can read, no stream to it is opened, and its streams to us are closed (the federation
process hears of the change through the same `federation.wake` group that wakes the outbox sender).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from federation.models import BlockedAddress, OutboxItem, RemoteDomain
from federation.outbox import address_blocked, notify_senders, publish
from federation.stream import domain_of


class PolicyError(ValueError):
    """A policy change that cannot be made; the message says why."""


def allowlist_only() -> bool:
    """True when only domains the operator allowed federate (IMWEB_FEDERATION_ALLOWLIST_ONLY)."""
    return bool(getattr(settings, "IMWEB_FEDERATION_ALLOWLIST_ONLY", False))


def denied_reason(domain: str) -> str:
    if allowlist_only() and not RemoteDomain.objects.filter(domain=domain, policy=RemoteDomain.Policy.DENY).exists():
        return f"federation with {domain} is not enabled by this server's operator"
    return f"federation with {domain} is disabled by this server's operator"


def refused() -> Q:
    """The RemoteDomain rows we do not federate with, as a query condition."""
    if allowlist_only():
        return ~Q(policy=RemoteDomain.Policy.ALLOW)
    return Q(policy=RemoteDomain.Policy.DENY)


def refuses(remote: RemoteDomain) -> bool:
    """True if we do not federate with this domain's row."""
    if allowlist_only():
        return remote.policy != RemoteDomain.Policy.ALLOW
    return remote.policy == RemoteDomain.Policy.DENY


def clean_domain(domain: str) -> str:
    """The domain as stored: lower-case, no final dot; PolicyError if it is not a domain name."""
    cleaned = domain_of(domain.strip()) if domain and "@" not in domain and "/" not in domain else None
    if cleaned is None:
        raise PolicyError(f"{domain!r} is not a domain name")
    return cleaned


def is_denied(domain: str) -> bool:
    """True if this server's operator denied federation with `domain` (a JID's domain part)."""
    try:
        domain = clean_domain(domain)
    except PolicyError:
        return False
    if allowlist_only():
        return not RemoteDomain.objects.filter(domain=domain, policy=RemoteDomain.Policy.ALLOW).exists()
    return RemoteDomain.objects.filter(domain=domain, policy=RemoteDomain.Policy.DENY).exists()


def denied_domains() -> set[str]:
    return set(RemoteDomain.objects.filter(policy=RemoteDomain.Policy.DENY).values_list("domain", flat=True))


def allowed_domains() -> frozenset[str] | None:
    """In allow-list mode the only domains we federate with; None when federation is open."""
    if not allowlist_only():
        return None
    return frozenset(RemoteDomain.objects.filter(policy=RemoteDomain.Policy.ALLOW).values_list("domain", flat=True))


def fail_denied(remote: RemoteDomain) -> int:
    """Fail every stanza still waiting for a denied domain, with the reason; returns how many."""
    with transaction.atomic():
        items = list(
            OutboxItem.objects.select_related("message")
            .select_for_update()
            .filter(domain=remote, state__in=[OutboxItem.State.QUEUED, OutboxItem.State.SENDING])
        )
        reason = denied_reason(remote.domain)
        OutboxItem.objects.filter(pk__in=[item.pk for item in items]).update(
            state=OutboxItem.State.FAILED, error=reason
        )
        notify_senders(items)
    return len(items)


def set_policy(domain: str, policy: str) -> RemoteDomain:
    """Set the operator's policy for `domain` (default, allow or deny).

    Denying fails the domain's queued stanzas in the same transaction and, on commit, tells the federation
    process to close the domain's streams.
    """
    if policy not in RemoteDomain.Policy.values:
        raise PolicyError(f"the policy must be one of {', '.join(RemoteDomain.Policy.values)}, not {policy!r}")
    domain = clean_domain(domain)
    with transaction.atomic():
        remote, _ = RemoteDomain.objects.select_for_update().get_or_create(domain=domain)
        changed = remote.policy != policy
        remote.policy = policy
        remote.save(update_fields=["policy", "updated_at"])
        if refuses(remote):
            fail_denied(remote)
    if changed:
        transaction.on_commit(lambda: publish({"type": "federation.policy", "domain": domain, "policy": policy}))
    return remote


def retry_now(domain: str) -> RemoteDomain:
    """Forget the domain's backoff and wake the sender, so its queued stanzas are tried at once."""
    domain = clean_domain(domain)
    with transaction.atomic():
        remote = RemoteDomain.objects.select_for_update().get(domain=domain)
        remote.backoff_until = None
        remote.save(update_fields=["backoff_until", "updated_at"])
    transaction.on_commit(lambda: publish({"type": "federation.retry", "domain": domain}))
    return remote


def is_address_blocked(jid: str) -> bool:
    """True if the operator blocked this remote bare JID for the whole service (federation.BlockedAddress)."""
    return address_blocked(jid)


def block_address(jid: str, reason: str = "") -> BlockedAddress:
    """Block a remote bare JID for everyone here: its stanzas get the answer of a nonexistent account, nothing
    is sent to it, and what is queued for it fails now with the reason."""
    with transaction.atomic():
        blocked, _ = BlockedAddress.objects.get_or_create(jid=jid.lower(), defaults={"reason": reason[:500]})
        items = list(
            OutboxItem.objects.select_related("message")
            .select_for_update()
            .filter(recipient=blocked.jid, state__in=[OutboxItem.State.QUEUED, OutboxItem.State.SENDING])
        )
        OutboxItem.objects.filter(pk__in=[item.pk for item in items]).update(
            state=OutboxItem.State.FAILED, error=f"{blocked.jid} is blocked by this server's operator"
        )
        notify_senders(items)
    return blocked


def unblock_address(jid: str) -> int:
    return BlockedAddress.objects.filter(jid=jid.lower()).delete()[0]
