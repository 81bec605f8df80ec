"""Federation state kept in the database: remote domains (policy and health), the outbox, remote presence.

The database is the truth: an outbound stanza is an `OutboxItem` row written in the same transaction as whatever
it carries (a message, a subscription change); the federation process only decides when to send it. Each remote
server's health and backoff live on its `RemoteDomain` row so a restart does not hammer a dead peer.
Rows change only through `federation.outbox`, `federation.sender` and `federation.policy`.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

# The same bound as chat.models.JID_MAX_LENGTH (RFC 7622: up to 1023 bytes per part).
JID_MAX_LENGTH = 2047
DOMAIN_MAX_LENGTH = 1023


class RemoteDomain(models.Model):
    """One remote XMPP server we talk to (or refuse to): its operator policy and its connection health."""

    class Policy(models.TextChoices):
        DEFAULT = "default", "default (federate)"
        ALLOW = "allow", "allow"
        DENY = "deny", "deny"

    domain = models.CharField(max_length=DOMAIN_MAX_LENGTH, unique=True)
    policy = models.CharField(max_length=8, choices=Policy.choices, default=Policy.DEFAULT)
    connected_in = models.BooleanField(default=False, help_text="The remote server has an authenticated stream to us.")
    connected_out = models.BooleanField(default=False, help_text="We have an authenticated stream to it.")
    tls = models.BooleanField(default=False, help_text="The last stream to or from it used TLS.")
    auth_method = models.CharField(max_length=16, blank=True, default="")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="Consecutive failed delivery attempts.")
    backoff_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class OutboxItem(models.Model):
    """One stanza waiting for (or done with) its trip to a remote server; per domain, sent in `id` order."""

    class Kind(models.TextChoices):
        MESSAGE = "message"
        PRESENCE = "presence"
        RECEIPT = "receipt"
        CHATSTATE = "chatstate"
        OTHER = "other"

    class State(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending", "being handed over"  # a crash leaves it here; the sender requeues it on start
        SENT = "sent", "handed to the remote server"
        DELIVERED = "delivered"
        FAILED = "failed"

    domain = models.ForeignKey(RemoteDomain, on_delete=models.CASCADE, related_name="outbox")
    stanza = models.TextField()
    stanza_id = models.CharField(max_length=255, blank=True, default="", help_text="origin-id or id of the stanza")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OTHER)
    message = models.ForeignKey(
        "chat.Message", on_delete=models.CASCADE, null=True, blank=True, related_name="outbox_items"
    )
    recipient = models.CharField(max_length=JID_MAX_LENGTH, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["domain", "state", "id"], name="federation_outbox_queue"),
            models.Index(fields=["recipient", "stanza_id"], name="federation_outbox_stanza"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} to {self.recipient or self.domain_id} ({self.state})"


class RemotePresence(models.Model):
    """The latest presence a remote contact sent us (kept only for JIDs a local user is subscribed to)."""

    jid = models.CharField(max_length=JID_MAX_LENGTH, unique=True)
    available = models.BooleanField(default=False)
    show = models.CharField(max_length=8, blank=True, default="")
    status = models.CharField(max_length=1024, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.jid} ({'available' if self.available else 'unavailable'})"


class BlockedAddress(models.Model):
    """A remote address the operator blocked for the whole service: nothing from it is accepted and nothing is
    sent to it, for every local person (a person's own block list is accounts.BlockedJid)."""

    jid = models.CharField(max_length=JID_MAX_LENGTH, unique=True)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.jid
