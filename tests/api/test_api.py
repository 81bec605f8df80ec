"""The JSON API over HTTP: tokens, the endpoints a bot uses, their errors, and the OpenAPI docs under our CSP."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import pytest
from django.test import Client

from accounts import actions as accounts
from accounts.models import ApiToken
from accounts.tokens import issue_token
from chat.models import Message
from tests.people import PASSWORD

pytestmark = pytest.mark.django_db

FIXED_CLOCK = 1_800_000_005.0


class Api:
    """A JSON client for /api/v1/ that sends one user's bearer token."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def call(self, method: str, path: str, body: object = None, *, raw: str | None = None, **extra):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"data": data, "content_type": "application/json"} if data is not None else {}
        return getattr(self.client, method)(f"/api/v1{path}", **kwargs, **headers, **extra)

    def get(self, path: str, **extra):
        return self.call("get", path, **extra)

    def post(self, path: str, body: object = None, **kwargs):
        return self.call("post", path, body, **kwargs)

    def delete(self, path: str):
        return self.call("delete", path)


def api_for(user) -> Api:
    return Api(issue_token(user, "test")[1])


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
def carol(make_user):
    return make_user("carol", display_name="Carol")


@pytest.fixture
def friends(alice, bob):
    accounts.request_subscription(alice, bob.jid)
    accounts.accept_subscription(bob, alice.jid)
    return alice, bob


def send(api: Api, to: object, body: str = "hello", client_id: str | None = None):
    return api.post("/messages", {"to": to, "body": body, "client_id": client_id or str(uuid.uuid4())})


# --- Tokens -----------------------------------------------------------------------------------------------


def test_a_token_is_issued_for_username_or_email_and_only_its_hash_is_stored(alice):
    by_name = Api().post("/token", {"username": "alice", "password": PASSWORD, "name": "echo bot"})
    by_email = Api().post("/token", {"username": "alice@example.org", "password": PASSWORD})
    assert by_name.status_code == 201 and by_email.status_code == 201
    token = by_name.json()["token"]
    assert by_name.json()["name"] == "echo bot"
    row = ApiToken.objects.get(pk=by_name.json()["id"])
    assert row.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {value for value in ApiToken.objects.values_list("key_hash", "prefix", "name")[0]}
    me = Api(token).get("/me")
    assert me.status_code == 200
    assert me.json()["jid"] == alice.jid


def test_wrong_password_unknown_account_and_inactive_account_get_the_same_answer(alice, make_user):
    make_user("dormant", is_active=False)
    answers = [
        Api().post("/token", {"username": "alice", "password": "wrong password"}),
        Api().post("/token", {"username": "nobody", "password": PASSWORD}),
        Api().post("/token", {"username": "dormant", "password": PASSWORD}),
    ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.content for r in answers}) == 1
    assert error_code(answers[0]) == "invalid_credentials"
    assert not ApiToken.objects.exists()


