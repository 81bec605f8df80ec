"""Celery tasks of the federation app: only a wake-up for the outbox sender in the federation process."""

from celery import shared_task

from federation import outbox


@shared_task(ignore_result=True)
def wake_outbox() -> None:
    """Beat tick: nudge the outbox sender (it also polls; this only shortens the wait after a lost wake-up)."""
    outbox.wake()
