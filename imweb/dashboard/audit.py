"""Writing the audit log: every staff action and every security event goes through `record`."""

from __future__ import annotations

import logging

from django.http import HttpRequest

from imweb.dashboard.models import AuditEntry

logger = logging.getLogger("imweb.audit")


def record(
    action: str,
    *,
    actor: object = None,
    target: str = "",
    details: str = "",
    request: HttpRequest | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Append one entry: `action` is a dotted name ("person.suspend", "login.locked_out"), `target` what it was
    done to, `details` a sentence for people. The actor and address come from `request` when given."""
    if request is not None:
        actor = actor if actor is not None else getattr(request, "user", None)
        # The client's address as the proxy layer (imweb.proxy) settled it for this request.
        ip = ip or request.META.get("REMOTE_ADDR")
    person = actor if getattr(actor, "is_authenticated", False) else None
    entry = AuditEntry.objects.create(
        actor=person,
        actor_name=getattr(person, "username", "") if person is not None else "",
        action=action,
        target=target[:2047],
        details=details,
        ip=ip or None,
    )
    logger.info("audit: %s by %s on %s: %s", action, entry.actor_name or "-", target, details)
    return entry
