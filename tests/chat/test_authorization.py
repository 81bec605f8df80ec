"""Nobody reaches a conversation they are not in, through any door, whatever the id looks like.

Every API endpoint, every API stream frame, every web view and every frame of the web UI's socket that takes
a conversation id is tried with each shape of id below, as Alice; each must refuse as "not found" (the same
answer as for a conversation that does not exist) and change nothing.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, reverse

from accounts import actions as accounts
from accounts.tokens import issue_token
from chat import actions
from chat.models import Conversation, Message, Participant, Reaction
from chat.urls import urlpatterns as chat_urlpatterns
from imweb.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5
NOT_FOUND_TEXT = "There is no such conversation."
SHAPES = [
    "other_pair",
    "left_room",
    "removed_from_room",
    "nonexistent",
    "zero",
    "negative",
    "huge",
    "non_numeric",
    "float_like",
    "empty",
    "unicode_digits",
]


def befriend(a, b) -> None:
    accounts.request_subscription(a, b.jid)
    accounts.accept_subscription(b, a.jid)


def send(user, to, body: str = "hello"):
    return actions.send_message(user, to=to, body=body, client_id=uuid.uuid4())


@pytest.fixture
def world(make_user, settings):
    """Alice, and conversations she is not (or no longer) in, each with a message at seq 1."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # many users, fast
    settings.IMWEB_MESSAGE_RATE_LIMITS = ()
    alice, bob, carol, dave = (make_user(name) for name in ("alice", "bob", "carol", "dave"))
    befriend(alice, bob)
    befriend(bob, carol)
    other_pair = send(carol, dave.jid).conversation_id
    left = actions.create_room(alice, "Left", members=[bob.jid])
    send(bob, left.pk)
    actions.leave(alice, left.pk)
    removed = actions.create_room(bob, "Removed", members=[alice.jid, carol.jid])
    send(bob, removed.pk)
    actions.remove_member(bob, removed.pk, alice.jid)
    # Alice's own conversation exists too, so "not found" is not just "Alice has nothing".
    send(alice, bob.jid)
    ids = {
        "other_pair": str(other_pair),
        "left_room": str(left.pk),
        "removed_from_room": str(removed.pk),
        "nonexistent": str(Conversation.objects.order_by("-pk").first().pk + 1000),
        "zero": "0",
        "negative": "-1",
        "huge": str(2**63),
        "non_numeric": "abc",
        "float_like": "1.0",
        "empty": "",
        "unicode_digits": "\u0661",  # ARABIC-INDIC DIGIT ONE: a digit to str.isdigit(), not an id
    }
    return alice, ids


def snapshot() -> tuple:
    """Everything a refused request could have changed."""
    return (
        list(Message.objects.order_by("pk").values_list("pk", "body", "edited_at", "deleted_at")),
        list(Participant.objects.order_by("pk").values_list("pk", "last_read_seq", "last_delivered_seq", "left_at")),
        Reaction.objects.count(),
        list(Conversation.objects.order_by("pk").values_list("pk", "name", "topic", "last_seq")),
    )


# --- The JSON API -----------------------------------------------------------------------------------------

# (method, path with {id}, JSON body or None)
API_ENDPOINTS = [
    ("get", "/conversations/{id}/messages", None),
    ("get", "/conversations/{id}/messages?after_seq=0", None),
    ("get", "/conversations/{id}/messages?before_seq=5", None),
    ("get", "/conversations/{id}/messages/1", None),
    ("post", "/conversations/{id}/read", {"seq": 1}),
    ("post", "/conversations/{id}/delivered", {"seq": 1}),
    ("patch", "/conversations/{id}/messages/1", {"body": "changed"}),
    ("delete", "/conversations/{id}/messages/1", None),
    ("post", "/conversations/{id}/messages/1/reactions", {"emoji": "👍"}),
    ("delete", "/conversations/{id}/messages/1/reactions/👍", None),
    ("post", "/messages", {"to": "{id}", "body": "intruding", "client_id": "{uuid}"}),
]


def _api_call(client: Client, token: str, method: str, path: str, body: object, conversation_id: str):
    url = "/api/v1" + path.replace("{id}", conversation_id)
    kwargs: dict = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if body is not None:
        text = json.dumps(body).replace("{id}", conversation_id).replace("{uuid}", str(uuid.uuid4()))
        kwargs.update(data=text, content_type="application/json")
    return getattr(client, method)(url, **kwargs)


@pytest.mark.parametrize(("method", "path", "body"), API_ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in API_ENDPOINTS])
def test_every_api_endpoint_refuses_every_shape_of_foreign_conversation(world, method, path, body):
    alice, ids = world
    token = issue_token(alice)[1]
    client = Client()
    before = snapshot()
    answers = {}
    for shape in SHAPES:
        response = _api_call(client, token, method, path, body, ids[shape])
        answers[shape] = (response.status_code, response.json()["error"]["code"])
        if shape != "empty":  # an empty id matches no endpoint at all; every other id gets the same sentence
            assert response.json()["error"]["message"] == NOT_FOUND_TEXT, (shape, response.content)
    assert answers == dict.fromkeys(SHAPES, (404, "not_found"))
    assert snapshot() == before


