"""The API's side of one's own conversation settings: GET /conversations says muted, pinned and marked_unread (and
lists pinned ones first), PATCH /conversations/{id} sets them, for the caller alone."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from accounts import actions as accounts
from accounts.tokens import issue_token
from chat import actions

pytestmark = pytest.mark.django_db


class Api:
    """A JSON client for /api/v1/ with one user's bearer token."""

    def __init__(self, user) -> None:
        self.client = Client()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(user, 'test')[1]}"}

    def get(self, path: str):
        return self.client.get(f"/api/v1{path}", **self.auth)

    def patch(self, path: str, body: object):
        return self.client.patch(f"/api/v1{path}", json.dumps(body), content_type="application/json", **self.auth)


@pytest.fixture(autouse=True)
def no_rate_limits(settings):
    settings.IMWEB_MESSAGE_RATE_LIMITS = ()


@pytest.fixture
def carol(make_user):
    return make_user("carol", display_name="Carol")


@pytest.fixture
def chats(alice, bob, carol):
    """Alice's chat with Bob (older) and with Carol (newer), one unread message in each."""
    for other in (bob, carol):
        accounts.request_subscription(alice, other.jid)
        accounts.accept_subscription(other, alice.jid)
    with_bob = actions.send_message(bob, to=alice.jid, body="hi", client_id=uuid.uuid4()).conversation_id
    with_carol = actions.send_message(carol, to=alice.jid, body="hey", client_id=uuid.uuid4()).conversation_id
    return with_bob, with_carol


def settings_of(rows: list[dict]) -> dict[int, tuple[bool, bool, bool]]:
    return {row["id"]: (row["muted"], row["pinned"], row["marked_unread"]) for row in rows}


def test_conversations_say_my_settings_and_patch_sets_them(alice, bob, chats):
    with_bob, with_carol = chats
    api = Api(alice)
    assert settings_of(api.get("/conversations").json()) == {with_bob: (False,) * 3, with_carol: (False,) * 3}

    answer = api.patch(f"/conversations/{with_bob}", {"muted": True, "pinned": True})

    assert answer.status_code == 200
    assert (answer.json()["id"], answer.json()["muted"], answer.json()["pinned"]) == (with_bob, True, True)
    rows = api.get("/conversations").json()
    assert [row["id"] for row in rows] == [with_bob, with_carol]  # pinned first, though older
    assert settings_of(rows)[with_bob] == (True, True, False)
    assert settings_of(Api(bob).get("/conversations").json()) == {with_bob: (False,) * 3}  # Bob sees none of it


def test_marked_unread_and_mark_as_read(alice, chats):
    with_bob, _ = chats
    api = Api(alice)

    marked = api.patch(f"/conversations/{with_bob}", {"marked_unread": True}).json()
    assert marked["marked_unread"] is True and marked["unread"] == 1

    read = api.patch(f"/conversations/{with_bob}", {"marked_unread": False}).json()
    assert (read["marked_unread"], read["unread"], read["last_read_seq"]) == (False, 0, 1)


def test_an_empty_patch_changes_nothing(alice, chats):
    with_bob, _ = chats
    answer = Api(alice).patch(f"/conversations/{with_bob}", {})
    assert answer.status_code == 200 and (answer.json()["muted"], answer.json()["pinned"]) == (False, False)


def test_someone_else_s_conversation_is_404_and_bad_values_are_422(alice, carol, chats):
    with_bob, _ = chats

    assert Api(carol).patch(f"/conversations/{with_bob}", {"muted": True}).status_code == 404
    assert Api(carol).patch("/conversations/999999", {"muted": True}).status_code == 404
    bad = Api(alice).patch(f"/conversations/{with_bob}", {"muted": "yes"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    assert settings_of(Api(alice).get("/conversations").json())[with_bob] == (False,) * 3
