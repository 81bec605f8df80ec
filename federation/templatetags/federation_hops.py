"""`{% remote_hops message as hops %}`: where the remote copies of a message are (queued, handed over, delivered,
failed: reason), for the sender's status line in chat/_message_status.html."""

from __future__ import annotations

from collections import defaultdict

from django import template

from federation.models import OutboxItem
from federation.outbox import Hop

register = template.Library()

_ATTRIBUTE = "_federation_hops"


@register.simple_tag(takes_context=True)
def remote_hops(context: template.Context, message: object) -> list[Hop]:
    """The hops of `message`. The first call of a render loads them for every message in the context's
    `chat_messages` (or `messages`) in one query and keeps them on the message objects (an included template's
    render context does not outlive the include; the objects do), so N messages on screen cost one query."""
    if not hasattr(message, _ATTRIBUTE):
        listed = context.get("chat_messages") or context.get("messages") or []
        batch = [m for m in listed if getattr(m, "pk", None) is not None]
        if message not in batch:
            batch.append(message)
        hops: dict[int, list[Hop]] = defaultdict(list)
        rows = (
            OutboxItem.objects.filter(message_id__in=[m.pk for m in batch])
            .order_by("id")
            .values_list("message_id", "recipient", "state", "domain__domain", "error")
        )
        for message_id, recipient, state, domain, error in rows:
            hops[message_id].append(Hop(recipient, state, domain, error))
        for item in batch:
            setattr(item, _ATTRIBUTE, hops.get(item.pk, []))
    return getattr(message, _ATTRIBUTE)
