"""What reaches a person wherever they are in the app: the first message of a new conversation is delivered to
whichever tab they have open, a page without the chat (`/ws/?presence=1`) keeps them online, idle detection
works there, and a new display name or avatar reaches every screen that shows it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts import actions as accounts
from accounts.models import Show
from chat import actions
from chat.models import Participant
from imweb.asgi import application
from tests.chat.test_chat_socket import frames_until, settle
from tests.chat.test_socket import RECEIVE_TIMEOUT, open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def friends(alice, bob):
    accounts.request_subscription(alice, bob.jid)
    accounts.accept_subscription(bob, alice.jid)
    return alice, bob


def presence_socket(cookie: bytes) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)]
    return WebsocketCommunicator(application, "/ws/?presence=1", headers=headers)


def run(scenario) -> None:
    asyncio.run(scenario())


async def shown(viewer, contact) -> str:
    seen = await database_sync_to_async(accounts.presence_for_viewer)(viewer, contact)
    return seen.show


async def until(condition, what: str) -> None:
    """Poll an async condition until it holds; fails after RECEIVE_TIMEOUT seconds."""
    for _ in range(RECEIVE_TIMEOUT * 20):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def frames_within(socket: WebsocketCommunicator, seconds: float) -> list[str]:
    """Every frame that arrives in the next `seconds`."""
    seen: list[str] = []
    with contextlib.suppress(asyncio.TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                seen.append(await socket.receive_from(timeout=seconds))
    return seen


def png() -> SimpleUploadedFile:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, "PNG")
    return SimpleUploadedFile("me.png", buffer.getvalue(), content_type="image/png")


def test_a_page_without_the_chat_keeps_its_person_online_and_idle_detection_works_there(friends, alice, bob):
    cookie = session_cookie(bob)

    async def scenario():
        socket = presence_socket(cookie)
        assert (await socket.connect())[0]
        assert await shown(alice, bob) == Show.AVAILABLE
        # No chat frame: the contact and conversation lists are not rendered for a Profile page.
        assert await socket.receive_nothing(timeout=0.5)

        await socket.send_to(text_data=json.dumps({"type": "presence.idle"}))
        await until(lambda: _is(shown(alice, bob), Show.AWAY), "bob away")
        await socket.send_to(text_data=json.dumps({"type": "presence.active"}))
        await until(lambda: _is(shown(alice, bob), Show.AVAILABLE), "bob available again")
        # Chat requests are not this socket's business: ignored, and nothing rendered back.
        await socket.send_to(text_data=json.dumps({"type": "sync"}))
        assert await socket.receive_nothing(timeout=0.5)

        await socket.disconnect()
        assert await shown(alice, bob) == Show.OFFLINE

    run(scenario)


async def _is(value, expected) -> bool:
    return await value == expected


def test_the_first_message_of_a_new_conversation_is_delivered_to_a_page_without_the_chat(friends, alice, bob):
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}

    async def scenario():
        bob_page = presence_socket(cookies["bob"])
        assert (await bob_page.connect())[0]
        alice_tab = await open_socket(cookies["alice"])

        first = await database_sync_to_async(actions.send_message)(
            alice, to=bob.jid, body="hello, new chat", client_id=uuid.uuid4()
        )
        pk = first.conversation_id

        async def delivered() -> bool:
            marker = await database_sync_to_async(
                lambda: Participant.objects.get(conversation_id=pk, user=bob).last_delivered_seq
            )()
            return marker == 1

        await until(delivered, "bob's delivery marker at 1")
        # Alice's screen (the conversation opened from the start) says so.
        await alice_tab.send_to(text_data=json.dumps({"type": "conversation.open", "conversation": pk, "after": 0}))
        frames = await frames_until(alice_tab, f'id="status-{pk}-1"')
        assert ">Delivered<" in frames[-1]
        # The page shows no chat, so it was sent none of it.
        assert await bob_page.receive_nothing(timeout=0.3)
        await bob_page.disconnect()
        await alice_tab.disconnect()

    run(scenario)


def test_a_chat_tab_that_marks_a_conversation_new_to_it_delivered_moves_the_senders_status(friends, alice, bob):
    """What static/js/chat.js sends for a conversation it did not know yet (its row arrives with the message)."""
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}

    async def scenario():
        bob_tab = await open_socket(cookies["bob"])
        alice_tab = await open_socket(cookies["alice"])
        first = await database_sync_to_async(actions.send_message)(
            alice, to=bob.jid, body="first of all", client_id=uuid.uuid4()
        )
        pk = first.conversation_id
        row = await frames_until(bob_tab, f'id="convrow-{pk}"')
        assert 'data-last-seq="1"' in row[-1] and 'data-mine="0"' in row[-1]
        await alice_tab.send_to(text_data=json.dumps({"type": "conversation.open", "conversation": pk, "after": 1}))
        await settle(alice_tab)  # her tab follows the conversation now
        await bob_tab.send_to(text_data=json.dumps({"type": "mark.delivered", "conversation": pk, "seq": 1}))
        frames = await frames_until(alice_tab, f'id="status-{pk}-1"')
        assert ">Delivered<" in frames[-1]
        await bob_tab.disconnect()
        await alice_tab.disconnect()

    run(scenario)


def test_a_request_is_not_marked_delivered_by_a_page_without_the_chat(alice, bob):
    """A stranger's first message waits in Requests: it says nothing back until accepted."""
    cookie = session_cookie(bob)

    async def scenario():
        bob_page = presence_socket(cookie)
        assert (await bob_page.connect())[0]
        first = await database_sync_to_async(actions.send_message)(
            alice, to=bob.jid, body="hi, stranger", client_id=uuid.uuid4()
        )
        await asyncio.sleep(0.3)  # give a wrong marker time to land; nothing to wait on when none is expected
        marker = await database_sync_to_async(
            lambda: Participant.objects.get(conversation_id=first.conversation_id, user=bob).last_delivered_seq
        )()
        assert marker == 0
        await bob_page.disconnect()

    run(scenario)


