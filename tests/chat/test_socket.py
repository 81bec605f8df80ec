"""The user's WebSocket: who may connect, the re-sync on connect, and live presence and requests."""

from __future__ import annotations

import asyncio
import json

import pytest
from allauth.usersessions.models import UserSession
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts import actions
from accounts.events import user_group
from chat import consumers
from imweb.asgi import application
from tests.accounts.test_two_factor import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

RECEIVE_TIMEOUT = 5


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def socket_for(cookie: bytes | None = None, origin: bytes = b"http://localhost") -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/", headers=headers)


async def receive_until(socket: WebsocketCommunicator, text: str) -> str:
    """Frames until one contains `text` (pushes may repeat); fails after RECEIVE_TIMEOUT seconds."""

    async def read() -> str:
        while True:
            frame = await socket.receive_from(timeout=RECEIVE_TIMEOUT)
            if text in frame:
                return frame

    return await asyncio.wait_for(read(), RECEIVE_TIMEOUT)


async def open_socket(cookie: bytes) -> WebsocketCommunicator:
    """A connected socket whose first frame (the full re-sync) has been read."""
    socket = socket_for(cookie)
    connected, _ = await socket.connect()
    assert connected
    await socket.receive_from(timeout=RECEIVE_TIMEOUT)
    return socket


@pytest.fixture
def friends(alice, bob):
    actions.request_subscription(alice, bob.jid)
    actions.accept_subscription(bob, alice.jid)
    return alice, bob


async def receive_show(socket: WebsocketCommunicator, jid: str, show: str) -> str:
    """Frames until one shows the contact `jid` with presence `show` (not the user's own state)."""
    return await receive_until(socket, f'data-jid="{jid}" data-show="{show}"')


def run(scenario) -> None:
    asyncio.run(scenario())


def test_anonymous_sockets_are_refused():
    async def scenario():
        socket = socket_for()
        connected, code = await socket.connect()
        assert not connected
        assert code == 4401

    run(scenario)


@pytest.mark.parametrize(
    "origin",
    [b"https://evil.example", b"http://localhost:1", b"https://localhost", b"http://localhost.evil.example", b"null"],
    ids=["other-site", "other-port", "other-scheme", "lookalike", "opaque"],
)
def test_sockets_from_another_origin_are_refused(alice, origin):
    cookies = {"alice": session_cookie(alice)}

    async def scenario():
        socket = socket_for(cookies["alice"], origin=origin)
        connected, _ = await socket.connect()
        assert not connected

    run(scenario)


def test_a_socket_from_the_site_itself_is_accepted_with_or_without_the_default_port(alice):
    cookies = {"alice": session_cookie(alice)}

    async def scenario():
        for origin in (b"http://localhost", b"http://localhost:80"):
            socket = socket_for(cookies["alice"], origin=origin)
            assert (await socket.connect())[0]
            await socket.disconnect()

    run(scenario)


def test_connecting_sends_the_whole_contact_list_and_marks_the_user_online(friends, alice, bob):
    cookies = {"bob": session_cookie(bob)}

    async def scenario():
        socket = socket_for(cookies["bob"])
        assert (await socket.connect())[0]
        first = await socket.receive_from(timeout=RECEIVE_TIMEOUT)
        assert 'id="roster"' in first and 'hx-swap-oob="true"' in first and "alice@imweb.localhost" in first
        seen = await database_sync_to_async(actions.presence_for_viewer)(alice, bob)
        assert seen.show == "available"
        await socket.disconnect()
        seen = await database_sync_to_async(actions.presence_for_viewer)(alice, bob)
        assert seen.show == "offline"

    run(scenario)


def test_presence_changes_reach_contacts_live(friends, alice, bob):
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}

    async def scenario():
        alice_socket = await open_socket(cookies["alice"])

        bob_socket = socket_for(cookies["bob"])
        await bob_socket.connect()
        await receive_show(alice_socket, bob.jid, "available")

        await database_sync_to_async(actions.set_presence)(bob, show="away", status="at lunch")
        frame = await receive_show(alice_socket, bob.jid, "away")
        assert "at lunch" in frame

        await bob_socket.send_to(text_data=json.dumps({"type": "presence.active"}))
        await bob_socket.disconnect()
        await receive_show(alice_socket, bob.jid, "offline")
        await alice_socket.disconnect()

    run(scenario)


def test_moving_to_another_page_shows_no_offline_blink_and_leaving_still_goes_offline(friends, alice, bob):
    # A browser closes a page's socket with 1001 ("going away") when the person clicks a link or reloads; the
    # next page's socket follows a moment later. Their contacts must not see them go Offline and come back.
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}
    grace = consumers.LEAVING_GRACE_SECONDS
    bob_again = database_sync_to_async(lambda: type(bob).objects.get(pk=bob.pk))

    async def scenario():
        alice_socket = await open_socket(cookies["alice"])
        bob_page = socket_for(cookies["bob"])
        await bob_page.connect()
        await receive_show(alice_socket, bob.jid, "available")

        leaving = asyncio.ensure_future(bob_page.disconnect(code=1001, timeout=grace + RECEIVE_TIMEOUT))
        # The next page takes a moment to load before its socket connects: a page load, not a synchronisation
        # (the outcome does not depend on it as long as it is shorter than the grace).
        await asyncio.sleep(grace / 6)
        next_page = await open_socket(cookies["bob"])
        await leaving
        # The old page's session is closed by now, after its grace: still nothing about Bob reached Alice.
        while not await alice_socket.receive_nothing(timeout=0.2):
            assert f'data-jid="{bob.jid}" data-show="offline"' not in await alice_socket.receive_from()
        seen = await database_sync_to_async(actions.presence_for_viewer)(alice, await bob_again())
        assert seen.show == "available"

        # Closing the last page is still leaving: Offline, once the grace is over.
        await next_page.disconnect(code=1001, timeout=grace + RECEIVE_TIMEOUT)
        await receive_show(alice_socket, bob.jid, "offline")
        await alice_socket.disconnect()

    run(scenario)