def test_numbers_in_json_are_refused_like_their_text(world):
    alice, ids = world
    token = issue_token(alice)[1]
    client = Client()
    for shape in ["other_pair", "left_room", "removed_from_room", "nonexistent", "zero", "negative", "huge"]:
        response = client.post(
            "/api/v1/messages",
            json.dumps({"to": int(ids[shape]), "body": "intruding", "client_id": str(uuid.uuid4())}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found"), shape
    assert not Message.objects.filter(sender_jid=alice.jid, body="intruding").exists()


# --- The API stream ---------------------------------------------------------------------------------------


def _frame_values(ids: dict[str, str]) -> list[tuple[str, object]]:
    """Each shape as the text a client may send, and, where it is a number, as a JSON number too."""
    values: list[tuple[str, object]] = [(shape, ids[shape]) for shape in SHAPES]
    for shape in ["other_pair", "left_room", "removed_from_room", "nonexistent", "zero", "negative", "huge"]:
        values.append((f"{shape} (number)", int(ids[shape])))
    values.append(("float_like (number)", 1.0))
    return values


STREAM_FRAMES = {
    "sync": lambda cid: {"type": "sync", "conversations": {str(cid): 0}},
    "read": lambda cid: {"type": "read", "conversation": cid, "seq": 1},
    "delivered": lambda cid: {"type": "delivered", "conversation": cid, "seq": 1},
    "typing": lambda cid: {"type": "typing", "conversation": cid, "state": "started"},
}


@pytest.mark.parametrize("kind", list(STREAM_FRAMES))
def test_every_stream_frame_refuses_every_shape_of_foreign_conversation(world, kind):
    alice, ids = world
    token = issue_token(alice)[1]
    before = snapshot()

    async def scenario() -> dict[str, str]:
        socket = WebsocketCommunicator(
            application, "/api/v1/stream", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        assert (await socket.connect(timeout=TIMEOUT))[0]
        codes = {}
        for label, value in _frame_values(ids):
            await socket.send_json_to({**STREAM_FRAMES[kind](value), "ref": label})
            event = json.loads(await socket.receive_from(timeout=TIMEOUT))
            while event.get("ref") != label:  # the ready event, presence of her own stream
                event = json.loads(await socket.receive_from(timeout=TIMEOUT))
            codes[label] = event.get("code", event["type"])
            if event["type"] == "error":
                assert event["message"] == NOT_FOUND_TEXT, (label, event)
        await socket.disconnect()
        return codes

    async def scenario_sync() -> dict[str, str]:
        # A sync frame reports the refusal as an error event with the conversation, before its "synced".
        socket = WebsocketCommunicator(
            application, "/api/v1/stream", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        assert (await socket.connect(timeout=TIMEOUT))[0]
        codes = {}
        for label, value in _frame_values(ids):
            await socket.send_json_to({**STREAM_FRAMES[kind](value), "ref": label})
            seen = []
            while not seen or seen[-1]["type"] != "synced":
                seen.append(json.loads(await socket.receive_from(timeout=TIMEOUT)))
            codes[label] = ",".join(e.get("code", e["type"]) for e in seen if e["type"] in ("error", "message"))
        await socket.disconnect()
        return codes

    codes = asyncio.run(asyncio.wait_for(scenario_sync() if kind == "sync" else scenario(), 60))
    labels = [label for label, _ in _frame_values(ids)]
    assert codes == dict.fromkeys(labels, "not_found")
    assert snapshot() == before


def test_catching_up_on_connect_refuses_foreign_conversations(world):
    alice, ids = world
    token = issue_token(alice)[1]
    since = ",".join(f"{ids[shape]}:0" for shape in ["other_pair", "left_room", "removed_from_room", "nonexistent"])

    async def scenario() -> list[dict]:
        socket = WebsocketCommunicator(
            application, f"/api/v1/stream?since={since}", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        assert (await socket.connect(timeout=TIMEOUT))[0]
        await socket.send_json_to({"type": "ping"})
        events = []
        while not events or events[-1]["type"] != "pong":
            events.append(json.loads(await socket.receive_from(timeout=TIMEOUT)))
        await socket.disconnect()
        return events

    events = asyncio.run(asyncio.wait_for(scenario(), 60))
    ready = events[0]
    assert ready["type"] == "ready" and set(ready["conversations"]) == {
        str(c)
        for c in Participant.objects.filter(user=alice, left_at__isnull=True).values_list("conversation", flat=True)
    }
    errors = [e for e in events if e["type"] == "error"]
    assert [(e["code"], e["message"]) for e in errors] == [("not_found", NOT_FOUND_TEXT)] * 4
    # Her own conversation was not asked for, so only the foreign ones could have produced messages: none did.
    assert [e for e in events if e["type"] == "message"] == []


# --- The web UI -------------------------------------------------------------------------------------------

# Views that show something answer GET; the rest change something and answer POST only.
READING_VIEWS = {"conversation", "conversation_messages", "conversation_around"}
CONVERSATION_VIEWS = [
    p.name for p in chat_urlpatterns if isinstance(p, URLPattern) and "conversation_id" in str(p.pattern)
]


def _view_url(name: str, conversation_id: str) -> str:
    kwargs = {"conversation_id": 1}
    if "<int:seq>" in str(next(p for p in chat_urlpatterns if p.name == name).pattern):
        kwargs["seq"] = 1
    return reverse(name, kwargs=kwargs).replace("/c/1/", f"/c/{conversation_id}/", 1)


@pytest.mark.parametrize("name", CONVERSATION_VIEWS)
def test_every_web_view_refuses_every_shape_of_foreign_conversation(world, name):
    alice, ids = world
    client = Client()
    client.force_login(alice)
    before = snapshot()
    statuses = {}
    for shape in SHAPES:
        url = _view_url(name, ids[shape])
        data = {"body": "changed", "emoji": "👍", "jid": "bob@imweb.localhost", "name": "x", "topic": "x"}
        response = client.get(url) if name in READING_VIEWS else client.post(url, data, HTTP_HX_REQUEST="true")
        statuses[shape] = response.status_code
    assert statuses == dict.fromkeys(SHAPES, 404)
    assert snapshot() == before


def test_the_authorization_tables_cover_every_conversation_view():
    assert len(CONVERSATION_VIEWS) >= 3
    assert READING_VIEWS <= set(CONVERSATION_VIEWS)


SOCKET_FRAMES = {
    "message.send": lambda cid: {
        "type": "message.send",
        "conversation": cid,
        "body": "intruding",
        "client_id": str(uuid.uuid4()),
    },
    "conversation.open": lambda cid: {"type": "conversation.open", "conversation": cid},
    "typing.started": lambda cid: {"type": "typing.started", "conversation": cid},
    "typing.paused": lambda cid: {"type": "typing.paused", "conversation": cid},
    "mark.read": lambda cid: {"type": "mark.read", "conversation": cid, "seq": 1},
    "mark.delivered": lambda cid: {"type": "mark.delivered", "conversation": cid, "seq": 1},
}


@pytest.mark.parametrize("kind", list(SOCKET_FRAMES))
def test_every_web_socket_frame_refuses_every_shape_of_foreign_conversation(world, kind):
    alice, ids = world
    client = Client()
    client.force_login(alice)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()
    before = snapshot()

    async def scenario() -> dict[str, bool]:
        socket = WebsocketCommunicator(
            application,
            "/ws/",
            headers=[(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)],
        )
        assert (await socket.connect(timeout=TIMEOUT))[0]
        refused = {}
        for label, value in _frame_values(ids):
            if kind == "message.send" and value == "":
                continue  # an empty conversation means "to an address" in this frame: covered by its own tests
            await socket.send_json_to(SOCKET_FRAMES[kind](value))
            # A send whose conversation is not even an id-like value (a JSON float) is refused as unaddressed.
            expected = (
                "Say which conversation" if kind == "message.send" and isinstance(value, float) else NOT_FOUND_TEXT
            )

            async def until_refused(expected: str = expected) -> bool:
                while True:
                    if expected in await socket.receive_from(timeout=TIMEOUT):
                        return True

            try:
                refused[label] = await asyncio.wait_for(until_refused(), TIMEOUT)
            except TimeoutError:
                refused[label] = False
        await socket.disconnect()
        return refused

    refused = asyncio.run(asyncio.wait_for(scenario(), 90))
    expected = [label for label, value in _frame_values(ids) if not (kind == "message.send" and value == "")]
    assert refused == dict.fromkeys(expected, True)
    assert snapshot() == before


def test_the_stream_and_socket_still_serve_alices_own_conversation(world):
    """The refusals above are about the id, not a broken door: her own conversation works through both."""
    alice, _ = world
    own = Participant.objects.get(user=alice, left_at__isnull=True, conversation__kind="direct").conversation_id
    token = issue_token(alice)[1]

    async def scenario() -> dict:
        socket = WebsocketCommunicator(
            application, "/api/v1/stream", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        assert (await socket.connect(timeout=TIMEOUT))[0]
        await socket.send_json_to({"type": "sync", "conversations": {str(own): 0}})
        while True:
            event = json.loads(await socket.receive_from(timeout=TIMEOUT))
            if event["type"] == "message":
                await socket.disconnect()
                return event

    event = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert (event["conversation"], event["seq"]) == (own, 1)
