"""Chat background work (Celery): the missed-message email. The work itself is the action
`chat.actions.missed_email.email_missed_messages`; a task only wakes it up for one user."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from accounts.models import User
from chat.actions import missed_email


@shared_task(autoretry_for=(OSError,), retry_backoff=60, retry_backoff_max=30 * 60, max_retries=5)
def send_missed_message_email(user_id: int) -> int:
    """Email the user about what is due and schedule a follow-up for what will be. Returns messages emailed.

    An SMTP failure (OSError) is retried with backoff: the messages were given back, so a retry finds them.
    """
    missed_email.clear_pending(user_id)
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return 0
    result = missed_email.email_missed_messages(user)
    if result.next_due is not None:
        wait = (result.next_due - timezone.now()).total_seconds()
        missed_email.schedule_missed_message_email([user_id], countdown=wait)
    return result.messages
