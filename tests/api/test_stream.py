"""The API event stream (/api/v1/stream) through the real ASGI application and a real Valkey channel layer:
token authentication, message events with exact catch-up by seq, receipts, presence, contacts, bad frames."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from accounts import actions as accounts
from accounts import events
from accounts.tokens import issue_token, revoke_token
from chat import actions
from chat.actions.typing import set_typing
from federation import outbox
from federation.models import OutboxItem
from imweb.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5


def run(scenario) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


def stream(token: str | None = None, *, query: str = "", headers: list | None = None) -> WebsocketCommunicator:
    sent = list(headers or [])
    if token is not None:
        sent.append((b"authorization", f"Bearer {token}".encode()))
    return WebsocketCommunicator(application, "/api/v1/stream" + (f"?{query}" if query else ""), headers=sent)


async def receive(socket: WebsocketCommunicator) -> dict:
    return json.loads(await socket.receive_from(timeout=TIMEOUT))


async def receive_type(socket: WebsocketCommunicator, kind: str) -> dict:
    """Events until one of type `kind` (others, such as the user's own presence, may come first)."""

    async def read() -> dict:
        while True:
            event = await receive(socket)
            if event["type"] == kind:
                return event

    return await asyncio.wait_for(read(), TIMEOUT)


async def open_stream(token: str, query: str = "") -> tuple[WebsocketCommunicator, dict]:
    socket = stream(token, query=query)
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected
    ready = await receive(socket)
    assert ready["type"] == "ready"
    return socket, ready


async def messages_until_pong(socket: WebsocketCommunicator) -> list[tuple[int, int, str]]:
    """Every message event until the answer to a ping: what the stream sent, nothing more, in order."""
    await socket.send_json_to({"type": "ping", "ref": "end"})
    seen = []
    while True:
        event = await receive(socket)
        if event["type"] == "pong":
            assert event["ref"] == "end"
            return seen
        if event["type"] == "message":
            seen.append((event["conversation"], event["seq"], event["message"]["body"]))


def send(user, to, body: str):
    return actions.send_message(user, to=to, body=body, client_id=uuid.uuid4())


asend = database_sync_to_async(send)


@pytest.fixture
def friends(alice, bob):
    accounts.request_subscription(alice, bob.jid)
    accounts.accept_subscription(bob, alice.jid)
    return alice, bob


@pytest.fixture
def token(alice) -> str:
    return issue_token(alice, "stream test")[1]


# --- Authentication ---------------------------------------------------------------------------------------


def test_without_a_valid_token_the_stream_says_why_and_closes():
    async def scenario():
        for socket in [stream(), stream("imweb_wrong"), stream(query="token=imweb_wrong")]:
            connected, _ = await socket.connect(timeout=TIMEOUT)
            assert connected
            event = await receive(socket)
            assert (event["type"], event["code"]) == ("error", "unauthenticated")
            assert (await socket.receive_output(timeout=TIMEOUT))["code"] == 4401

    run(scenario)


def test_a_browser_session_with_a_good_origin_is_not_enough(alice):
    client = Client()
    client.force_login(alice)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()

    async def scenario():
        socket = stream(headers=[(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)])
        await socket.connect(timeout=TIMEOUT)
        assert (await receive(socket))["code"] == "unauthenticated"
        assert (await socket.receive_output(timeout=TIMEOUT))["code"] == 4401

    run(scenario)


def test_the_token_may_come_in_the_query_string_and_no_origin_is_needed(alice, token):
    async def scenario():
        socket = stream(query=f"token={token}")
        connected, _ = await socket.connect(timeout=TIMEOUT)
        assert connected
        ready = await receive(socket)
        assert ready == {"type": "ready", "jid": alice.jid, "conversations": {}}
        await socket.disconnect()

    run(scenario)


def test_a_revoked_token_ends_its_open_stream(alice, token, settings):
    settings.IMWEB_PRESENCE_HEARTBEAT_SECONDS = 0.2  # the stream re-checks its token on this beat
    row = alice.api_tokens.get()

    async def scenario():
        socket, _ = await open_stream(token)
        await database_sync_to_async(revoke_token)(alice, row.pk)
        event = await receive_type(socket, "error")
        assert event["code"] == "unauthenticated"
        assert (await socket.receive_output(timeout=TIMEOUT))["code"] == 4401

    run(scenario)


# --- Messages and the delivery contract -------------------------------------------------------------------


def test_a_new_message_arrives_with_its_conversation_and_seq(friends, token):
    alice, bob = friends

    async def scenario():
        socket, _ = await open_stream(token)
        stored = await asend(bob, alice.jid, "hi alice")
        event = await receive_type(socket, "message")
        assert (event["conversation"], event["seq"]) == (stored.conversation_id, 1)
        message = event["message"]
        assert (message["sender"], message["body"], message["client_id"]) == (bob.jid, "hi alice", None)
        assert message["conversation"] == stored.conversation_id and message["seq"] == 1
        await socket.disconnect()

    run(scenario)


async def next_messages(socket: WebsocketCommunicator, count: int) -> list[tuple[int, str]]:
    return [(e["seq"], e["message"]["body"]) for e in [await receive_type(socket, "message") for _ in range(count)]]


def test_a_dropped_wake_up_is_repaired_by_the_next_and_nothing_is_duplicated(friends, token, monkeypatch):
    alice, bob = friends
    conversation = send(bob, alice.jid, "one").conversation_id
    real_send = events._send

    async def dropped(batch) -> None:
        return None

    async def scenario():
        socket, ready = await open_stream(token)
        assert ready["conversations"] == {str(conversation): 1}
        # The realtime layer loses the wake-ups of two messages...
        monkeypatch.setattr(events, "_send", dropped)
        await asend(bob, conversation, "two")
        await asend(bob, conversation, "three")
        assert await messages_until_pong(socket) == []
        # ...the next wake-up brings all three, once each, in order.
        monkeypatch.setattr(events, "_send", real_send)
        await asend(bob, conversation, "four")
        assert await next_messages(socket, 3) == [(2, "two"), (3, "three"), (4, "four")]
        # A repeated wake-up sends nothing again.
        wake = {"type": "message.new", "conversation": conversation, "seq": 4}
        await get_channel_layer().group_send(events.user_group(alice.pk), wake)
        assert await messages_until_pong(socket) == []
        await socket.disconnect()

    run(scenario)


def test_since_and_sync_catch_up_exactly_what_the_client_lacks(friends, token, settings):
    settings.IMWEB_MESSAGE_RATE_LIMITS = ()
    alice, bob = friends
    conversation = send(bob, alice.jid, "m1").conversation_id
    for n in range(2, 6):
        send(bob, conversation, f"m{n}")

    async def scenario():
        socket, ready = await open_stream(token, query=f"since={conversation}:2")
        assert ready["conversations"] == {str(conversation): 2}
        assert await next_messages(socket, 3) == [(3, "m3"), (4, "m4"), (5, "m5")]
        assert await messages_until_pong(socket) == []
        # A client that lost its state asks again from seq 3; a conversation it is not in gets an error.
        await socket.send_json_to({"type": "sync", "conversations": {str(conversation): 3, "999999": 0}, "ref": 7})
        events_seen = []
        while not events_seen or events_seen[-1]["type"] != "synced":
            events_seen.append(await receive(socket))
        assert [(e["type"], e.get("seq"), e.get("code")) for e in events_seen] == [
            ("message", 4, None),
            ("message", 5, None),
            ("error", None, "not_found"),
            ("synced", None, None),
        ]
        assert events_seen[2]["conversation"] == "999999" and events_seen[-1]["ref"] == 7
        await asend(bob, conversation, "m6")
        assert await next_messages(socket, 1) == [(6, "m6")]
        await socket.disconnect()

    run(scenario)


def test_a_first_message_in_a_new_conversation_arrives(alice, bob, token):
    """Not a contact: the conversation waits in Alice's Requests, and a bot still gets the message."""

    async def scenario():
        socket, ready = await open_stream(token)
        assert ready["conversations"] == {}
        await asend(bob, alice.jid, "hello stranger")
        assert await next_messages(socket, 1) == [(1, "hello stranger")]
        await socket.disconnect()

    run(scenario)


def test_edits_receipts_and_own_messages(friends, token):
    alice, bob = friends
    conversation = send(alice, bob.jid, "helo").conversation_id

    async def scenario():
        socket, _ = await open_stream(token)
        await database_sync_to_async(actions.edit_message)(alice, conversation, 1, "hello")
        edited = await receive_type(socket, "message_updated")
        assert (edited["change"], edited["seq"], edited["message"]["body"]) == ("edited", 1, "hello")
        assert edited["message"]["client_id"]  # her own message: she sees the id her client chose
        await database_sync_to_async(actions.mark_read)(bob, conversation, 1)
        receipt = await receive_type(socket, "receipt")
        assert receipt == {"type": "receipt", "kind": "read", "conversation": conversation, "seq": 1, "jid": bob.jid}
        await socket.disconnect()

    run(scenario)


def test_read_and_delivered_frames_move_markers(friends, token):
    alice, bob = friends
    conversation = send(bob, alice.jid, "hi").conversation_id

    async def scenario():
        socket, _ = await open_stream(token)
        await socket.send_json_to({"type": "read", "conversation": conversation, "seq": 1, "ref": "r"})
        answer = await receive_type(socket, "read_marker")
        assert answer == {"type": "read_marker", "conversation": conversation, "seq": 1, "ref": "r"}
        await socket.disconnect()

    run(scenario)
    assert actions.conversations_for(alice)[0].unread == 0


def test_typing_goes_both_ways(friends, token):
    alice, bob = friends
    conversation = send(alice, bob.jid, "hi").conversation_id
    bob_token = issue_token(bob)[1]

    async def scenario():
        alices, _ = await open_stream(token)
        bobs, _ = await open_stream(bob_token)
        await database_sync_to_async(set_typing)(bob, conversation, True)
        typing = await receive_type(alices, "typing")
        assert typing == {
            "type": "typing",
            "conversation": conversation,
            "jid": bob.jid,
            "name": "Bob",
            "state": "started",
        }
        await alices.send_json_to({"type": "typing", "conversation": conversation, "state": "paused"})
        paused = await receive_type(bobs, "typing")
        assert (paused["jid"], paused["state"]) == (alice.jid, "paused")
        await alices.disconnect()
        await bobs.disconnect()

    run(scenario)


# --- Contacts and presence --------------------------------------------------------------------------------


def test_presence_and_contact_list_changes(friends, token, make_user):
    alice, bob = friends
    carol = make_user("carol")

    async def scenario():
        socket, _ = await open_stream(token)
        await database_sync_to_async(accounts.open_session)(bob, "bob-tab")
        await database_sync_to_async(accounts.set_presence)(bob, show="dnd", status="busy")

        async def bob_shows(show: str) -> dict:
            while True:
                event = await receive_type(socket, "presence")
                if event["jid"] == bob.jid and event["show"] == show:
                    return event

        assert (await asyncio.wait_for(bob_shows("dnd"), TIMEOUT))["status"] == "busy"
        await database_sync_to_async(accounts.request_subscription)(carol, alice.jid)
        assert await receive_type(socket, "contacts") == {"type": "contacts"}
        await socket.disconnect()

    run(scenario)


def test_an_open_stream_counts_as_online(friends, token):
    alice, bob = friends

    async def scenario():
        socket, _ = await open_stream(token)
        seen = await database_sync_to_async(accounts.presence_for_viewer)(bob, alice)
        assert seen.show == "available"
        await socket.disconnect()
        gone = await database_sync_to_async(accounts.presence_for_viewer)(bob, alice)
        assert gone.show == "offline"

    run(scenario)


# --- Bad frames -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_frame"),
        ("[1, 2]", "invalid_frame"),
        ('{"no": "type"}', "invalid_frame"),
        ('{"type": "launch"}', "unknown_type"),
        ('{"type": "sync"}', "invalid_argument"),
        ('{"type": "sync", "conversations": []}', "invalid_argument"),
        ('{"type": "read", "conversation": 1, "seq": 1}', "not_found"),
        ('{"type": "read", "conversation": 1}', "invalid_argument"),
        ('{"type": "ping", "ref": {"x": 1}}', "invalid_frame"),
        (json.dumps({"type": "ping", "pad": "x" * 20_000}), "frame_too_large"),
    ],
)
def test_bad_frames_get_an_error_event_and_the_stream_stays_usable(alice, token, frame, code):
    async def scenario():
        socket, _ = await open_stream(token)
        await socket.send_to(text_data=frame)
        assert (await receive_type(socket, "error"))["code"] == code
        await socket.send_json_to({"type": "ping"})
        assert await receive_type(socket, "pong") == {"type": "pong"}
        await socket.disconnect()

    run(scenario)


def test_a_remote_hop_change_reaches_the_sender_s_stream(alice, token):
    message = send(alice, "dave@prosody.localhost", "hello there")
    pk = message.conversation_id
    item = OutboxItem.objects.get(message=message)

    async def scenario():
        socket, ready = await open_stream(token)
        assert ready["conversations"] == {str(pk): 1}
        failed = database_sync_to_async(outbox.mark_failed)
        assert await failed("dave@prosody.localhost", item.stanza_id, "no such user") == 1
        status = await receive_type(socket, "status")
        assert (status["conversation"], status["seq"]) == (pk, 1)
        assert [(h["recipient"], h["state"], h["text"]) for h in status["hops"]] == [
            ("dave@prosody.localhost", "failed", "failed: no such user")
        ]
        await socket.send_json_to({"type": "ping", "ref": "still"})  # the stream is still serving
        assert (await receive_type(socket, "pong"))["ref"] == "still"
        await socket.disconnect()

    run(scenario)
