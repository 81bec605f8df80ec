"""A person's data to take with them: one zip of JSON files plus the files they shared, built in the background.

`request_export` asks for one (the person from their profile, or an operator from the dashboard): at most one is
being prepared at a time, and a person may ask again only every IMWEB_EXPORT_INTERVAL_SECONDS. The Celery task
`accounts.tasks.build_data_export` runs `build`, which moves `DataExport.progress` on as it goes, saves the zip
in the "attachments" storage under exports/, and emails whoever asked. A zip can be downloaded for
IMWEB_EXPORT_DAYS, then `expire_exports` (beat) deletes it.

What is in it is exactly what the person can see here, and nothing else of anyone else's: their profile, their
contact list and blocks, every conversation they are or were in with the messages the chat pages show them
(everything while they are in it; up to the moment they left for a room they left, as imweb.dashboard.reports
counts what someone received), and the files they uploaded. Other people appear only as the addresses and names
those conversations show; never their email, contacts or anything from conversations the person was not in.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.files import File
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import BlockedJid, DataExport, RosterGroup, RosterItem, User

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
STUCK_HOURS = 2  # an export not finished this long after it was asked for is given up (its worker died)
README = """\
Your data from {site} ({jid}), exported {when} UTC.

Everything here is JSON (UTF-8) except the files you shared. Times are ISO 8601 in UTC.

README.txt                This file.
profile.json              Your account: address (jid), username, display name, status message, email
                          address, when you joined and were last seen, your privacy and notification
                          settings, whether two-factor sign-in is on (never its secrets), and "avatar": the
                          name of your picture in this archive (avatar.png), or null.
avatar.png                Your profile picture, if you have one.
contacts.json             Your contact list: for each address, the nickname you gave it, its groups, the
                          presence subscription ("both": you see each other's presence; "to": you see theirs;
                          "from": they see yours; "none"), "listed" (shown in your contact list), and what is
                          pending ("out": you asked them and wait; "in": they asked you and wait, with their
                          request message). Also your groups and the people and servers you blocked.
conversations/<n>.json    One file per conversation you are or were in (1:1 chats and rooms), numbered from 1:
                          its kind ("direct" or "room"), name and topic, the participants (address and name),
                          whether you are still in it, and the messages you can see: seq (its number in the
                          conversation), sender address and name, time, body (markdown as written), edited
                          (time or null), deleted (true when deleted; its body is gone), reply_to (the seq it
                          answers), reactions (emoji and who), attachments (name, type, size; "file" is its
                          path in this archive when you uploaded it). Room events ("alice invited bob") have
                          kind "event". For a room you left: what was sent up to the moment you left.
files/                    The files you uploaded, each as files/<number>-<name as uploaded>, including ones not
                          sent yet. Files other people shared are listed by name in the conversations but not
                          included (they are theirs).
"""


class ExportRefused(Exception):
    """An export that cannot be asked for now, with a sentence saying why and when it can."""


# --- Asking ---------------------------------------------------------------------------------------------


def export_days() -> int:
    return max(1, settings.IMWEB_EXPORT_DAYS)


def interval_seconds() -> int:
    return max(0, settings.IMWEB_EXPORT_INTERVAL_SECONDS)


def latest_export(user: User, *, by_operator: bool = False) -> DataExport | None:
    """The person's newest export (theirs, or the newest an operator asked for)."""
    return DataExport.objects.filter(user=user, by_operator=by_operator).order_by("-created_at", "-pk").first()


