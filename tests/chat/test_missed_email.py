"""Missed-message email: one email for messages still unread after the delay, never twice, never for Requests,
left rooms, own or deleted messages, or people who turned it off; scheduled on commit through the real broker."""

from __future__ import annotations

import dataclasses
import socket
import uuid
from datetime import timedelta

import pytest
import redis
from allauth.account.models import EmailAddress
from django.conf import settings as django_settings
from django.core import mail
from django.utils import timezone

from accounts import actions as accounts
from chat import actions
from chat.actions import missed_email
from chat.actions.missed_email import email_missed_messages, sweep_missed_emails
from chat.models import Message, MissedEmailCheck, Participant

pytestmark = pytest.mark.django_db

DELAY = 900
SITE = "https://chat.example.org"


@pytest.fixture(autouse=True)
def email_settings(settings):
    settings.IMWEB_MISSED_MESSAGE_EMAIL_SECONDS = DELAY
    settings.IMWEB_SITE_URL = SITE
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.IMWEB_MESSAGE_RATE_LIMITS = ()


@pytest.fixture
def bob(make_user):
    user = make_user("bob", display_name="Bob")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


@pytest.fixture
def carol(make_user):
    user = make_user("carol", display_name="Carol")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def send(user, to, body) -> Message:
    return actions.send_message(user, to=to, body=body, client_id=uuid.uuid4())


def later(message: Message, seconds: int = DELAY):
    return message.created_at + timedelta(seconds=seconds)


def befriend(a, b) -> None:
    accounts.request_subscription(a, b.jid)
    accounts.accept_subscription(b, a.jid)


def test_unread_message_gets_one_email_with_a_link_to_the_conversation(alice, bob):
    befriend(alice, bob)
    message = send(alice, bob.jid, "Are you **coming** tonight?")

    result = email_missed_messages(bob, now=later(message))

    assert (result.sent_to, result.messages) == (bob.email, 1)
    (email,) = mail.outbox
    assert email.to == [bob.email]
    assert email.subject == "[imweb] 1 unread message from Alice"
    assert f"{SITE}/c/{message.conversation_id}/" in email.body
    assert "Alice: Are you coming tonight?" in email.body
    html, mime = email.alternatives[0]
    assert mime == "text/html" and f'href="{SITE}/c/{message.conversation_id}/"' in html


def test_the_same_messages_are_never_emailed_twice(alice, bob):
    befriend(alice, bob)
    first = send(alice, bob.jid, "one")
    second = send(alice, bob.jid, "two")

    email_missed_messages(bob, now=later(second))
    again = email_missed_messages(bob, now=later(second, 2 * DELAY))

    assert again.sent_to is None
    assert len(mail.outbox) == 1
    assert "2 unread messages" in mail.outbox[0].subject
    assert "Alice: one" in mail.outbox[0].body and "Alice: two" in mail.outbox[0].body
    third = send(alice, bob.jid, "three")
    email_missed_messages(bob, now=later(third))
    assert len(mail.outbox) == 2
    assert "Alice: three" in mail.outbox[1].body and "Alice: one" not in mail.outbox[1].body
    assert first.seq == 1


def test_read_messages_are_not_emailed(alice, bob):
    befriend(alice, bob)
    message = send(alice, bob.jid, "hi")
    actions.mark_read(bob, message.conversation_id, message.seq)

    assert email_missed_messages(bob, now=later(message)).sent_to is None
    assert mail.outbox == []


def test_messages_younger_than_the_delay_wait_and_say_when_they_are_due(alice, bob):
    befriend(alice, bob)
    message = send(alice, bob.jid, "hi")

    result = email_missed_messages(bob, now=later(message, DELAY - 1))

    assert result.sent_to is None and result.next_due == later(message)
    assert mail.outbox == []


def test_several_conversations_are_summarised_in_one_email(alice, bob, carol):
    befriend(alice, bob)
    befriend(carol, bob)
    send(alice, bob.jid, "from alice")
    last = send(carol, bob.jid, "from carol")

    email_missed_messages(bob, now=later(last))

    (email,) = mail.outbox
    assert email.subject == "[imweb] 2 unread messages from Carol, Alice"
    assert "Alice: from alice" in email.body and "Carol: from carol" in email.body


def test_no_email_for_requests_own_deleted_or_left_conversations(alice, bob, carol):
    request = send(carol, bob.jid, "hello stranger")  # not a contact: waits in Bob's Requests
    befriend(alice, bob)
    befriend(alice, carol)
    room = actions.create_room(alice, "Room", members=[bob.jid, carol.jid])
    in_room = send(carol, room.pk, "in the room")
    actions.leave(bob, room.pk)
    gone = send(alice, bob.jid, "oops")
    actions.delete_message(alice, gone.conversation_id, gone.seq)
    send(bob, alice.jid, "my own words")

    assert Participant.objects.get(conversation_id=request.conversation_id, user=bob).is_request
    assert email_missed_messages(bob, now=later(in_room, 2 * DELAY)).sent_to is None
    assert mail.outbox == []


