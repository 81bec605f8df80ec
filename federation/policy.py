"""Which remote servers we federate with: the operator's per-domain allow/deny list (actions and checks).

`default` and `allow` both federate today; `allow` records an operator's explicit trust, for the day an
allow-list mode exists. `deny` stops everything with that domain: its queued stanzas fail at once with a
reason the sender can read, no stream to it is opened, and its streams to us are closed (the federation
process hears of the change through the same `federation.wake` group that wakes the outbox sender).
"""

from __future__ import annotations

from django.db import transaction

from federation.models import OutboxItem, RemoteDomain
from federation.outbox import notify_senders, publish
from federation.stream import domain_of


class PolicyError(ValueError):
    """A policy change that cannot be made; the message says why."""


def denied_reason(domain: str) -> str:
    return f"federation with {domain} is disabled by this server's operator"


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
    return RemoteDomain.objects.filter(domain=domain, policy=RemoteDomain.Policy.DENY).exists()


def denied_domains() -> set[str]:
    return set(RemoteDomain.objects.filter(policy=RemoteDomain.Policy.DENY).values_list("domain", flat=True))


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
        if policy == RemoteDomain.Policy.DENY:
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
