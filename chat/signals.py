"""Chat signal receivers: an attachment's files leave storage with its row, however the row goes (its message
deleted, the account deleted, a cancelled upload, the sweep of uploads never sent)."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete

from chat.models import Attachment, thumbnail_path


def remove_attachment_files(sender: type[Attachment], instance: Attachment, **kwargs: object) -> None:
    """Once the deletion is committed, remove the file and the thumbnail from storage (a rolled-back deletion
    keeps both, since its row stays)."""
    names = [field.name for field in (instance.file, instance.thumbnail) if field]
    # A thumbnail made while this copy of the row was in memory is not in it: its name follows from the token.
    names.append(thumbnail_path(instance, ""))
    storage = instance.file.storage

    def remove() -> None:
        for name in dict.fromkeys(names):
            storage.delete(name)  # a name not there is no error

    transaction.on_commit(remove, using=kwargs.get("using") or None)  # type: ignore[arg-type]


def connect() -> None:
    """Called from chat.apps.ChatConfig.ready()."""
    post_delete.connect(remove_attachment_files, sender=Attachment, dispatch_uid="chat.signals.attachment_files")
