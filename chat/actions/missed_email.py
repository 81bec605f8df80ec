"""Missed-message email: someone who has not read a message for IMWEB_MISSED_MESSAGE_EMAIL_SECONDS gets one
email about it, together with everything else then unread, across all their conversations.

How it runs: every stored message records, in its own transaction, when a check is due for each recipient
(`MissedEmailCheck`: one row per person, the earliest due time kept). Celery beat sweeps the due rows every
IMWEB_MISSED_EMAIL_SWEEP_SECONDS (`sweep_missed_emails`): `email_missed_messages` picks the unread messages
that are at least the delay old, marks them as emailed (`Participant.emailed_seq`) and sends one email, and the
row moves on to when the next unread message becomes due (or goes). Nothing lives only in the broker, so a
restart or a lost Valkey delays an email, never loses it. A message is in at most one email: the marker only
moves forward, in the same transaction that read it.

Never emailed: the reader's own messages, deleted ones, room events ("alice invited bob": they schedule no
check, and a check that other messages made leaves them out), conversations waiting in their Requests,
conversations they muted (nor, after unmuting, what came meanwhile: chat.actions.conversations.set_muted), rooms
they left, people who turned these emails off (profile), inactive accounts, and addresses not verified (an email
to an address nobody confirmed could go to a stranger).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from chat.actions.common import current_members
from chat.models import Conversation, Message, MissedEmailCheck, Participant
from chat.rendering import preview_text

logger = logging.getLogger(__name__)

MAX_CONVERSATIONS = 10  # listed in one email; the rest are counted
MAX_MESSAGES_SHOWN = 3  # the newest few of each conversation
PREVIEW_CHARS = 140
SWEEP_BATCH = 500  # checks run in one sweep; the rest wait for the next
RETRY_SECONDS = 300


def email_delay() -> int:
    return getattr(settings, "IMWEB_MISSED_MESSAGE_EMAIL_SECONDS", 0)


def schedule_missed_message_email(user_ids: list[int]) -> None:
    """Inside the sender's transaction: a check is due for each of these users once the delay has passed (an
    earlier one already due stays). One statement for any number of users.

    Called by the send path for every recipient who is notified (not the sender, not Requests).
    """
    delay = email_delay()
    user_ids = sorted(set(user_ids))  # one row each: an upsert may not touch a row twice
    if delay <= 0 or not user_ids:
        return
    due_at = timezone.now() + timedelta(seconds=delay)
    table = MissedEmailCheck._meta.db_table
    rows = ", ".join(["(%s, %s, 1)"] * len(user_ids))
    # Plain SQL: an upsert that keeps the earlier due time and moves the version on (both SQLite and PostgreSQL
    # spell it this way); the ORM's bulk_create can only overwrite or ignore.
    sql = (
        f"INSERT INTO {table} (user_id, due_at, version) VALUES {rows} ON CONFLICT (user_id) DO UPDATE SET"  # noqa: S608
        f" version = {table}.version + 1,"
        f" due_at = CASE WHEN {table}.due_at IS NULL OR {table}.due_at > excluded.due_at"
        f" THEN excluded.due_at ELSE {table}.due_at END"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for user_id in user_ids for value in (user_id, due_at)])


def sweep_missed_emails(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """Run the checks that are due (at most `limit`); returns how many emails went out. A check whose email
    fails (the mail server is away) is tried again after RETRY_SECONDS; the messages were given back. A check
    that a new message touched meanwhile stays due, and the next sweep looks again."""
    now = now or timezone.now()
    due = list(MissedEmailCheck.objects.filter(due_at__lte=now).select_related("user").order_by("due_at")[:limit])
    sent = 0
    for check in due:
        try:
            result = email_missed_messages(check.user, now=now)
        except OSError:
            logger.warning("missed-message email to user %s failed; trying again later", check.user_id, exc_info=True)
            next_due = now + timedelta(seconds=RETRY_SECONDS)
        else:
            sent += result.sent_to is not None
            next_due = result.next_due
        MissedEmailCheck.objects.filter(pk=check.pk, version=check.version).update(due_at=next_due)
    return sent


@dataclass(frozen=True)
class MissedConversation:
    """One conversation in the email: what to call it, how many unread, the newest few, and its link."""

    title: str
    unread: int
    newest: list[tuple[str, str]]  # (sender name, one-line preview)
    url: str


@dataclass(frozen=True)
class MissedEmailResult:
    sent_to: str | None  # the address emailed, or None when nothing was due
    messages: int  # how many messages the email covered
    next_due: datetime | None  # when unread messages not yet due will be (schedule a follow-up then)


def _verified_address(user: User) -> str | None:
    if not user.email:
        return None
    verified = EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists()
    return user.email if verified else None


def _title(conversation: Conversation, user: User) -> str:
    if conversation.kind == Conversation.Kind.ROOM:
        return conversation.name
    peer = next((p for p in current_members(conversation) if p.user_id != user.pk), None)
    if peer is None:
        return "a conversation"
    return peer.user.name if peer.user_id is not None else peer.jid


def email_missed_messages(user: User, *, now: datetime | None = None) -> MissedEmailResult:
    """Email `user` about their unread messages that are at least the delay old and in no earlier email."""
    delay = email_delay()
    nothing = MissedEmailResult(sent_to=None, messages=0, next_due=None)
    if delay <= 0 or not user.is_active or not user.email_missed_messages:
        return nothing
    address = _verified_address(user)
    if address is None:
        return nothing
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=delay)
    with transaction.atomic():
        mine = {
            p.conversation_id: p
            for p in Participant.objects.select_for_update()
            .filter(user=user, left_at__isnull=True, is_request=False, muted=False)
            .filter(conversation__last_seq__gt=Greatest(F("last_read_seq"), F("emailed_seq")))
            .select_related("conversation")
        }
        unread = list(
            Message.objects.filter(
                conversation__participants__user=user,
                conversation__participants__left_at__isnull=True,
                conversation__participants__is_request=False,
                conversation__participants__muted=False,
                seq__gt=Greatest(
                    F("conversation__participants__last_read_seq"), F("conversation__participants__emailed_seq")
                ),
                conversation_id__in=list(mine),
                deleted_at__isnull=True,
                kind=Message.Kind.MESSAGE,
            )
            .exclude(sender_jid=user.jid)
            .select_related("sender")
            .order_by("conversation_id", "seq")
        )
        due = [m for m in unread if m.created_at <= cutoff]
        later = [m.created_at for m in unread if m.created_at > cutoff]
        next_due = min(later) + timedelta(seconds=delay) if later else None
        if not due:
            return MissedEmailResult(sent_to=None, messages=0, next_due=next_due)
        by_conversation: dict[int, list[Message]] = defaultdict(list)
        for message in due:
            by_conversation[message.conversation_id].append(message)
        restore = []  # (participant, the seq now covered, the marker before)
        for conversation_id, messages in by_conversation.items():
            participant = mine[conversation_id]
            restore.append((participant.pk, messages[-1].seq, participant.emailed_seq))
            Participant.objects.filter(pk=participant.pk).update(emailed_seq=messages[-1].seq)
    newest_first = sorted(by_conversation.values(), key=lambda ms: ms[-1].created_at, reverse=True)
    conversations = [
        MissedConversation(
            title=_title(mine[ms[0].conversation_id].conversation, user),
            unread=len(ms),
            newest=[
                (m.sender.name if m.sender is not None else m.sender_jid, preview_text(m.body, PREVIEW_CHARS))
                for m in ms[-MAX_MESSAGES_SHOWN:]
            ],
            url=settings.IMWEB_SITE_URL + reverse("conversation", args=[ms[0].conversation_id]),
        )
        for ms in newest_first
    ]
    try:
        _send(user, address, conversations, len(due))
    except Exception:
        # Not sent: give the messages back to the next attempt (unless a newer email has covered them since).
        for participant_pk, covered, before in restore:
            Participant.objects.filter(pk=participant_pk, emailed_seq=covered).update(emailed_seq=before)
        raise
    return MissedEmailResult(sent_to=address, messages=len(due), next_due=next_due)


def _send(user: User, address: str, conversations: list[MissedConversation], count: int) -> None:
    shown = conversations[:MAX_CONVERSATIONS]
    names = ", ".join(c.title for c in shown[:3]) + (" and others" if len(conversations) > 3 else "")
    unit = "message" if count == 1 else "messages"
    context = {
        "user": user,
        "count": count,
        "conversations": shown,
        "more": len(conversations) - len(shown),
        "site_url": settings.IMWEB_SITE_URL,
        "settings_url": settings.IMWEB_SITE_URL + reverse("profile"),
    }
    subject = f"{count} unread {unit} from {names}"
    text = render_to_string("email/missed_messages.txt", context)
    html = render_to_string("email/missed_messages.html", context)
    email = EmailMultiAlternatives(f"[imweb] {subject}", text, to=[address])
    email.attach_alternative(html, "text/html")
    email.send()
    logger.info("missed-message email to user %s: %s %s", user.pk, count, unit)