def test_token_requests_share_the_failed_login_limit(alice):
    # IMWEB_LOGIN_RATE_LIMIT's default allows 5 failures per account in 5 minutes, as on the sign-in page.
    for _ in range(5):
        assert Api().post("/token", {"username": "alice", "password": "guess"}).status_code == 401
    refused = Api().post("/token", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 429
    assert error_code(refused) == "rate_limited"
    assert not ApiToken.objects.exists()


def test_a_revoked_token_stops_working_and_others_do_not(alice):
    first, second = api_for(alice), api_for(alice)
    assert first.delete("/token").status_code == 204
    refused = first.get("/me")
    assert refused.status_code == 401
    assert error_code(refused) == "unauthenticated"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert second.get("/me").status_code == 200


def test_tokens_are_listed_without_the_secret_and_revoked_by_id(alice, bob):
    api = api_for(alice)
    other, _ = issue_token(alice, "ci")
    listed = api.get("/tokens").json()
    assert {t["name"] for t in listed} == {"test", "ci"}
    assert [t["current"] for t in listed if t["name"] == "test"] == [True]
    assert all(set(t) == {"id", "name", "prefix", "created_at", "last_used_at", "current"} for t in listed)
    bobs, _ = issue_token(bob)
    assert api.delete(f"/tokens/{bobs.pk}").status_code == 404  # not alice's to revoke
    assert api.delete(f"/tokens/{other.pk}").status_code == 204
    assert list(ApiToken.objects.filter(user=alice).values_list("name", flat=True)) == ["test"]
    assert ApiToken.objects.filter(pk=bobs.pk).exists()


def test_tokens_of_deactivated_and_deleted_users_stop_working(alice, bob):
    alices, bobs = api_for(alice), api_for(bob)
    alice.is_active = False
    alice.save()
    accounts.delete_account(bob)
    assert alices.get("/me").status_code == 401
    assert bobs.get("/me").status_code == 401


def test_a_signed_in_browser_session_is_not_enough(alice, bob):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.get("/api/v1/me").status_code == 401
    posted = browser.post(
        "/api/v1/messages",
        json.dumps({"to": bob.jid, "body": "forged", "client_id": str(uuid.uuid4())}),
        content_type="application/json",
    )
    assert posted.status_code == 401
    assert not Message.objects.exists()


def test_missing_or_malformed_authorization_is_401(alice):
    for header in ["", "Bearer", "Bearer nope", "Basic YWxpY2U6eA==", "Bearer " + "x" * 5000]:
        response = Client().get("/api/v1/me", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header
        assert error_code(response) == "unauthenticated"


def test_operators_list_tokens_without_their_secret_and_revoke_them(alice, make_user):
    api = api_for(alice)
    operator = make_user("root", is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(operator)
    row = ApiToken.objects.get(user=alice)
    listing = admin.get("/admin/accounts/apitoken/")
    assert listing.status_code == 200
    assert row.prefix in listing.content.decode() and row.key_hash not in listing.content.decode()
    assert row.key_hash not in admin.get(f"/admin/accounts/apitoken/{row.pk}/change/").content.decode()
    revoked = admin.post(f"/admin/accounts/apitoken/{row.pk}/delete/", {"post": "yes"})
    assert revoked.status_code == 302
    assert api.get("/me").status_code == 401


# --- Messages ---------------------------------------------------------------------------------------------


def test_sending_returns_201_and_a_retry_returns_200_with_the_same_message(friends):
    alice, bob = friends
    api = api_for(alice)
    client_id = str(uuid.uuid4())
    first = send(api, bob.jid, "hello bob", client_id)
    again = send(api, bob.jid, "hello bob", client_id)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json() == again.json()
    message = first.json()
    assert message["seq"] == 1 and message["sender"] == alice.jid and message["body"] == "hello bob"
    assert message["client_id"] == client_id and message["deleted"] is False and message["reply_to"] is None
    assert Message.objects.count() == 1
    # The recipient sees the message, without the sender's client id.
    seen = api_for(bob).get(f"/conversations/{message['conversation']}/messages?after_seq=0").json()["messages"]
    assert [(m["seq"], m["body"], m["client_id"]) for m in seen] == [(1, "hello bob", None)]


def test_sending_to_a_conversation_id_as_number_or_string_and_replying(friends):
    alice, bob = friends
    first = send(api_for(alice), bob.jid, "question").json()
    conversation = first["conversation"]
    by_number = send(api_for(bob), conversation, "answer one")
    by_text = api_for(bob).post(
        "/messages", {"to": str(conversation), "body": "answer two", "client_id": str(uuid.uuid4()), "reply_to": 1}
    )
    assert by_number.status_code == 201 and by_text.status_code == 201
    assert by_number.json()["seq"] == 2
    assert by_text.json()["reply_to"] == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"body": "x" * 10_001}, 413, "message_too_long"),
        ({"body": "   "}, 422, "invalid_message"),
        ({"body": "bell \x07"}, 422, "invalid_message"),
        ({"client_id": "not-a-uuid"}, 422, "invalid_request"),
        ({"client_id": None}, 422, "invalid_request"),
        ({"to": "not an address@"}, 422, "invalid_jid"),
        ({"to": "nobody@imweb.localhost"}, 404, "no_such_user"),
        ({"to": "alice@imweb.localhost"}, 422, "invalid_argument"),
        ({"reply_to": 99}, 404, "no_such_message"),
        ({"to": 1.5}, 422, "invalid_request"),
    ],
)
def test_bad_sends_get_precise_errors_and_store_nothing(friends, body, status, code):
    alice, bob = friends
    payload = {"to": bob.jid, "body": "hi", "client_id": str(uuid.uuid4()), **body}
    response = api_for(alice).post("/messages", payload)
    assert response.status_code == status, response.content
    assert error_code(response) == code
    assert response.json()["error"]["message"]
    assert not Message.objects.exists()


def test_invalid_json_and_oversized_bodies(friends, settings):
    alice, _ = friends
    api = api_for(alice)
    broken = api.post("/messages", raw="{not json")
    assert broken.status_code == 400
    assert error_code(broken) == "invalid_json"
    settings.IMWEB_API_BODY_MAX_BYTES = 1024
    huge = api.post("/messages", {"to": "bob@imweb.localhost", "body": "x" * 2000, "client_id": str(uuid.uuid4())})
    assert huge.status_code == 413
    assert error_code(huge) == "body_too_large"
    assert not Message.objects.exists()