def test_signing_one_session_out_closes_its_open_tabs_and_only_those(alice):
    # Two browsers signed in; from the laptop, the office browser is signed out (Profile → Signed-in sessions).
    # The office tab still open says it was signed out (4401, not retried); the laptop's tab stays.
    laptop, office = Client(), Client()
    for client in (laptop, office):
        assert sign_in(client).status_code == 302
    cookie = {
        name: f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()
        for name, client in (("laptop", laptop), ("office", office))
    }
    office_key = office.cookies[settings.SESSION_COOKIE_NAME].value
    office_session = UserSession.objects.get(session_key=office_key)

    async def scenario():
        laptop_tab, office_tab = await open_socket(cookie["laptop"]), await open_socket(cookie["office"])
        answer = await database_sync_to_async(laptop.post)(reverse("usersession_sign_out", args=[office_session.pk]))
        assert answer.status_code == 302

        async def closing() -> dict:
            while (output := await office_tab.receive_output(timeout=RECEIVE_TIMEOUT))["type"] != "websocket.close":
                pass  # pushes that were already on their way (its own presence, say)
            return output

        assert await asyncio.wait_for(closing(), RECEIVE_TIMEOUT) == {"type": "websocket.close", "code": 4401}
        await laptop_tab.send_to(text_data=json.dumps({"type": "sync"}))
        assert 'id="roster"' in await receive_until(laptop_tab, 'id="roster"')
        await laptop_tab.disconnect()

    run(scenario)


def test_idle_tab_makes_the_user_away_and_activity_brings_them_back(friends, alice, bob):
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}

    async def scenario():
        alice_socket = await open_socket(cookies["alice"])
        bob_socket = socket_for(cookies["bob"])
        await bob_socket.connect()
        await receive_show(alice_socket, bob.jid, "available")

        await bob_socket.send_to(text_data=json.dumps({"type": "presence.idle", "HEADERS": {}}))
        await receive_show(alice_socket, bob.jid, "away")
        await bob_socket.send_to(text_data=json.dumps({"type": "presence.active", "HEADERS": {}}))
        await receive_show(alice_socket, bob.jid, "available")
        await bob_socket.disconnect()
        await alice_socket.disconnect()

    run(scenario)


def test_a_request_appears_live_in_the_other_side_s_requests(alice, bob):
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}

    async def scenario():
        bob_socket = await open_socket(cookies["bob"])

        await database_sync_to_async(actions.request_subscription)(alice, bob.jid, message="hi, it's Alice")

        frame = await receive_until(bob_socket, "hi, it&#x27;s Alice")
        assert 'id="requests"' in frame and "alice@imweb.localhost" in frame
        await bob_socket.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "did not understand"),
        (json.dumps({"no": "type"}), "did not understand"),
        (json.dumps({"type": "launch.missiles"}), "Unknown request type"),
        (json.dumps({"type": "presence.idle", "pad": "x" * 70_000}), "too large"),
    ],
    ids=["not-json", "no-type", "unknown-type", "oversize"],
)
def test_bad_frames_get_a_clear_error_and_the_socket_keeps_serving(alice, frame, error):
    cookies = {"alice": session_cookie(alice)}

    async def scenario():
        socket = await open_socket(cookies["alice"])
        await socket.send_to(text_data=frame)
        # A presence push (the user's own session coming online) may come before the answer: skip those.
        answer = await receive_until(socket, 'role="alert"')
        assert error in answer
        await socket.send_to(text_data=json.dumps({"type": "sync"}))
        await receive_until(socket, 'id="roster"')
        await socket.disconnect()

    run(scenario)


def test_an_event_the_socket_has_no_use_for_is_skipped_and_the_socket_stays_open(alice):
    cookies = {"alice": session_cookie(alice)}

    async def scenario():
        socket = await open_socket(cookies["alice"])
        # An event type this socket does not know (one meant for another kind of socket, or from a newer
        # process) would make Channels close the socket; it must be ignored.
        await get_channel_layer().group_send(user_group(alice.pk), {"type": "something.from.the.future", "x": 1})
        await socket.send_to(text_data=json.dumps({"type": "sync"}))
        await receive_until(socket, 'id="roster"')
        await socket.send_to(text_data=json.dumps({"type": "sync"}))
        await receive_until(socket, 'id="roster"')
        await socket.disconnect()

    run(scenario)