def _wait_words(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def request_export(
    user: User, *, operator: User | None = None, request: HttpRequest | None = None, now: datetime | None = None
) -> DataExport:
    """Ask for an export of `user`'s data, prepared in the background; returns it.

    One already being prepared is returned as it is (asking twice starts nothing). A person may ask again only
    IMWEB_EXPORT_INTERVAL_SECONDS after their last request (ExportRefused says how long to wait); an operator's
    export is not limited, and goes in the audit log."""
    now = now or timezone.now()
    by_operator = operator is not None
    with transaction.atomic():
        # Serialise requests of one person (a double click, two tabs): the row lock makes the second wait.
        User.objects.select_for_update().filter(pk=user.pk).first()
        last = latest_export(user, by_operator=by_operator)
        if last is not None and last.is_active:
            return last
        if not by_operator:
            previous = (
                DataExport.objects.filter(user=user, by_operator=False)
                .exclude(state=DataExport.State.FAILED)
                .order_by("-created_at", "-pk")
                .first()
            )
            next_at = previous.created_at + timedelta(seconds=interval_seconds()) if previous else now
            if next_at > now:
                every = _wait_words(interval_seconds()).removeprefix("1 ")
                wait = _wait_words((next_at - now).total_seconds())
                raise ExportRefused(f"You can ask for one export every {every}; try again in {wait}.")
        export = DataExport.objects.create(user=user, requested_by=operator or user, by_operator=by_operator)
        if by_operator:
            from imweb.dashboard import audit

            audit.record(
                "person.export",
                actor=operator,
                target=user.jid,
                details="Asked for an export of all of their data (profile, contacts, conversations, files).",
                request=request,
            )
        pk = export.pk
        transaction.on_commit(lambda: _start(pk))
    return export


def _start(pk: int) -> None:
    from accounts import tasks

    try:
        tasks.build_data_export.delay(pk)
    except Exception:  # the broker is away: say so on the page instead of spinning forever
        logger.exception("could not queue data export %s", pk)
        DataExport.objects.filter(pk=pk, state=DataExport.State.QUEUED).update(
            state=DataExport.State.FAILED, error="The service could not start preparing it; please try again."
        )


# --- What goes in ---------------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def profile_data(user: User) -> dict[str, Any]:
    """profile.json: the account and its settings; whether two-factor sign-in is on, never its secrets."""
    from accounts.mfa import has_totp

    verified = EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists()
    return {
        "format": FORMAT_VERSION,
        "jid": user.jid,
        "username": user.username,
        "name": user.display_name,
        "status_message": user.status_message,
        "email": user.email,
        "email_verified": verified,
        "avatar": "avatar.png" if user.avatar else None,
        "created": _time(user.date_joined),
        "last_seen": _time(user.last_seen),
        "two_factor": has_totp(user),
        "settings": {
            "presence": user.presence_show,
            "show_last_seen": user.show_last_seen,
            "directory_visible": user.directory_visible,
            "idle_away_minutes": user.idle_away_minutes,
            "send_read_markers": user.send_read_markers,
            "send_typing": user.send_typing,
            "email_missed_messages": user.email_missed_messages,
        },
    }


def contacts_data(user: User) -> dict[str, Any]:
    """contacts.json: the person's roster items with groups and subscriptions, their groups, and their blocks."""
    items = RosterItem.objects.filter(owner=user).prefetch_related("groups").order_by("jid")
    return {
        "contacts": [
            {
                "jid": item.jid,
                "name": item.name,
                "groups": sorted(group.name for group in item.groups.all()),
                "subscription": item.subscription,
                "listed": item.listed,
                "pending": {"out": item.ask_out, "in": item.pending_in},
                "request_message": item.request_message if item.pending_in else "",
                "added": _time(item.created_at),
            }
            for item in items
        ],
        "groups": list(RosterGroup.objects.filter(owner=user).order_by("name").values_list("name", flat=True)),
        "blocked": [
            {"jid": block.jid, "since": _time(block.created_at)}
            for block in BlockedJid.objects.filter(owner=user).order_by("jid")
        ],
    }


def _participant_name(participant: Any) -> str:
    if participant.user is not None:
        return participant.user.name
    return participant.jid.partition("@")[0] or participant.jid


def _safe_name(name: str) -> str:
    """A file name that stays one entry in a zip, whatever the uploader called it."""
    cleaned = re.sub(r"[\x00-\x1f\x7f/\\:]+", "_", name).strip().lstrip(".")
    return cleaned[:120] or "file"


@dataclass
class FileEntry:
    """One of the person's uploads and where it goes in the zip."""

    attachment: Any
    path: str


def own_files(user: User) -> list[FileEntry]:
    """The files the person uploaded (sent or not), each with its path in the archive."""
    from chat.models import Attachment

    rows = Attachment.objects.filter(uploader=user).exclude(file="").order_by("created_at", "pk")
    return [FileEntry(row, f"files/{number:03d}-{_safe_name(row.name)}") for number, row in enumerate(rows, 1)]


def conversations_data(user: User, files: dict[int, str]) -> Iterator[dict[str, Any]]:
    """One dict per conversation the person is or was in (oldest first), with the messages they can see.

    `files` maps the person's own attachments (pk) to their path in the archive. A fixed number of queries per
    conversation, whatever its length."""
    from chat.models import Attachment, Conversation, Message, Participant, Reaction

    mine = Participant.objects.filter(user=user).select_related("conversation").order_by("conversation__created_at")
    for me in mine:
        conversation = me.conversation
        everyone = list(Participant.objects.filter(conversation=conversation).select_related("user"))
        names = {p.jid: _participant_name(p) for p in everyone}
        messages = Message.objects.filter(conversation=conversation)
        if me.left_at is not None:
            # Left (or hidden by a block): what they had received until then, and who was there then.
            messages = messages.filter(created_at__lte=me.left_at)
            shown = [
                p for p in everyone if p.joined_at <= me.left_at and (p.left_at is None or p.left_at >= me.left_at)
            ]
        else:
            shown = [p for p in everyone if p.left_at is None]
        rows = list(
            messages.order_by("seq").values(
                "pk", "seq", "kind", "sender_jid", "body", "created_at", "edited_at", "deleted_at",
                "removed_by_operator", "reply_to__seq",
            )
        )  # fmt: skip
        pks = [row["pk"] for row in rows]
        reactions: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for message_id, jid, emoji in (
            Reaction.objects.filter(message__conversation=conversation, message_id__in=pks)
            .order_by("created_at", "pk")
            .values_list("message_id", "jid", "emoji")
        ):
            reactions[message_id][emoji].append(jid)
        attachments: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for attachment in Attachment.objects.filter(message__conversation=conversation, message_id__in=pks).order_by(
            "pk"
        ):
            attachments[attachment.message_id].append(
                {
                    "name": attachment.name,
                    "kind": attachment.kind,
                    "content_type": attachment.content_type,
                    "size": attachment.size,
                    "file": files.get(attachment.pk),
                    "link": attachment.remote_url or None,
                }
            )
        if conversation.kind == Conversation.Kind.DIRECT:
            peer = next((p for p in everyone if p.jid != user.jid), None)
            title = names.get(peer.jid, peer.jid) if peer is not None else "a conversation"
        else:
            title = conversation.name
        yield {
            "kind": conversation.kind,
            "title": title,
            "name": conversation.name,
            "topic": conversation.topic,
            "started": _time(conversation.created_at),
            "you": {"role": me.role, "joined": _time(me.joined_at), "left": _time(me.left_at), "muted": me.muted},
            "participants": [
                {"jid": p.jid, "name": names[p.jid], "role": p.role}
                for p in sorted(shown, key=lambda p: (p.joined_at, p.pk))
            ],
            "messages": [
                {
                    "seq": row["seq"],
                    "kind": row["kind"],
                    "sender": row["sender_jid"],
                    "sender_name": names.get(row["sender_jid"], row["sender_jid"].partition("@")[0]),
                    "time": _time(row["created_at"]),
                    "body": "" if row["deleted_at"] else row["body"],
                    "edited": _time(row["edited_at"]),
                    "deleted": row["deleted_at"] is not None,
                    "removed_by_operator": row["removed_by_operator"],
                    "reply_to": row["reply_to__seq"],
                    "reactions": [{"emoji": emoji, "by": who} for emoji, who in reactions.get(row["pk"], {}).items()],
                    "attachments": attachments.get(row["pk"], []),
                }
                for row in rows
            ],
        }


# --- Building -------------------------------------------------------------------------------------------


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode()


class _Progress:
    """Moves the export's progress on (one UPDATE whenever it changes by a whole percent)."""

    def __init__(self, export: DataExport) -> None:
        self.pk = export.pk
        self.value = export.progress

    def __call__(self, value: float) -> None:
        percent = max(0, min(99, int(value)))
        if percent > self.value:
            self.value = percent
            DataExport.objects.filter(pk=self.pk).update(progress=percent)


def write_archive(user: User, target: Any, progress: Callable[[float], None] = lambda value: None) -> None:
    """Write the person's archive (a zip) into the open binary file `target`."""
    files = own_files(user)
    from chat.models import Participant

    conversation_count = Participant.objects.filter(user=user).count()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "README.txt",
            README.format(site=settings.IMWEB_SITE_NAME, jid=user.jid, when=timezone.now().strftime("%Y-%m-%d %H:%M")),
        )
        archive.writestr("profile.json", _dump(profile_data(user)))
        if user.avatar:
            try:
                with user.avatar.open("rb") as picture, archive.open("avatar.png", "w") as out:
                    shutil.copyfileobj(picture, out)
            except OSError:
                logger.warning("avatar of %s missing from storage; export goes on without it", user.pk)
        progress(5)
        archive.writestr("contacts.json", _dump(contacts_data(user)))
        progress(10)
        paths = {entry.attachment.pk: entry.path for entry in files}
        for number, conversation in enumerate(conversations_data(user, paths), 1):
            archive.writestr(f"conversations/{number}.json", _dump(conversation))
            progress(10 + 50 * number / max(1, conversation_count))
        progress(60)
        total = sum(entry.attachment.size for entry in files) or 1
        done = 0
        for entry in files:
            try:
                with (
                    entry.attachment.file.open("rb") as source,
                    archive.open(zipfile.ZipInfo(entry.path, _zip_time(entry.attachment.created_at)), "w") as out,
                ):
                    shutil.copyfileobj(source, out, 1024 * 1024)
            except OSError:
                logger.warning("attachment %s missing from storage; export goes on without it", entry.attachment.pk)
            done += entry.attachment.size
            progress(60 + 38 * done / total)


