"""Celery tasks of the dashboard: the time series behind its charts."""

from __future__ import annotations

from celery import shared_task

from imweb.dashboard import metrics


@shared_task
def roll_up_metrics() -> dict[int, int]:
    """Every minute (beat): write the minutes that ended since the last run, roll them up into hours and days, and
    drop what is past keeping. Safe to run twice or late: it writes only buckets not yet written."""
    return metrics.roll_up()