def test_sending_too_fast_is_429_with_retry_after(friends, settings, monkeypatch):
    alice, bob = friends
    monkeypatch.setattr("imweb.ratelimit.clock", lambda: FIXED_CLOCK)
    settings.IMWEB_MESSAGE_RATE_LIMITS = [(2, 10)]
    api = api_for(alice)
    assert [send(api, bob.jid).status_code for _ in range(2)] == [201, 201]
    refused = send(api, bob.jid)
    assert refused.status_code == 429
    assert error_code(refused) == "slow_down"
    assert refused.headers["Retry-After"] == "5"
    assert Message.objects.count() == 2


def test_blocked_and_nonexistent_recipients_look_the_same(friends, carol):
    alice, bob = friends
    accounts.block_jid(bob, alice.jid)
    blocked = send(api_for(alice), bob.jid)
    missing = send(api_for(alice), "nobody@imweb.localhost")
    assert blocked.status_code == missing.status_code == 404
    assert error_code(blocked) == error_code(missing) == "no_such_user"


def test_history_pages_forwards_and_backwards(friends, settings):
    settings.IMWEB_MESSAGE_RATE_LIMITS = ()
    alice, bob = friends
    api = api_for(alice)
    conversation = send(api, bob.jid, "m1").json()["conversation"]
    for n in range(2, 8):
        send(api, conversation, f"m{n}")
    path = f"/conversations/{conversation}/messages"

    def bodies(query: str) -> list[str]:
        response = api.get(f"{path}?{query}")
        assert response.status_code == 200, response.content
        return [m["body"] for m in response.json()["messages"]]

    assert bodies("after_seq=0&limit=3") == ["m1", "m2", "m3"]
    assert bodies("after_seq=3&limit=3") == ["m4", "m5", "m6"]
    assert bodies("after_seq=7") == []
    assert bodies("limit=2") == ["m6", "m7"]
    assert bodies("before_seq=6&limit=2") == ["m4", "m5"]
    both = api.get(f"{path}?after_seq=1&before_seq=5")
    assert both.status_code == 422 and error_code(both) == "invalid_argument"
    assert error_code(api.get(f"{path}?limit=0")) == "invalid_argument"
    assert api.get(f"{path}?after_seq=x").status_code == 422


def test_conversation_list_read_marker_and_unread_counts(friends, settings):
    settings.IMWEB_MESSAGE_RATE_LIMITS = ()
    alice, bob = friends
    conversation = send(api_for(alice), bob.jid, "one").json()["conversation"]
    send(api_for(alice), conversation, "two")
    bobs = api_for(bob)
    [row] = bobs.get("/conversations").json()
    assert row["id"] == conversation and row["kind"] == "direct" and row["peer"] == alice.jid
    assert (row["unread"], row["last_seq"], row["last_read_seq"]) == (2, 2, 0)
    assert row["last_message"]["body"] == "two" and row["name"] == "Alice"
    marked = bobs.post(f"/conversations/{conversation}/read", {"seq": 1})
    assert marked.json() == {"conversation": conversation, "seq": 1}
    assert bobs.get("/conversations").json()[0]["unread"] == 1
    assert bobs.post(f"/conversations/{conversation}/read", {"seq": 0}).json()["seq"] == 1  # never back
    assert bobs.post(f"/conversations/{conversation}/delivered", {"seq": 2}).json()["seq"] == 2


def test_edit_delete_and_react(friends):
    alice, bob = friends
    alices, bobs = api_for(alice), api_for(bob)
    conversation = send(alices, bob.jid, "helo").json()["conversation"]
    path = f"/conversations/{conversation}/messages/1"
    edited = alices.call("patch", path, {"body": "hello"})
    assert edited.status_code == 200
    assert edited.json()["body"] == "hello" and edited.json()["edited_at"]
    not_mine = bobs.call("patch", path, {"body": "hijacked"})
    assert not_mine.status_code == 403 and error_code(not_mine) == "forbidden"
    reacted = bobs.post(f"{path}/reactions", {"emoji": "👍"})
    assert reacted.json()["reactions"] == [{"emoji": "👍", "count": 1, "jids": [bob.jid]}]
    bad = bobs.post(f"{path}/reactions", {"emoji": "not an emoji"})
    assert bad.status_code == 422 and error_code(bad) == "invalid_argument"
    assert bobs.delete(f"{path}/reactions/👍").json()["reactions"] == []
    missing = bobs.get(f"/conversations/{conversation}/messages/9")
    assert missing.status_code == 404 and error_code(missing) == "no_such_message"
    deleted = alices.delete(path)
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is True and deleted.json()["body"] == ""
    assert bobs.get(path).json()["deleted"] is True


