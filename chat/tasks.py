"""Chat background work (Celery): the sweep of missed-message emails that are due. The work itself is the
action `chat.actions.missed_email.sweep_missed_emails`; beat runs it every IMWEB_MISSED_EMAIL_SWEEP_SECONDS."""

from __future__ import annotations

from celery import shared_task

from chat.actions import missed_email


@shared_task
def sweep_missed_emails() -> int:
    """Email everyone whose missed-message check is due; returns how many emails went out."""
    return missed_email.sweep_missed_emails()


@shared_task(ignore_result=True)
def make_thumbnail(attachment_pk: int) -> bool:
    """Make a shared picture's thumbnail and show it in the conversation's open tabs (chat.files)."""
    from chat import files

    return files.make_thumbnail(attachment_pk)


@shared_task(ignore_result=True)
def sweep_unsent_files() -> int:
    """Remove uploads never sent within a day (their files too), and make thumbnails whose task was lost;
    returns how many uploads were removed."""
    from chat import files

    for pk in files.missing_thumbnails():
        files.make_thumbnail(pk)
    return files.sweep_unsent()