@pytest.mark.parametrize("why", ["preference off", "unverified address", "inactive"])
def test_no_email_for_people_who_cannot_or_do_not_want_it(alice, bob, why):
    befriend(alice, bob)
    message = send(alice, bob.jid, "hi")
    if why == "preference off":
        bob.email_missed_messages = False
        bob.save()
    elif why == "unverified address":
        EmailAddress.objects.filter(user=bob).update(verified=False)
    else:
        bob.is_active = False
        bob.save()

    assert email_missed_messages(bob, now=later(message)).sent_to is None
    assert mail.outbox == []


def test_a_delay_of_zero_turns_the_emails_off(settings, alice, bob):
    settings.IMWEB_MISSED_MESSAGE_EMAIL_SECONDS = 0
    befriend(alice, bob)
    message = send(alice, bob.jid, "hi")

    assert email_missed_messages(bob, now=later(message, 10 * DELAY)).sent_to is None
    assert mail.outbox == []


def test_a_failed_send_gives_the_messages_back_for_the_retry(settings, alice, bob):
    befriend(alice, bob)
    message = send(alice, bob.jid, "important")
    with socket.socket() as closed:  # a loopback port nobody listens on: a real refused SMTP connection
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5

    with pytest.raises(ConnectionRefusedError):
        email_missed_messages(bob, now=later(message))

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert email_missed_messages(bob, now=later(message)).messages == 1
    assert "important" in mail.outbox[0].body


# --- Scheduling through the real broker --------------------------------------------------------------------


def checks() -> dict[int, tuple]:
    """The missed-message checks in the database: user id -> (due at, version)."""
    return {row.user_id: (row.due_at, row.version) for row in MissedEmailCheck.objects.all()}


def test_sending_records_one_check_per_recipient_in_the_database(alice, bob):
    befriend(alice, bob)
    before = timezone.now()
    send(alice, bob.jid, "one")
    ((first_due, first_version),) = checks().values()
    send(alice, bob.jid, "two")

    assert set(checks()) == {bob.pk}  # the sender has nothing to be told about
    due, version = checks()[bob.pk]
    assert due == first_due  # the earlier due time stays
    assert before + timedelta(seconds=DELAY - 1) <= due <= timezone.now() + timedelta(seconds=DELAY + 1)
    assert version == first_version + 1


def test_no_check_when_the_recipient_has_it_waiting_in_requests(alice, bob):
    send(alice, bob.jid, "hello stranger")
    assert checks() == {}


def test_the_sweep_emails_what_is_due_and_keeps_a_check_for_the_rest(alice, bob):
    befriend(alice, bob)
    old = send(alice, bob.jid, "sent a while ago")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=DELAY + 5))
    MissedEmailCheck.objects.update(due_at=timezone.now() - timedelta(seconds=1))
    new = send(alice, bob.jid, "just now")

    assert sweep_missed_emails() == 1
    (email,) = mail.outbox
    assert "sent a while ago" in email.body and "just now" not in email.body
    due, _ = checks()[bob.pk]
    assert due == later(Message.objects.get(pk=new.pk))  # when "just now" becomes due
    assert sweep_missed_emails() == 0 and len(mail.outbox) == 1  # nothing else is due yet


def test_a_message_that_comes_while_the_sweep_works_is_not_forgotten(alice, bob, monkeypatch):
    befriend(alice, bob)
    old = send(alice, bob.jid, "first")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=DELAY + 5))
    MissedEmailCheck.objects.update(due_at=timezone.now() - timedelta(seconds=1))
    real = missed_email.email_missed_messages

    def meanwhile(user, **kwargs):
        result = real(user, **kwargs)
        send(alice, bob.jid, "arrived during the sweep")  # after the sweep read the unread messages
        return dataclasses.replace(result, next_due=None)  # as it was when the sweep read the unread messages

    monkeypatch.setattr(missed_email, "email_missed_messages", meanwhile)
    assert sweep_missed_emails() == 1
    due, _ = checks()[bob.pk]
    assert due is not None  # the new message's check survived the sweep's clean-up


def test_checks_survive_a_lost_broker_because_they_are_rows(alice, bob):
    befriend(alice, bob)
    send(alice, bob.jid, "kept in the database")
    redis.Redis.from_url(django_settings.REDIS_URL).flushall()  # Valkey restarted without persistence
    assert set(checks()) == {bob.pk}
