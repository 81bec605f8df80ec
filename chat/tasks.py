"""Chat background work (Celery): the sweep of missed-message emails that are due. The work itself is the
action `chat.actions.missed_email.sweep_missed_emails`; beat runs it every IMWEB_MISSED_EMAIL_SWEEP_SECONDS."""

from __future__ import annotations

from celery import shared_task

from chat.actions import missed_email


@shared_task
def sweep_missed_emails() -> int:
    """Email everyone whose missed-message check is due; returns how many emails went out."""
    return missed_email.sweep_missed_emails()
