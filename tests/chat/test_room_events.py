"""Room events: creating a room, inviting, leaving, removing, renaming and changing the topic each leave one line in
the room's numbered history, shown live to the current members as a centred line (no tools, no status), never
unread, never emailed, never found by search, and marked `kind: "event"` in the API."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from accounts import actions as accounts
from accounts.events import MESSAGE_NEW
from accounts.tokens import issue_token
from chat import actions, queries
from chat.actions.missed_email import email_missed_messages
from chat.errors import InvalidArgument, NotAllowed
from chat.models import Message, MissedEmailCheck, Participant

pytestmark = pytest.mark.django_db

DELAY = 900


@pytest.fixture
def carol(make_user):
    return make_user("carol", display_name="Carol")


def befriend(a, b) -> None:
    accounts.request_subscription(a, b.jid)
    accounts.accept_subscription(b, a.jid)


@pytest.fixture
def room(alice, bob, carol) -> int:
    """A room Alice owns with Bob in it; Carol is a contact of Alice's, not yet in it."""
    befriend(alice, bob)
    befriend(alice, carol)
    return actions.create_room(alice, "Plans", members=[bob.jid]).pk


def send(user, to, body="hello") -> Message:
    return actions.send_message(user, to=to, body=body, client_id=uuid.uuid4())


def history(user, room: int) -> list[tuple[int, str, str]]:
    return [(m.seq, m.kind, m.body) for m in actions.messages_after(user, room, 0)]


def unread(user, room: int) -> int:
    mine = Participant.objects.get(user=user, conversation_id=room)
    from_list = next(s.unread for s in actions.conversations_for(user) if s.id == room)
    assert queries.unread_counts([mine.pk])[mine.pk] == from_list  # the list and the pushes count alike
    return from_list


# --- Each action records its line, once, numbered -----------------------------------------------------------


def test_each_room_action_records_one_numbered_line_where_it_happened(alice, bob, carol, room):
    send(bob, room, "hi all")
    actions.invite(alice, room, carol.jid)
    actions.set_topic(alice, room, "Saturday's climb")
    actions.rename_room(alice, room, "Climbing")
    actions.remove_member(alice, room, carol.jid)
    actions.set_topic(alice, room, "")
    actions.leave(bob, room)

    assert history(alice, room) == [
        (1, "event", "Alice created the room “Plans”"),
        (2, "message", "hi all"),
        (3, "event", "Alice invited Carol"),
        (4, "event", "Alice changed the topic to “Saturday's climb”"),
        (5, "event", "Alice renamed the room to “Climbing”"),
        (6, "event", "Alice removed Carol"),
        (7, "event", "Alice removed the topic"),
        (8, "event", "Bob left"),
    ]
    events = [m.event for m in Message.objects.filter(conversation_id=room, kind="event").order_by("seq")]
    assert events == [
        {"type": "created", "value": "Plans"},
        {"type": "invited", "jid": carol.jid},
        {"type": "topic", "value": "Saturday's climb"},
        {"type": "renamed", "value": "Climbing"},
        {"type": "removed", "jid": carol.jid},
        {"type": "topic", "value": ""},
        {"type": "left"},
    ]
    assert all(m.sender_id == alice.pk for m in Message.objects.filter(seq__in=[1, 3, 4, 5, 6, 7]))
    # The next message still takes the next number: no gap, no double.
    assert send(alice, room, "anyone?").seq == 9


def test_setting_the_same_name_or_topic_again_records_nothing(alice, room):
    actions.set_topic(alice, room, "Climb")
    actions.set_topic(alice, room, "  Climb ")
    actions.rename_room(alice, room, "Plans")

    assert [body for _, _, body in history(alice, room)] == [
        "Alice created the room “Plans”",
        "Alice changed the topic to “Climb”",
    ]


def test_the_last_owner_leaving_says_who_owns_the_room_now(alice, bob, room):
    actions.leave(alice, room)

    (*_, (_, kind, body)) = history(bob, room)
    assert (kind, body) == ("event", "Alice left; Bob is now an owner")
    assert Message.objects.get(conversation_id=room, seq=2).event == {"type": "left", "owner": bob.jid}


def test_someone_invited_sees_the_history_with_their_own_invitation(alice, carol, room):
    actions.invite(alice, room, carol.jid)

    assert [body for _, _, body in history(carol, room)] == [
        "Alice created the room “Plans”",
        "Alice invited Carol",
    ]


def test_a_refused_action_records_nothing(alice, bob, carol, room):
    with pytest.raises(NotAllowed):
        actions.invite(bob, room, carol.jid)  # only owners invite
    with pytest.raises(InvalidArgument):
        actions.rename_room(alice, room, "")

    assert len(history(alice, room)) == 1


# --- Published to the current members, as a line ------------------------------------------------------------


def _news(published, seq: int) -> dict[int, dict]:
    return {user_id: event for user_id, event in published if event["type"] == MESSAGE_NEW and event["seq"] == seq}