def _zip_time(value: datetime) -> tuple[int, int, int, int, int, int]:
    moment = value.astimezone(UTC)
    return (max(1980, moment.year), moment.month, moment.day, moment.hour, moment.minute, moment.second)


def build(pk: int) -> DataExport | None:
    """Prepare export `pk` (the Celery task's work): the zip into storage, the row ready, an email to whoever
    asked. A failure marks it failed with a sentence for the page. Returns the export, None if it is gone."""
    claimed = DataExport.objects.filter(pk=pk, state=DataExport.State.QUEUED).update(
        state=DataExport.State.RUNNING, progress=1
    )
    export = DataExport.objects.select_related("user", "requested_by").filter(pk=pk).first()
    if export is None or not claimed:
        return export  # gone, or another worker has it (a redelivered task)
    try:
        with tempfile.TemporaryFile() as scratch:
            write_archive(export.user, scratch, _Progress(export))
            size = scratch.tell()
            scratch.seek(0)
            export.file.save(f"{export.token}.zip", File(scratch), save=False)
    except Exception:
        logger.exception("data export %s failed", pk)
        DataExport.objects.filter(pk=pk).update(
            state=DataExport.State.FAILED, error="Something went wrong while preparing it; please ask again."
        )
        export.refresh_from_db()
        return export
    now = timezone.now()
    export.size = size
    export.state = DataExport.State.READY
    export.progress = 100
    export.finished_at = now
    export.expires_at = now + timedelta(days=export_days())
    export.save(update_fields=["file", "size", "state", "progress", "finished_at", "expires_at"])
    try:
        send_ready_email(export)
    except Exception:  # the archive is there; the page shows it even if the mail server is away
        logger.warning("could not email about data export %s", pk, exc_info=True)
    return export


