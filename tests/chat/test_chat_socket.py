"""Chatting over the user's WebSocket: sends stored once, pushes by seq to every tab with nothing lost or
doubled (even when wake-ups are dropped), typing, read markers, and precise errors for refused frames."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from accounts import actions as accounts
from chat import actions
from chat.models import Message
from federation import outbox
from federation.models import OutboxItem
from tests.chat.test_socket import RECEIVE_TIMEOUT, open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def carol(make_user):
    return make_user("carol", display_name="Carol")


@pytest.fixture
def direct(alice, bob) -> int:
    """Alice and Bob are contacts; Alice wrote the first message (seq 1). Returns the conversation id."""
    accounts.request_subscription(alice, bob.jid)
    accounts.accept_subscription(bob, alice.jid)
    return actions.send_message(alice, to=bob.jid, body="first", client_id=uuid.uuid4()).conversation_id


def run(scenario) -> None:
    asyncio.run(scenario())


def seqs(frame: str, conversation_id: int) -> list[int]:
    return [int(s) for s in re.findall(rf'<article id="msg-{conversation_id}-(\d+)"', frame)]


async def frames_until(socket: WebsocketCommunicator, text: str) -> list[str]:
    """Every frame up to and including the first that contains `text`; fails after RECEIVE_TIMEOUT seconds."""
    seen: list[str] = []

    async def read() -> list[str]:
        while True:
            frame = await socket.receive_from(timeout=RECEIVE_TIMEOUT)
            seen.append(frame)
            if text in frame:
                return seen

    return await asyncio.wait_for(read(), RECEIVE_TIMEOUT)


async def open_conversation(cookie: bytes, conversation_id: int, after: int) -> WebsocketCommunicator:
    socket = await open_socket(cookie)
    await socket.send_to(
        text_data=json.dumps({"type": "conversation.open", "conversation": conversation_id, "after": after})
    )
    return socket


async def settle(socket: WebsocketCommunicator) -> list[str]:
    """Ask for a re-sync and return every frame before its answer: whatever was already on its way."""
    await socket.send_to(text_data=json.dumps({"type": "sync"}))
    frames = await frames_until(socket, 'id="roster"')
    return frames


def send_frame(conversation_id: int, body: str, client_id: str, **extra: object) -> str:
    return json.dumps(
        {"type": "message.send", "conversation": conversation_id, "body": body, "client_id": client_id, **extra}
    )


def test_a_retried_send_is_stored_once_and_pushed_once(alice, bob, direct):
    cookie = session_cookie(alice)
    client_id = str(uuid.uuid4())

    async def scenario():
        socket = await open_conversation(cookie, direct, 1)
        await socket.send_to(text_data=send_frame(direct, "hello Bob", client_id))
        frames = await frames_until(socket, f'id="msg-{direct}-2"')
        assert f'data-client-id="{client_id}"' in frames[-1] and "hello Bob" in frames[-1]

        await socket.send_to(text_data=send_frame(direct, "hello Bob", client_id))  # the answer was "lost"
        later = await settle(socket)
        assert not any(f'id="msg-{direct}-2"' in frame for frame in later)
        await socket.disconnect()

    run(scenario)
    assert Message.objects.filter(conversation_id=direct).count() == 2


def test_every_tab_of_the_recipient_gets_the_message(alice, bob, direct):
    cookie = session_cookie(bob)

    async def scenario():
        first = await open_conversation(cookie, direct, 1)
        second = await open_conversation(cookie, direct, 1)
        await settle(first)
        await settle(second)
        await database_sync_to_async(actions.send_message)(
            alice, to=direct, body="to both tabs", client_id=uuid.uuid4()
        )
        for socket in (first, second):
            frames = await frames_until(socket, f'id="msg-{direct}-2"')
            assert "to both tabs" in frames[-1]
            await socket.disconnect()

    run(scenario)


def test_the_conversation_list_follows_every_message_with_unread_counts(alice, bob, carol, direct):
    actions.send_message(carol, to=bob.jid, body="hi from carol", client_id=uuid.uuid4())  # now on top
    cookie = session_cookie(bob)

    async def scenario():
        socket = await open_socket(cookie)  # on the home page: no conversation open
        await database_sync_to_async(actions.send_message)(alice, to=direct, body="ping", client_id=uuid.uuid4())
        # Only the conversation's row moves, with its unread count: the page puts it on top (data-bump).
        frames = await frames_until(socket, f'id="unread-{direct}"')
        row = frames[-1]
        assert f'<li id="convrow-{direct}"' in row and 'data-bump="1"' in row and "ping" in row
        assert f'id="unread-{direct}" class="convrow__unread badge" data-unread="2"' in row
        assert 'id="conversations"' not in row and "hi from carol" not in row
        await database_sync_to_async(actions.send_message)(alice, to=direct, body="pong", client_id=uuid.uuid4())
        frames = await frames_until(socket, 'data-unread="3"')
        assert "pong" in frames[-1] and "ping" not in frames[-1]
        await socket.disconnect()

    run(scenario)


def test_a_dropped_group_wake_up_is_repaired_by_the_next_one_exactly(monkeypatch, alice, bob, carol):
    for friend in (bob, carol):
        accounts.request_subscription(alice, friend.jid)
        accounts.accept_subscription(friend, alice.jid)
    room = actions.create_room(alice, "Crew", members=[bob.jid, carol.jid])
    cookie = session_cookie(bob)

    async def quiet(batch):  # the pub/sub layer loses these pushes
        return None

    async def scenario():
        socket = await open_conversation(cookie, room.pk, 0)
        await settle(socket)
        from accounts import events

        real = events._send
        monkeypatch.setattr(events, "_send", quiet)
        for n in range(3):
            await database_sync_to_async(actions.send_message)(
                carol, to=room.pk, body=f"lost {n}", client_id=uuid.uuid4()
            )
        monkeypatch.setattr(events, "_send", real)
        assert not any(seqs(frame, room.pk) for frame in await settle(socket))

        await database_sync_to_async(actions.send_message)(alice, to=room.pk, body="wake", client_id=uuid.uuid4())
        # (seq 1 is the room's "created" line, already on screen: the lost ones are 2 to 4.)
        frames = await frames_until(socket, f'id="msg-{room.pk}-5"')
        pushed = [seq for frame in frames for seq in seqs(frame, room.pk)]
        assert pushed == [2, 3, 4, 5]
        await database_sync_to_async(actions.send_message)(carol, to=room.pk, body="next", client_id=uuid.uuid4())
        frames = await frames_until(socket, f'id="msg-{room.pk}-6"')
        assert [seq for frame in frames for seq in seqs(frame, room.pk)] == [6]
        await socket.disconnect()

        # A reconnecting tab says what it has and gets exactly the rest.
        again = await open_conversation(cookie, room.pk, 4)
        frames = await frames_until(again, f'id="msg-{room.pk}-6"')
        assert [seq for frame in frames for seq in seqs(frame, room.pk)] == [5, 6]
        await again.disconnect()

    run(scenario)


def test_typing_reaches_the_other_side_and_stops_with_the_message(alice, bob, direct):
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}

    async def scenario():
        alice_socket = await open_conversation(cookies["alice"], direct, 1)
        bob_socket = await open_conversation(cookies["bob"], direct, 1)
        await settle(bob_socket)
        await alice_socket.send_to(text_data=json.dumps({"type": "typing.started", "conversation": direct}))
        frames = await frames_until(bob_socket, "is typing")
        assert f'id="typing-{direct}"' in frames[-1] and "Alice is typing…" in frames[-1]

        await alice_socket.send_to(text_data=send_frame(direct, "done typing", str(uuid.uuid4())))
        frames = await frames_until(bob_socket, f'id="typing-{direct}"')
        assert "is typing" not in frames[-1]
        assert any("done typing" in frame for frame in frames)
        await alice_socket.disconnect()
        await bob_socket.disconnect()

    run(scenario)


def test_typing_is_not_sent_when_the_typist_turned_it_off(alice, bob, direct):
    alice.send_typing = False
    alice.save()
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}

    async def scenario():
        alice_socket = await open_conversation(cookies["alice"], direct, 1)
        bob_socket = await open_conversation(cookies["bob"], direct, 1)
        await settle(bob_socket)
        await alice_socket.send_to(text_data=json.dumps({"type": "typing.started", "conversation": direct}))
        await alice_socket.send_to(text_data=send_frame(direct, "quietly", str(uuid.uuid4())))
        frames = await frames_until(bob_socket, "quietly")
        assert not any("typing" in frame for frame in frames)
        await alice_socket.disconnect()
        await bob_socket.disconnect()

    run(scenario)


@pytest.mark.parametrize("markers", [True, False], ids=["read-markers-on", "read-markers-off"])
def test_the_sender_sees_read_only_when_the_reader_sends_read_markers(alice, bob, direct, markers):
    bob.send_read_markers = markers
    bob.save()
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}

    async def scenario():
        alice_socket = await open_conversation(cookies["alice"], direct, 0)
        bob_socket = await open_conversation(cookies["bob"], direct, 1)
        frames = await frames_until(alice_socket, f'id="msg-{direct}-1"')
        assert ">Sent<" in frames[-1]
        await bob_socket.send_to(text_data=json.dumps({"type": "mark.read", "conversation": direct, "seq": 1}))
        await bob_socket.send_to(text_data=send_frame(direct, "after reading", str(uuid.uuid4())))
        frames = await frames_until(alice_socket, "after reading")
        statuses = [frame for frame in frames if f'id="status-{direct}-1"' in frame]
        if markers:
            assert statuses and ">Read<" in statuses[0]
        else:  # reading still says the message arrived, never that it was read
            assert statuses and ">Delivered<" in statuses[0] and ">Read<" not in "".join(frames)
        await alice_socket.disconnect()
        await bob_socket.disconnect()

    run(scenario)
    # After a reload too.
    page = Client()
    page.force_login(alice)
    html = page.get(reverse("conversation", args=[direct])).content.decode()
    status = html.split(f'id="status-{direct}-1"')[1].split("</span>")[0]
    assert ("Read" in status) is markers and ("Delivered" in status) is not markers


def test_delivery_markers_show_as_delivered(alice, bob, direct):
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}

    async def scenario():
        alice_socket = await open_conversation(cookies["alice"], direct, 1)
        bob_socket = await open_socket(cookies["bob"])
        await settle(alice_socket)
        await bob_socket.send_to(text_data=json.dumps({"type": "mark.delivered", "conversation": direct, "seq": 1}))
        frames = await frames_until(alice_socket, f'id="status-{direct}-1"')
        assert ">Delivered<" in frames[-1]
        await alice_socket.disconnect()
        await bob_socket.disconnect()

    run(scenario)


def test_a_status_that_moved_while_the_page_loaded_is_sent_when_the_tab_opens_the_conversation(alice, bob, direct):
    # Alice's page showed "first" as Sent; Bob's device got it before her new page's socket was listening (the
    # receipt went to no socket of hers). Opening the conversation brings the status as it is now.
    actions.mark_delivered(bob, direct, 1)
    cookie = session_cookie(alice)

    async def scenario():
        socket = await open_conversation(cookie, direct, 1)
        frames = await frames_until(socket, f'id="status-{direct}-1"')
        assert ">Delivered<" in frames[-1]
        await socket.disconnect()

    run(scenario)


def test_a_too_long_message_gets_a_precise_error_and_the_socket_keeps_serving(alice, bob, direct):
    cookie = session_cookie(alice)
    client_id = str(uuid.uuid4())

    async def scenario():
        socket = await open_conversation(cookie, direct, 1)
        await socket.send_to(text_data=send_frame(direct, "é" * 10_001, client_id))  # 20 KB of UTF-8: under the cap
        frames = await frames_until(socket, "composer-error")
        error = frames[-1]
        assert "This message is 10,001 characters long; the limit is 10,000 characters." in error
        assert f'data-client-id="{client_id}"' in error and 'role="alert"' in error

        await socket.send_to(text_data=send_frame(direct, "x" * 10_000, str(uuid.uuid4())))
        await frames_until(socket, f'id="msg-{direct}-2"')
        await socket.disconnect()

    run(scenario)
    assert Message.objects.filter(conversation_id=direct).count() == 2


def test_a_frame_over_the_cap_is_refused_and_the_socket_keeps_serving(alice, bob, direct):
    cookie = session_cookie(alice)

    async def scenario():
        socket = await open_conversation(cookie, direct, 1)
        await socket.send_to(text_data=send_frame(direct, "😀" * 17_000, str(uuid.uuid4())))  # 68 KB
        frames = await frames_until(socket, "too large")
        assert "That was too large (over 64 KB)." in frames[-1]
        await socket.send_to(text_data=send_frame(direct, "still here", str(uuid.uuid4())))
        await frames_until(socket, "still here")
        await socket.disconnect()

    run(scenario)


def test_sending_too_fast_says_slow_down_and_stores_nothing_more(settings, alice, bob, direct):
    settings.IMWEB_MESSAGE_RATE_LIMITS = ((1, 60),)
    cookie = session_cookie(alice)

    async def scenario():
        socket = await open_conversation(cookie, direct, 1)
        await socket.send_to(text_data=send_frame(direct, "one", str(uuid.uuid4())))
        await socket.send_to(text_data=send_frame(direct, "two", str(uuid.uuid4())))
        frames = await frames_until(socket, "composer-error")
        assert "You are sending messages too fast. Try again in" in frames[-1]
        await socket.disconnect()

    run(scenario)
    assert [m.body for m in Message.objects.filter(conversation_id=direct, seq__gt=1)] == []  # "first" used the slot


def test_messages_held_for_sending_too_fast_are_stored_in_the_order_written(monkeypatch, settings, alice, bob, direct):
    # One per minute: "a" fits, "b" is refused; then the window gets room (the clock moves on) while "c", written
    # after "b", is on its way. "c" must not be stored before "b": it waits too.
    settings.IMWEB_MESSAGE_RATE_LIMITS = ((1, 60),)
    now = [1_800_000_000.0]
    monkeypatch.setattr("imweb.ratelimit.clock", lambda: now[0])
    cookie = session_cookie(alice)
    ids = {body: str(uuid.uuid4()) for body in "abc"}

    async def scenario():
        socket = await open_conversation(cookie, direct, 1)
        await socket.send_to(text_data=send_frame(direct, "a", ids["a"]))
        await frames_until(socket, ">a<")
        await socket.send_to(text_data=send_frame(direct, "b", ids["b"]))
        refused = (await frames_until(socket, "composer-error"))[-1]
        retry_after = int(re.search(r'data-retry-after="(\d+)"', refused).group(1))
        now[0] += 61  # a new window, with room
        await socket.send_to(text_data=send_frame(direct, "c", ids["c"]))
        held = (await frames_until(socket, "composer-error"))[-1]
        assert ids["c"] in held and "You are sending messages too fast. Try again in" in held
        now[0] += retry_after  # the tab waited as long as it was told, then sends both again, in order
        settings.IMWEB_MESSAGE_RATE_LIMITS = ((5, 60),)
        for body in "bc":
            await socket.send_to(text_data=send_frame(direct, body, ids[body]))
            await frames_until(socket, f">{body}<")
        await socket.disconnect()

    run(scenario)
    assert [m.body for m in Message.objects.filter(conversation_id=direct).order_by("seq")] == ["first", "a", "b", "c"]


@pytest.mark.parametrize("conversation", [999_999, 0, -1, "abc", None, True, "1 OR 1=1"])
def test_frames_about_a_conversation_the_user_is_not_in_are_refused_alike(carol, direct, conversation):
    cookie = session_cookie(carol)

    async def scenario():
        socket = await open_socket(cookie)
        target = direct if conversation == 999_999 else conversation
        for frame in (
            {"type": "conversation.open", "conversation": target, "after": 0},
            {"type": "typing.started", "conversation": target},
            {"type": "mark.read", "conversation": target, "seq": 1},
        ):
            await socket.send_to(text_data=json.dumps(frame))
            frames = await frames_until(socket, "There is no such conversation.")
            assert "first" not in "".join(frames)
        await socket.send_to(text_data=send_frame(target, "intrude", str(uuid.uuid4())))
        frames = await frames_until(socket, "composer-error")
        assert "There is no such conversation." in frames[-1] or "Say which conversation" in frames[-1]
        await socket.disconnect()

    run(scenario)
    assert not Message.objects.filter(body="intrude").exists()


def test_a_first_message_to_an_address_opens_the_new_conversation(alice, carol):
    cookie = session_cookie(alice)

    async def scenario():
        socket = await open_socket(cookie)
        frame = {"type": "message.send", "to": carol.jid, "body": "hi Carol", "client_id": str(uuid.uuid4())}
        await socket.send_to(text_data=json.dumps(frame))
        frames = await frames_until(socket, "chat-opened")
        conversation = await database_sync_to_async(lambda: Message.objects.get(body="hi Carol").conversation_id)()
        assert f'href="/c/{conversation}/"' in frames[-1]
        await socket.disconnect()

    run(scenario)


def test_a_message_sent_from_a_tab_not_following_the_conversation_brings_it_to_the_newest_page(alice, bob, direct):
    cookie = session_cookie(alice)

    async def scenario():
        socket = await open_socket(cookie)  # e.g. a page scrolled back to a search hit: no conversation.open
        await socket.send_to(text_data=send_frame(direct, "from an old page", str(uuid.uuid4())))
        frames = await frames_until(socket, "chat-opened")
        assert f'href="/c/{direct}/"' in frames[-1]
        await socket.disconnect()

    run(scenario)


def test_room_changes_reach_the_open_room_s_header(alice, bob, carol):
    for friend in (bob, carol):
        accounts.request_subscription(alice, friend.jid)
        accounts.accept_subscription(friend, alice.jid)
    room = actions.create_room(alice, "Crew", members=[bob.jid])
    cookie = session_cookie(bob)

    async def scenario():
        socket = await open_conversation(cookie, room.pk, 0)
        await settle(socket)
        await database_sync_to_async(actions.rename_room)(alice, room.pk, "Crew & friends")
        frames = await frames_until(socket, f'id="pane-head-{room.pk}"')
        assert "Crew &amp; friends" in frames[-1] and 'hx-swap-oob="true"' in frames[-1]
        await database_sync_to_async(actions.invite)(alice, room.pk, carol.jid)
        frames = await frames_until(socket, "3 members")
        assert "Carol" in frames[-1]
        await socket.disconnect()

    run(scenario)


def test_a_flood_of_typing_frames_is_fanned_out_once(alice, bob, direct):
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}

    async def scenario():
        alice_socket = await open_conversation(cookies["alice"], direct, 1)
        bob_socket = await open_conversation(cookies["bob"], direct, 1)
        await settle(bob_socket)
        for _ in range(30):
            await alice_socket.send_to(text_data=json.dumps({"type": "typing.started", "conversation": direct}))
        await alice_socket.send_to(text_data=send_frame(direct, "after the flood", str(uuid.uuid4())))
        frames = await frames_until(bob_socket, "after the flood")
        assert sum("Alice is typing" in frame for frame in frames) == 1
        await alice_socket.disconnect()
        await bob_socket.disconnect()

    run(scenario)


def test_a_remote_copy_that_fails_shows_on_the_sender_s_open_conversation(alice):
    message = actions.send_message(alice, to="dave@prosody.localhost", body="hello there", client_id=uuid.uuid4())
    pk = message.conversation_id
    item = OutboxItem.objects.get(message=message)
    cookie = session_cookie(alice)

    async def scenario():
        socket = await open_conversation(cookie, pk, 0)
        frames = await frames_until(socket, f'id="msg-{pk}-1"')
        assert "queued" in frames[-1]
        failed = database_sync_to_async(outbox.mark_failed)
        assert await failed("dave@prosody.localhost", item.stanza_id, "no such user") == 1
        frames = await frames_until(socket, "failed: no such user")
        assert f'id="status-{pk}-1"' in frames[-1]
        await socket.send_to(text_data=json.dumps({"type": "sync"}))  # the socket is still serving
        await frames_until(socket, 'id="roster"')
        await socket.disconnect()

    run(scenario)


def test_the_emoji_picker_is_on_the_page_once_not_in_every_message(alice, bob, direct):
    for n in range(3):
        actions.send_message(bob, to=direct, body=f"message {n}", client_id=uuid.uuid4())
    client = Client()
    client.force_login(alice)
    page = client.get(reverse("conversation", args=[direct])).content.decode()
    assert page.count("React with 👍") == 1 and page.count('class="picker-slot"') == 4
    cookie = session_cookie(alice)

    async def scenario():
        socket = await open_conversation(cookie, direct, 4)
        await database_sync_to_async(actions.send_message)(bob, to=direct, body="pushed", client_id=uuid.uuid4())
        frames = await frames_until(socket, f'id="msg-{direct}-5"')
        react_url = reverse("message_react", args=[direct, 5])
        assert f'data-react-url="{react_url}"' in frames[-1] and "React with" not in frames[-1]
        await socket.disconnect()

    run(scenario)