def test_the_line_reaches_every_current_member_once_as_a_centred_line_without_tools(
    alice, bob, carol, room, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        actions.invite(alice, room, carol.jid)

    news = _news(published, 2)
    assert set(news) == {alice.pk, bob.pk, carol.pk}
    assert sum(1 for _, e in published if e["type"] == MESSAGE_NEW) == 3  # once each
    for event in news.values():
        html = event["html"]
        assert f'id="msg-{room}-2"' in html and "message--event" in html
        assert "Alice invited Carol" in html
        # Not a message: nobody's bubble, no status or read marker, no reply, reactions, edit, delete or report.
        for absent in ("data-sender", "message__status", "message__tools", "Reply", "React", "Report", "Edit"):
            assert absent not in html, absent
        assert event["unread"] == 0 and event["quiet"] is True
        assert 'data-event="1"' in event["row"] and "Alice invited Carol" in event["row"]
        assert json.loads(event["api"])["message"]["kind"] == "event"


def test_someone_who_left_is_not_sent_the_line_of_their_leaving(
    alice, bob, room, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        actions.leave(bob, room)

    news = _news(published, 2)
    assert set(news) == {alice.pk}
    assert "Bob left" in news[alice.pk]["html"]


def test_the_line_is_text_escaped_not_markup(alice, bob, room):
    actions.set_topic(alice, room, "<b>bold</b> **move** https://example.org")
    client = Client()
    client.force_login(bob)

    page = client.get(f"/c/{room}/").content.decode()

    assert "changed the topic to “&lt;b&gt;bold&lt;/b&gt; **move** https://example.org”" in page
    assert "<b>bold</b>" not in page and 'href="https://example.org"' not in page


def test_the_conversation_list_previews_the_line_as_it_is(alice, bob, room):
    actions.set_topic(alice, room, "Saturday")
    client = Client()
    client.force_login(bob)

    page = client.get("/").content.decode()

    assert "Alice changed the topic to “Saturday”</span>" in page
    assert "Alice: Alice changed" not in page


# --- Not unread, not emailed, not searched ------------------------------------------------------------------


def test_lines_are_never_unread_and_messages_still_are(alice, bob, carol, room):
    actions.invite(alice, room, carol.jid)
    actions.set_topic(alice, room, "Saturday")
    assert unread(bob, room) == 0
    assert unread(carol, room) == 0

    send(alice, room, "who's in?")
    actions.rename_room(alice, room, "Climbing")

    assert unread(bob, room) == 1
    assert unread(carol, room) == 1


def test_lines_are_never_emailed_as_missed_messages(alice, bob, carol, room, settings):
    settings.IMWEB_MISSED_MESSAGE_EMAIL_SECONDS = DELAY
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    EmailAddress.objects.create(user=bob, email=bob.email, verified=True, primary=True)
    actions.invite(alice, room, carol.jid)
    actions.set_topic(alice, room, "Saturday")

    assert not MissedEmailCheck.objects.filter(user=bob, due_at__isnull=False).exists()
    later = Message.objects.get(conversation_id=room, body__contains="Saturday").created_at + timedelta(seconds=DELAY)
    assert email_missed_messages(bob, now=later).sent_to is None
    assert mail.outbox == []

    message = send(alice, room, "bring a rope")
    actions.rename_room(alice, room, "Climbing")
    result = email_missed_messages(bob, now=message.created_at + timedelta(seconds=DELAY + 60))

    assert (result.sent_to, result.messages) == (bob.email, 1)
    (email,) = mail.outbox
    assert "Alice: bring a rope" in email.body
    assert "renamed" not in email.body and "topic" not in email.body and "invited" not in email.body


def test_lines_are_not_found_by_search(alice, bob, carol, room):
    actions.set_topic(alice, room, "zeppelin")
    actions.invite(alice, room, carol.jid)
    assert actions.search_messages(bob, "zeppelin") == []
    assert actions.search_messages(bob, "invited") == []

    said = send(alice, room, "the zeppelin lands at noon")

    assert [(hit.conversation_id, hit.seq) for hit in actions.search_messages(bob, "zeppelin")] == [(room, said.seq)]


# --- Not a message: nothing can change it -------------------------------------------------------------------


def test_a_line_cannot_be_edited_deleted_reacted_to_or_replied_to(alice, bob, room):
    with pytest.raises(NotAllowed):
        actions.edit_message(alice, room, 1, "I did not")
    with pytest.raises(NotAllowed):
        actions.delete_message(alice, room, 1)
    with pytest.raises(NotAllowed):
        actions.react(bob, room, 1, "👍")
    with pytest.raises(InvalidArgument):
        actions.send_message(bob, to=room, body="re", client_id=uuid.uuid4(), reply_to_seq=1)

    line = Message.objects.get(conversation_id=room, seq=1)
    assert (line.body, line.deleted_at, line.reactions.count()) == ("Alice created the room “Plans”", None, 0)


# --- The API -------------------------------------------------------------------------------------------------


def test_the_api_says_which_is_a_message_and_which_an_event(alice, bob, carol, room):
    send(bob, room, "hi")
    actions.invite(alice, room, carol.jid)
    token = issue_token(bob, "test")[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    messages = client.get(f"/api/v1/conversations/{room}/messages").json()["messages"]
    conversations = client.get("/api/v1/conversations").json()

    assert [(m["seq"], m["kind"], m["event"], m["body"]) for m in messages] == [
        (1, "event", {"type": "created", "value": "Plans"}, "Alice created the room “Plans”"),
        (2, "message", None, "hi"),
        (3, "event", {"type": "invited", "jid": carol.jid}, "Alice invited Carol"),
    ]
    assert messages[2]["sender"] == alice.jid
    (row,) = [c for c in conversations if c["id"] == room]
    assert row["last_message"]["kind"] == "event" and row["unread"] == 0
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["MessageOut"]["properties"]
    assert schema["kind"]["enum"] == ["message", "event"] and "room's history" in schema["kind"]["description"]