def test_a_new_display_name_reaches_the_lists_the_header_and_the_messages_of_others(friends, alice, bob):
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}
    pk = actions.send_message(alice, to=bob.jid, body="hi", client_id=uuid.uuid4()).conversation_id

    async def scenario():
        bob_tab = await open_socket(cookies["bob"])
        await bob_tab.send_to(text_data=json.dumps({"type": "conversation.open", "conversation": pk, "after": 1}))
        alice_page = presence_socket(cookies["alice"])
        assert (await alice_page.connect())[0]

        await database_sync_to_async(accounts.update_profile)(alice, display_name="Alice <B>", status_message="")
        frames = await frames_until(bob_tab, "live-profile")
        frame = frames[-1]
        assert f'id="convrow-{pk}"' in frame and "Alice &lt;B&gt;" in frame  # the row's title, escaped
        assert f'id="pane-head-{pk}"' in frame  # the open conversation's header
        assert f'data-jid="{alice.jid}" data-name="Alice &lt;B&gt;"' in frame  # for the messages on screen
        # Bob's contact list shows the new name as well.
        await frames_until(bob_tab, "Alice &lt;B&gt;</span>")
        # Alice's own page without the chat hears of it (its top bar shows her name), in JSON.
        own = json.loads(await alice_page.receive_from(timeout=RECEIVE_TIMEOUT))
        assert own == {"type": "profile", "jid": alice.jid, "name": "Alice <B>", "avatar_url": ""}
        await bob_tab.disconnect()
        await alice_page.disconnect()

    run(scenario)


def test_a_new_avatar_reaches_someone_who_only_shares_a_conversation(alice, bob):
    """Not a contact, a member of the same conversation: their screens show the picture too."""
    cookie = session_cookie(bob)
    actions.send_message(alice, to=bob.jid, body="hi", client_id=uuid.uuid4())

    async def scenario():
        bob_tab = await open_socket(cookie)
        await database_sync_to_async(accounts.set_avatar)(alice, png())
        frames = await frames_until(bob_tab, "live-profile")
        assert f'data-avatar="{reverse("avatar", args=[alice.username])}?v=1"' in frames[-1]
        await database_sync_to_async(accounts.remove_avatar)(alice)
        frames = await frames_until(bob_tab, "live-profile")
        assert 'data-avatar=""' in frames[-1]
        await bob_tab.disconnect()

    run(scenario)


def test_an_unchanged_display_name_tells_nobody_of_a_new_name(friends, alice, bob):
    cookie = session_cookie(bob)

    async def scenario():
        bob_tab = await open_socket(cookie)
        await database_sync_to_async(accounts.update_profile)(alice, display_name="Alice", status_message="busy")
        frames = await frames_until(bob_tab, 'id="roster"')  # the contact list is re-read
        frames += await frames_within(bob_tab, 0.5)
        assert not any("live-profile" in frame for frame in frames)
        await bob_tab.disconnect()

    run(scenario)
