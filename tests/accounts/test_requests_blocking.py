"""Blocking a stranger from Requests takes their request away for good (both kinds: a contact request and a
first message), the finder and the contact list offer Message to anyone, and a contact just asked is shown
apart, at the top, until they answer."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from accounts import actions as accounts
from accounts.roster import roster_view
from chat import actions as chat
from chat import queries
from chat.models import Message

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
REMOTE = "prosody.example"


@pytest.fixture
def carol(make_user):
    return make_user("carol", display_name="Carol")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def send(user, to, body: str = "hello") -> Message:
    return chat.send_message(user, to=to, body=body, client_id=uuid.uuid4())


def request_titles(user) -> list[str]:
    return [summary.peer_jid for summary in queries.conversation_list(user)["chat_requests"]]


# --- Blocking from Requests -------------------------------------------------------------------------------


def test_blocking_a_first_message_takes_it_out_of_requests_for_good(
    alice, carol, published, django_capture_on_commit_callbacks
):
    message = send(carol, alice.jid, "buy now")
    assert request_titles(alice) == [carol.jid]

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(f"/c/{message.conversation_id}/block", **HTMX)

    assert response.status_code == 204
    assert request_titles(alice) == []
    home = client_for(alice).get("/").content.decode()  # a reload
    assert f'hx-post="/c/{message.conversation_id}/accept"' not in home
    assert "buy now" not in home
    assert client_for(alice).get(f"/c/{message.conversation_id}/").status_code == 404
    # Every open tab of Alice's is told to drop it from the list.
    removed = [e for who, e in published if who == alice.pk and e["type"] == "conversation.removed"]
    assert [e["conversation"] for e in removed] == [message.conversation_id]


def test_blocking_a_contact_request_also_takes_away_their_first_message(alice, carol):
    accounts.request_subscription(carol, alice.jid, message="let me in")
    message = send(carol, alice.jid, "are you there?")

    response = client_for(alice).post("/contacts/block", {"jid": carol.jid}, **HTMX)

    body = response.content.decode()
    assert response.status_code == 200 and "Blocked carol@imweb.localhost" in body
    assert 'aria-label="Accept carol@imweb.localhost"' not in body
    assert roster_view(alice).requests == []
    assert request_titles(alice) == []
    home = client_for(alice).get("/").content.decode()
    assert "let me in" not in home and "are you there?" not in home
    assert f"/c/{message.conversation_id}/" not in home


def test_the_unread_count_of_requests_drops_with_the_block(alice, bob, carol):
    send(carol, alice.jid, "one")
    send(carol, alice.jid, "two")
    send(bob, alice.jid, "hi, Bob here")
    requests = queries.conversation_list(alice)["chat_requests"]
    assert sorted((s.peer_jid, s.unread) for s in requests) == [(bob.jid, 1), (carol.jid, 2)]

    accounts.block_jid(alice, carol.jid)

    requests = queries.conversation_list(alice)["chat_requests"]
    assert [(s.peer_jid, s.unread) for s in requests] == [(bob.jid, 1)]


def test_blocking_someone_leaves_accepted_chats_in_place(alice, bob):
    accounts.request_subscription(alice, bob.jid)
    accounts.accept_subscription(bob, alice.jid)
    message = send(bob, alice.jid, "we are friends")

    accounts.block_jid(alice, bob.jid)

    chats = queries.conversation_list(alice)["chats"]
    assert [s.id for s in chats] == [message.conversation_id]


def test_unblocking_brings_the_request_back_and_their_next_message_arrives(
    alice, carol, published, django_capture_on_commit_callbacks
):
    message = send(carol, alice.jid, "sorry about before")
    accounts.block_jid(alice, carol.jid)

    with django_capture_on_commit_callbacks(execute=True):
        accounts.unblock_jid(alice, carol.jid)

    assert request_titles(alice) == [carol.jid]
    assert [e["conversation"] for who, e in published if who == alice.pk and e["type"] == "conversation.updated"] == [
        message.conversation_id
    ]
    send(carol, alice.jid, "can we talk?")
    summary = queries.conversation_list(alice)["chat_requests"][0]
    assert summary.unread == 2 and summary.last_message.body == "can we talk?"


def test_blocking_a_server_takes_its_strangers_out_of_requests(alice):
    chat.receive_remote_message(f"spam@{REMOTE}", alice, "cheap watches", uuid.uuid4())
    assert request_titles(alice) == [f"spam@{REMOTE}"]

    accounts.block_jid(alice, REMOTE)
    assert request_titles(alice) == []

    # Unblocking the server while the person stays blocked keeps it hidden.
    accounts.block_jid(alice, f"spam@{REMOTE}")
    accounts.unblock_jid(alice, REMOTE)
    assert request_titles(alice) == []
    accounts.unblock_jid(alice, f"spam@{REMOTE}")
    assert request_titles(alice) == [f"spam@{REMOTE}"]


# --- Messaging someone who is not a contact ---------------------------------------------------------------


def test_the_finder_offers_message_beside_add(alice, bob):
    body = client_for(alice).get("/contacts/search", {"jid": "bo"}).content.decode()
    assert 'aria-label="Add bob@imweb.localhost"' in body
    assert 'href="/chat/new?to=bob%40imweb.localhost" aria-label="Message bob@imweb.localhost"' in body


def test_the_finder_offers_to_message_a_typed_remote_address(alice):
    body = client_for(alice).get("/contacts/search", {"jid": f"Someone@{REMOTE}"}).content.decode()
    assert f'href="/chat/new?to=someone%40{REMOTE}"' in body
    # Half an address, or the user's own, is not offered.
    assert "/chat/new" not in client_for(alice).get("/contacts/search", {"jid": "someone@"}).content.decode()
    assert "/chat/new" not in client_for(alice).get("/contacts/search", {"jid": alice.jid}).content.decode()


def test_a_contact_waiting_for_an_answer_has_a_message_button(alice, bob):
    accounts.request_subscription(alice, bob.jid)
    home = client_for(alice).get("/").content.decode()
    assert 'href="/chat/new?to=bob%40imweb.localhost" aria-label="Message Bob"' in home


def test_the_contact_list_has_a_message_an_address_form_that_works_without_javascript(alice):
    home = client_for(alice).get("/").content.decode()
    assert 'action="/chat/new"' in home and 'name="to"' in home

    page = client_for(alice).get("/chat/new", {"to": f"someone@{REMOTE}"})
    assert page.status_code == 200 and f"someone@{REMOTE}" in page.content.decode()
    assert "New conversation" in page.content.decode()


def test_a_bare_username_means_someone_here(alice, bob):
    page = client_for(alice).get("/chat/new", {"to": "bob"}).content.decode()
    assert "bob@imweb.localhost" in page and "New conversation" in page


def test_messaging_someone_blocked_says_so_at_once(alice, carol):
    accounts.block_jid(alice, carol.jid)
    response = client_for(alice).get("/chat/new", {"to": carol.jid}, follow=True)
    assert "You have blocked carol@imweb.localhost" in response.content.decode()
    assert "New conversation" not in response.content.decode()


def test_a_first_message_to_a_non_contact_waits_in_their_requests(alice, bob):
    send(alice, bob.jid, "hello from the finder")
    assert request_titles(bob) == [alice.jid]


# --- A contact just added ---------------------------------------------------------------------------------


def test_a_contact_just_asked_is_shown_first_apart_from_offline(alice, bob, carol, make_user):
    dave = make_user("dave", display_name="Dave")
    accounts.request_subscription(alice, bob.jid)
    accounts.accept_subscription(bob, alice.jid)  # bob answered: an ordinary (offline) contact
    accounts.request_subscription(alice, carol.jid)
    accounts.request_subscription(alice, dave.jid)

    view = roster_view(alice)
    assert [row.jid for row in view.waiting] == [dave.jid, carol.jid]  # newest first
    assert [row.jid for row in view.offline_answered] == [bob.jid]
    assert [(g.name, g.total) for g in view.groups] == [("Contacts", 1)]

    response = client_for(alice).post("/contacts/add", {"jid": "erin@imweb.localhost"}, **HTMX)
    assert response.status_code == 422  # no such account: nothing waits
    home = client_for(alice).get("/").content.decode()
    waiting = home.split("Waiting for an answer", 1)[1].split("</section>", 1)[0]
    assert 'data-jid="dave@imweb.localhost"' in waiting and 'data-jid="carol@imweb.localhost"' in waiting
    offline = home.split('data-group="Offline"', 1)[1]
    assert 'data-jid="carol@imweb.localhost"' not in offline and 'data-jid="bob@imweb.localhost"' in offline


def test_the_add_answer_shows_the_new_contact_in_the_waiting_group(alice, bob):
    body = client_for(alice).post("/contacts/add", {"jid": bob.jid}, **HTMX).content.decode()
    assert "Request sent to bob@imweb.localhost" in body
    waiting = body.split("Waiting for an answer", 1)[1].split("</section>", 1)[0]
    assert 'data-jid="bob@imweb.localhost"' in waiting
    assert 'data-group="Offline"' not in body
