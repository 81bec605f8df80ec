"""Periodic account work run by Celery beat."""

from celery import shared_task

from accounts import actions


@shared_task
def sweep_stale_presence() -> int:
    """Close presence sessions whose web process stopped refreshing them (crashed or partitioned)."""
    return actions.sweep_stale_sessions()
