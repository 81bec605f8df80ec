"""What the dashboard keeps: the append-only audit log, people's reports, and the service's own time series."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntryImmutable(Exception):
    """An audit entry is written once and never changed or deleted."""


class AuditEntry(models.Model):
    """One staff action or security event: who, when, what, on what, and from where. Written by
    `imweb.dashboard.audit.record` only; `save` refuses to change a stored row and `delete` refuses always, so no
    view (nor the admin) can rewrite history."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept as text too: the entry must still say who it was after their account is deleted.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=2047, blank=True)
    details = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        permissions = [
            ("view_dashboard", "Can see the operator's dashboard"),
            ("moderate", "Can suspend people, remove messages and handle reports"),
            ("manage_federation", "Can change federation policy and retry deliveries"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.target}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AuditEntryImmutable("audit entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditEntryImmutable("audit entries cannot be deleted")


class Report(models.Model):
    """Someone reported a message they received, a contact request or a contact."""

    class Kind(models.TextChoices):
        MESSAGE = "message", "Message"
        REQUEST = "request", "Contact request"
        CONTACT = "contact", "Contact"

    class Reason(models.TextChoices):
        SPAM = "spam", "Spam"
        ABUSE = "abuse", "Abuse or harassment"
        OTHER = "other", "Other"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        DISMISSED = "dismissed", "Dismissed"
        ACTIONED = "actioned", "Acted on"

    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports_made")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    reason = models.CharField(max_length=8, choices=Reason.choices)
    note = models.CharField(max_length=500, blank=True)
    # The address reported (the message's sender, the requester, the contact): local or remote.
    reported_jid = models.CharField(max_length=2047, db_index=True)
    message = models.ForeignKey("chat.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # What the reporter saw, kept as it was: the sender may edit or delete the message afterwards.
    quoted_body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=9, choices=State.choices, default=State.OPEN, db_index=True)
    resolution = models.CharField(max_length=200, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"report {self.pk}: {self.kind} by {self.reporter_id} about {self.reported_jid}"


class MetricSample(models.Model):
    """One figure of the service's own time series: `value` of `name` over the bucket of `resolution` seconds
    starting at `bucket` (minutes, rolled up into hours and days). Kept in the database so that a restart does not
    blank the dashboard's charts."""

    name = models.CharField(max_length=64)
    resolution = models.PositiveIntegerField()
    bucket = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint("name", "resolution", "bucket", name="dashboard_metricsample_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.resolution}s {self.bucket:%Y-%m-%d %H:%M}: {self.value}"
