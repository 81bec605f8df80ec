"""The contact-list doors: htmx answers with fragments, plain forms redirect, errors come back in place."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import actions
from accounts.models import BlockedJid, RosterItem

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def test_home_shows_requests_groups_and_presence(as_alice, alice, bob, make_user):
    carol = make_user("carol", display_name="Carol")
    actions.request_subscription(alice, bob.jid)
    actions.accept_subscription(bob, alice.jid)
    actions.set_contact_groups(alice, bob.jid, ["Climbing"])
    actions.open_session(bob, "tab")
    actions.set_presence(bob, show="away", status="at lunch")
    actions.request_subscription(carol, alice.jid, message="hello from Carol")

    page = as_alice.get(reverse("home")).content.decode()

    assert 'id="requests"' in page and "carol@imweb.localhost" in page and "hello from Carol" in page
    assert "Climbing" in page and "1/1" in page
    assert "Away" in page and "at lunch" in page
    assert 'ws-connect="/ws/"' in page


def test_adding_over_htmx_answers_with_feedback_and_fresh_lists(as_alice, bob):
    response = as_alice.post(reverse("contact_add"), {"jid": "bob@imweb.localhost"}, headers=HTMX)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="contact-feedback"' in body and "Request sent to bob@imweb.localhost" in body
    assert 'id="roster" class="roster" hx-swap-oob="true"' in body
    assert "waiting for them to accept" in body


def test_an_error_comes_back_as_422_with_the_message_and_changes_nothing(as_alice):
    response = as_alice.post(reverse("contact_add"), {"jid": "alice@imweb.localhost"}, headers=HTMX)

    assert response.status_code == 422
    assert "you cannot add yourself" in response.content.decode()
    assert not RosterItem.objects.exists()


def test_without_htmx_actions_redirect_home_with_a_message(as_alice, bob):
    response = as_alice.post(reverse("contact_add"), {"jid": "bob@imweb.localhost"}, follow=True)
    assert "Request sent to bob@imweb.localhost" in response.content.decode()


def test_accept_and_decline_work_on_the_signed_in_user_s_own_requests_only(client, alice, bob, make_user):
    carol = make_user("carol")
    actions.request_subscription(alice, bob.jid)
    client.force_login(carol)  # Carol cannot answer a request made to Bob
    response = client.post(reverse("contact_accept"), {"jid": alice.jid}, headers=HTMX)
    assert response.status_code == 422
    assert RosterItem.objects.get(owner=bob).pending_in

    client.force_login(bob)
    assert client.post(reverse("contact_accept"), {"jid": alice.jid}, headers=HTMX).status_code == 200
    assert RosterItem.objects.get(owner=bob).subscription == "both"


def test_blocklist_page_blocks_and_unblocks(as_alice):
    as_alice.post(reverse("blocklist"), {"jid": "spam.example"})
    page = as_alice.get(reverse("blocklist")).content.decode()
    assert "spam.example" in page and "whole server" in page

    as_alice.post(reverse("contact_unblock"), {"jid": "spam.example"})
    assert not BlockedJid.objects.exists()


def test_search_lists_people_with_an_add_button(as_alice, make_user):
    make_user("bobby", display_name="Robert")
    body = as_alice.get(reverse("contact_search"), {"q": "rob"}).content.decode()
    assert "bobby@imweb.localhost" in body and "Add bobby@imweb.localhost" in body


def test_presence_form_sets_state_and_status(as_alice, alice):
    response = as_alice.post(reverse("presence_set"), {"show": "dnd", "status": "focusing"}, headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Trigger"] == "profile-changed"
    alice.refresh_from_db()
    assert (alice.presence_show, alice.status_message) == ("dnd", "focusing")


@pytest.mark.parametrize(
    "name", ["contacts", "contact_add", "contact_accept", "contact_block", "blocklist", "presence_set"]
)
def test_contact_endpoints_require_login(client, name):
    response = client.post(reverse(name))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_search_marks_people_already_in_the_list_instead_of_offering_add(as_alice, alice, bob):
    actions.request_subscription(alice, bob.jid)
    body = as_alice.get(reverse("contact_search"), {"q": "bob"}).content.decode()
    assert "In your contacts" in body
    assert "Add bob@imweb.localhost" not in body