# --- Telling and serving --------------------------------------------------------------------------------


def download_name(export: DataExport) -> str:
    day = (export.finished_at or export.created_at).strftime("%Y-%m-%d")
    return f"{settings.IMWEB_SITE_NAME}-data-{export.user.username}-{day}.zip"


def email_recipient(export: DataExport) -> str | None:
    """Who hears that it is ready: the person at their verified address, or the operator who asked."""
    if export.by_operator:
        operator = export.requested_by
        return operator.email if operator is not None and operator.email else None
    user = export.user
    if not user.email:
        return None
    verified = EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists()
    return user.email if verified else None


def send_ready_email(export: DataExport) -> bool:
    """Email "Your imweb data is ready" with the link (or, for an operator's export, tell the operator)."""
    address = email_recipient(export)
    if address is None:
        return False
    if export.by_operator:
        url = settings.IMWEB_SITE_URL + reverse("dashboard:person", args=[export.user.username])
    else:
        url = settings.IMWEB_SITE_URL + reverse("data_export")
    context = {
        "export": export,
        "person": export.user,
        "url": url,
        "site_name": settings.IMWEB_SITE_NAME,
        "by_operator": export.by_operator,
        "expires_at": export.expires_at,
        "size": export.size,
    }
    site = settings.IMWEB_SITE_NAME
    subject = f"The export of {export.user.jid} is ready" if export.by_operator else f"Your {site} data is ready"
    text = render_to_string("email/export_ready.txt", context)
    html = render_to_string("email/export_ready.html", context)
    email = EmailMultiAlternatives(f"[{site}] {subject}", text, to=[address])
    email.attach_alternative(html, "text/html")
    email.send()
    return True


def expire_exports(*, now: datetime | None = None) -> int:
    """Delete the zips whose time is up (beat); returns how many went. The rows stay, so the page can say the last
    one expired. Exports unfinished STUCK_HOURS after they were asked for (their worker died) are given up, so the
    person can ask again."""
    now = now or timezone.now()
    removed = 0
    for export in DataExport.objects.filter(state=DataExport.State.READY, expires_at__lte=now):
        if export.file:
            export.file.delete(save=False)
            removed += 1
        export.state = DataExport.State.EXPIRED
        export.save(update_fields=["file", "state"])
    DataExport.objects.filter(
        Q(state=DataExport.State.QUEUED) | Q(state=DataExport.State.RUNNING),
        created_at__lte=now - timedelta(hours=STUCK_HOURS),
    ).update(state=DataExport.State.FAILED, error="It took too long to prepare; please ask again.")
    return removed
