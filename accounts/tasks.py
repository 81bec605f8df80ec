"""Periodic account work run by Celery beat."""

from celery import shared_task

from accounts import actions


@shared_task
def sweep_stale_presence() -> int:
    """Close presence sessions whose web process stopped refreshing them (crashed or partitioned)."""
    return actions.sweep_stale_sessions()


@shared_task
def build_data_export(export_pk: int) -> None:
    """Prepare one data export (accounts.export.build): the zip, its progress as it goes, the email when ready."""
    from accounts import export

    export.build(export_pk)


@shared_task
def expire_data_exports() -> int:
    """Delete the data exports whose IMWEB_EXPORT_DAYS are over (beat); returns how many zips went."""
    from accounts import export

    return export.expire_exports()
