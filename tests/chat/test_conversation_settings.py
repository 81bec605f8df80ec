"""One's own settings for a conversation: mute (no missed-message email, left out of the unread totals, a muted
badge), pin (listed first) and mark as unread (shows as unread until opened or read again). Each is a plain form
with CSRF that goes back where it came from, an htmx request that answers the new list, and a push to the
person's own sockets only; nobody else ever sees them."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import lxml.html
import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from accounts import actions as accounts
from accounts import events
from chat import actions
from chat.actions.conversations import set_marked_unread, set_muted, set_pinned
from chat.actions.missed_email import email_missed_messages
from chat.errors import NotFound
from chat.models import Message, Participant

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
DELAY = 900


@pytest.fixture(autouse=True)
def quick_settings(settings):
    settings.IMWEB_MESSAGE_RATE_LIMITS = ()
    settings.IMWEB_MISSED_MESSAGE_EMAIL_SECONDS = DELAY
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def carol(make_user):
    return make_user("carol", display_name="Carol")


def befriend(a, b) -> None:
    accounts.request_subscription(a, b.jid)
    accounts.accept_subscription(b, a.jid)


def send(user, to, body="hello") -> Message:
    return actions.send_message(user, to=to, body=body, client_id=uuid.uuid4())


def client_for(user, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def row_of(html: str, conversation_id: int) -> lxml.html.HtmlElement:
    (row,) = lxml.html.fromstring(html).xpath(f'//li[@id="convrow-{conversation_id}"]')
    return row


def classes(element) -> set[str]:
    return set(element.get("class", "").split())


def list_order(html: str) -> tuple[list[int], list[int]]:
    """(pinned conversation ids, the others), in the order the page lists them."""
    page = lxml.html.fromstring(html)
    pinned = [int(r.get("data-conversation")) for r in page.xpath('//ul[@id="convlist-pinned"]/li[@data-conversation]')]
    others = [int(r.get("data-conversation")) for r in page.xpath('//ul[@id="convlist-chats"]/li[@data-conversation]')]
    return pinned, others


@pytest.fixture
def two_chats(alice, bob, carol):
    """Alice has a chat with Bob (older) and one with Carol (newer), each with one unread message for her."""
    befriend(alice, bob)
    befriend(alice, carol)
    with_bob = send(bob, alice.jid, "from bob").conversation_id
    with_carol = send(carol, alice.jid, "from carol").conversation_id
    return with_bob, with_carol


# --- Mute -------------------------------------------------------------------------------------------------


def test_a_muted_conversation_gets_no_missed_message_email_while_others_do(alice, bob, carol, two_chats):
    with_bob, with_carol = two_chats
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    set_muted(alice, with_bob, True)
    newest = Message.objects.filter(conversation_id=with_carol).latest("seq")

    result = email_missed_messages(alice, now=newest.created_at + timedelta(seconds=DELAY))

    assert result.messages == 1
    (email,) = mail.outbox
    assert "from carol" in email.body and "from bob" not in email.body


def test_unmuting_does_not_email_what_came_while_muted_but_later_messages_are(alice, bob, two_chats):
    with_bob, with_carol = two_chats
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    actions.mark_read(alice, with_carol, 1)
    set_muted(alice, with_bob, True)
    send(bob, with_bob, "while muted")
    set_muted(alice, with_bob, False)
    after = send(bob, with_bob, "after unmuting")

    email_missed_messages(alice, now=after.created_at + timedelta(seconds=DELAY))

    (email,) = mail.outbox
    assert "after unmuting" in email.body
    assert "while muted" not in email.body and "from bob" not in email.body


def test_a_muted_row_shows_the_badge_and_its_count_stays_out_of_the_title(alice, two_chats):
    with_bob, with_carol = two_chats
    client = client_for(alice)
    assert "<title>(2) imweb</title>" in client.get("/").content.decode()

    set_muted(alice, with_bob, True)
    html = client.get("/").content.decode()

    row = row_of(html, with_bob)
    assert "convrow--muted" in classes(row) and row.get("data-muted") == "1"
    assert row.xpath('.//*[contains(@class, "convrow__muted")]//text()') == ["Muted"]
    assert row.xpath(".//*[@id=$id]/@data-unread", id=f"unread-{with_bob}") == ["1"]  # still on its row
    assert "<title>(1) imweb</title>" in html
    assert "convrow--muted" not in classes(row_of(html, with_carol))


# --- Pin --------------------------------------------------------------------------------------------------


def test_pinned_conversations_come_first_by_activity_and_unpinning_puts_them_back(alice, bob, carol, two_chats):
    with_bob, with_carol = two_chats
    client = client_for(alice)
    assert list_order(client.get("/").content.decode()) == ([], [with_carol, with_bob])

    set_pinned(alice, with_bob, True)
    assert list_order(client.get("/").content.decode()) == ([with_bob], [with_carol])
    assert [row.id for row in actions.conversations_for(alice)] == [with_bob, with_carol]

    set_pinned(alice, with_carol, True)
    send(bob, with_bob, "newer")  # among pinned ones, the newest activity first
    assert list_order(client.get("/").content.decode()) == ([with_bob, with_carol], [])

    set_pinned(alice, with_bob, False)
    set_pinned(alice, with_carol, False)
    assert list_order(client.get("/").content.decode()) == ([], [with_bob, with_carol])


def test_one_person_pinning_or_muting_changes_nothing_for_the_other(alice, bob, two_chats):
    with_bob, _ = two_chats
    set_pinned(alice, with_bob, True)
    set_muted(alice, with_bob, True)

    html = client_for(bob).get("/").content.decode()

    row = row_of(html, with_bob)
    assert {"convrow--muted", "convrow--pinned"}.isdisjoint(classes(row))
    assert row.get("data-muted") == "0" and row.get("data-pinned") == "0"
    assert list_order(html) == ([], [with_bob])


# --- Mark as unread ---------------------------------------------------------------------------------------


def test_marked_unread_shows_as_unread_until_the_conversation_is_opened(alice, bob, two_chats):
    with_bob, _ = two_chats
    actions.mark_read(alice, with_bob, 1)
    client = client_for(alice)
    assert "convrow--marked" not in classes(row_of(client.get("/").content.decode(), with_bob))

    set_marked_unread(alice, with_bob, True)
    row = row_of(client.get("/").content.decode(), with_bob)
    assert "convrow--marked" in classes(row) and row.get("data-marked") == "1"
    assert [row.id for row in actions.conversations_for(alice) if row.marked_unread] == [with_bob]

    client.get(f"/c/{with_bob}/")  # opening it
    assert "convrow--marked" not in classes(row_of(client.get("/").content.decode(), with_bob))
    assert Participant.objects.get(user=alice, conversation_id=with_bob).unread_mark_seq is None


def test_reading_on_past_the_mark_clears_it_and_tells_the_person_s_tabs(
    alice, bob, two_chats, published, django_capture_on_commit_callbacks
):
    with_bob, _ = two_chats
    actions.mark_read(alice, with_bob, 1)
    set_marked_unread(alice, with_bob, True)
    send(bob, with_bob, "more")
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        actions.mark_read(alice, with_bob, 2)  # read in a tab that had it open

    assert not any(row.marked_unread for row in actions.conversations_for(alice))
    # Every tab of hers draws its list again, without the mark (the others hear only the receipt).
    assert (alice.pk, events.CONVERSATION_UPDATED) in [(user, event["type"]) for user, event in published]
    assert all(user == alice.pk for user, event in published if event["type"] == events.CONVERSATION_UPDATED)


def test_mark_as_read_takes_the_mark_off_and_reads_everything(alice, bob, two_chats):
    with_bob, _ = two_chats
    set_marked_unread(alice, with_bob, True)

    set_marked_unread(alice, with_bob, False)

    (summary,) = [row for row in actions.conversations_for(alice) if row.id == with_bob]
    assert (summary.unread, summary.marked_unread) == (0, False)


# --- The forms --------------------------------------------------------------------------------------------


def test_the_row_menu_works_without_javascript_with_the_page_s_csrf_token(alice, two_chats):
    with_bob, _ = two_chats
    client = client_for(alice, enforce_csrf_checks=True)
    page = lxml.html.fromstring(client.get("/").content.decode())
    (form,) = page.xpath('//form[@id="convlist-action"]')
    (token,) = form.xpath('.//input[@name="csrfmiddlewaretoken"]/@value')
    (mute,) = page.xpath(f'//li[@id="convrow-{with_bob}"]//button[@name="muted"][@value="1"]')
    assert mute.get("form") == "convlist-action" and mute.get("type") == "submit"

    refused = client.post(mute.get("formaction"), {"muted": "1"})
    assert refused.status_code == 403
    response = client.post(mute.get("formaction"), {"muted": "1", "csrfmiddlewaretoken": token}, HTTP_REFERER="/")

    assert response.status_code == 302 and response["Location"] == "/"
    assert "convrow--muted" in classes(row_of(client.get("/").content.decode(), with_bob))


def test_marking_unread_from_the_conversation_page_goes_home_not_back_to_it(alice, two_chats):
    with_bob, _ = two_chats
    client = client_for(alice)
    page = f"http://testserver/c/{with_bob}/"

    response = client.post(f"/c/{with_bob}/unread", {"unread": "1"}, HTTP_REFERER=page)

    assert response["Location"] == "/"  # going back would open it, which takes the mark off
    assert "convrow--marked" in classes(row_of(client.get("/").content.decode(), with_bob))
    elsewhere = client.post(f"/c/{with_bob}/pin", {"pinned": "1"}, HTTP_REFERER="https://evil.example/")
    assert elsewhere["Location"] == "/"


def test_htmx_gets_the_new_list_and_the_open_header_and_only_the_person_s_sockets_hear(
    alice, bob, two_chats, published, django_capture_on_commit_callbacks
):
    with_bob, _ = two_chats
    published.clear()
    current = {"HTTP_HX_CURRENT_URL": f"http://testserver/c/{with_bob}/"}

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(f"/c/{with_bob}/mute", {"muted": "1"}, **HTMX, **current)

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'<div id="conversations" class="convlist" hx-swap-oob="true">', html)
    assert "convrow--muted" in classes(row_of(html, with_bob))
    assert "convrow--open" in classes(row_of(html, with_bob))
    header = lxml.html.fromstring(html).xpath(f'//header[@id="pane-head-{with_bob}"]')[0]
    assert header.xpath('.//input[@name="muted"]/@value') == ["0"]  # it now offers Unmute
    assert [(user, event["type"]) for user, event in published] == [(alice.pk, events.CONVERSATION_UPDATED)]

    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client_for(alice).post(f"/c/{with_bob}/mute", {"muted": "1"}, **HTMX)  # already muted: nothing to tell
    assert published == []


def test_a_push_of_a_new_message_carries_nobody_s_settings(
    alice, bob, carol, published, django_capture_on_commit_callbacks
):
    befriend(alice, bob)
    befriend(alice, carol)
    room = actions.create_room(alice, "Plans", "", [bob.jid, carol.jid])
    set_muted(bob, room.pk, True)
    set_pinned(bob, room.pk, True)
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        send(alice, room.pk, "hi all")

    rows = {user: event["row"] for user, event in published if event["type"] == events.MESSAGE_NEW}
    assert set(rows) == {alice.pk, bob.pk, carol.pk}
    for html in rows.values():
        row = row_of(html, room.pk)
        assert {"convrow--muted", "convrow--pinned", "convrow--marked"}.isdisjoint(classes(row))
        assert row.get("data-muted") is None  # the page keeps each person's own (static/js/chat.js)


@pytest.mark.parametrize("path", ["mute", "pin", "unread"])
def test_settings_of_a_conversation_one_is_not_in_are_404(alice, bob, carol, two_chats, path):
    with_bob, _ = two_chats

    response = client_for(carol).post(f"/c/{with_bob}/{path}", {"muted": "1", "pinned": "1", "unread": "1"})

    assert response.status_code == 404
    assert client_for(carol).post(f"/c/999999/{path}").status_code == 404
    with pytest.raises(NotFound):
        set_muted(carol, with_bob, True)
    mine = Participant.objects.get(user=alice, conversation_id=with_bob)
    assert (mine.muted, mine.pinned_at, mine.unread_mark_seq) == (False, None, None)


def test_settings_need_a_post(alice, two_chats):
    with_bob, _ = two_chats
    assert client_for(alice).get(f"/c/{with_bob}/mute").status_code == 405