# --- Contacts, presence -----------------------------------------------------------------------------------


def test_contact_request_accept_and_remove(alice, bob):
    alices, bobs = api_for(alice), api_for(bob)
    asked = alices.post("/contacts", {"jid": bob.jid, "message": "it's Alice"})
    assert asked.status_code == 201
    assert asked.json()["jid"] == bob.jid and asked.json()["pending_out"] is True
    waiting = bobs.get("/contacts").json()
    [request] = waiting["requests"]
    assert (request["jid"], request["name"], request["message"]) == (alice.jid, "Alice", "it's Alice")
    assert request["requested_at"]
    accepted = bobs.post(f"/contacts/{alice.jid}/accept")
    assert accepted.status_code == 200 and accepted.json()["subscription"] == "both"
    [contact] = alices.get("/contacts").json()["contacts"]
    assert (contact["jid"], contact["subscription"], contact["pending_out"]) == (bob.jid, "both", False)
    assert contact["presence"]["show"] == "offline"
    again = alices.post("/contacts", {"jid": bob.jid})
    assert again.status_code == 409 and error_code(again) == "conflict"
    assert alices.delete(f"/contacts/{bob.jid}").status_code == 204
    assert alices.get("/contacts").json()["contacts"] == []
    gone = alices.delete(f"/contacts/{bob.jid}")
    assert gone.status_code == 409


def test_declining_blocking_and_unknown_addresses(alice, bob, carol):
    alices, bobs = api_for(alice), api_for(bob)
    alices.post("/contacts", {"jid": bob.jid})
    assert bobs.post(f"/contacts/{alice.jid}/decline").status_code == 204
    assert bobs.get("/contacts").json()["requests"] == []
    assert bobs.post(f"/contacts/{carol.jid}/block").status_code == 204
    assert bobs.get("/contacts").json()["blocked"] == [carol.jid]
    blocked = api_for(carol).post("/contacts", {"jid": bob.jid})
    missing = api_for(carol).post("/contacts", {"jid": "nobody@imweb.localhost"})
    assert blocked.status_code == missing.status_code == 404
    assert blocked.json() == {"error": {**missing.json()["error"], "message": f"There is no account {bob.jid}."}}
    assert bobs.post(f"/contacts/{carol.jid}/unblock").status_code == 204
    assert bobs.post(f"/contacts/{carol.jid}/unblock").status_code == 409
    invalid = alices.post("/contacts", {"jid": "no at sign"})
    assert invalid.status_code == 422 and error_code(invalid) == "invalid_jid"


def test_presence_and_me(alice):
    api = api_for(alice)
    put = api.call("put", "/presence", {"show": "dnd", "status": "in a meeting"})
    assert put.status_code == 200
    assert (put.json()["chosen_show"], put.json()["status_message"]) == ("dnd", "in a meeting")
    assert api.get("/me").json()["chosen_show"] == "dnd"
    wrong = api.call("put", "/presence", {"show": "sleeping"})
    assert wrong.status_code == 422 and error_code(wrong) == "invalid_request"
    too_long = api.call("put", "/presence", {"show": "away", "status": "x" * 200})
    assert too_long.status_code == 422 and error_code(too_long) == "invalid_field"


def test_unknown_api_paths_get_a_json_404(alice):
    response = api_for(alice).get("/no/such/endpoint")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


# --- OpenAPI and the docs page ----------------------------------------------------------------------------


def test_openapi_document_describes_the_endpoints_and_bearer_auth():
    document = Client().get("/api/v1/openapi.json").json()
    paths = document["paths"]
    for path in [
        "/api/v1/token",
        "/api/v1/me",
        "/api/v1/contacts",
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/messages",
        "/api/v1/presence",
    ]:
        assert path in paths, path
    assert document["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"


def test_docs_page_loads_every_asset_from_our_own_origin_without_inline_code():
    client = Client()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    sources = [re.search(r'src="([^"]+)"', attrs).group(1) for attrs, _ in scripts if "src=" in attrs]
    inline = [body for attrs, body in scripts if "src=" not in attrs and 'type="application/json"' not in attrs]
    assert inline == []  # only a JSON data block, which browsers never execute
    styles = re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', html) + re.findall(
        r'<link[^>]*href="([^"]+)"[^>]*rel="stylesheet"', html
    )
    assert " style=" not in html and "<style" not in html and " on" not in re.sub(r'"[^"]*"', "", html)
    assert len(sources) == 2 and styles
    for url in [*sources, *styles]:
        assert url.startswith("/static/"), url  # same origin, no CDN
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert b"".join(asset.streaming_content if asset.streaming else [asset.content])
