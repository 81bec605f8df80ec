"""What one person's sockets may cost the server: a cap on open sockets per person, a frame budget per socket
(frames that read the database cost more), and frames no parser can choke on. Each refusal is a clear error and
the socket stays open; nobody else notices."""

from __future__ import annotations

import asyncio
import json

import pytest

from accounts.tokens import issue_token
from tests.api.test_stream import open_stream, receive_type, stream
from tests.chat.test_socket import RECEIVE_TIMEOUT, open_socket, receive_until, session_cookie, socket_for

pytestmark = pytest.mark.django_db(transaction=True)


def run(scenario) -> None:
    asyncio.run(scenario())


def test_one_person_cannot_open_more_sockets_than_the_cap_and_a_closed_one_frees_its_place(alice, settings):
    settings.IMWEB_MAX_SOCKETS_PER_PERSON = 2
    cookie = session_cookie(alice)
    token = issue_token(alice, "bot")[1]

    async def scenario():
        tabs = [await open_socket(cookie), await open_socket(cookie)]
        extra = socket_for(cookie)
        assert (await extra.connect())[0]
        assert "too many tabs" in await extra.receive_from(timeout=RECEIVE_TIMEOUT)
        assert (await extra.receive_output(timeout=RECEIVE_TIMEOUT))["code"] == 4429
        bot = stream(token)
        assert (await bot.connect())[0]
        assert (await receive_type(bot, "error"))["code"] == "too_many_sockets"
        await tabs[0].disconnect()
        again, ready = await open_stream(token)
        assert ready["type"] == "ready"
        for socket in (again, tabs[1]):
            await socket.disconnect()

    run(scenario)


def test_a_socket_that_sends_too_much_is_told_to_wait_and_keeps_working(alice):
    cookie = session_cookie(alice)

    async def scenario():
        socket = await open_socket(cookie)
        for _ in range(10):  # re-syncs read the whole contact and conversation lists: costly
            await socket.send_to(text_data=json.dumps({"type": "sync"}))
        assert "Too many requests at once. Try again in" in await receive_until(socket, "Too many requests")
        await socket.disconnect()

    run(scenario)


def test_a_deeply_nested_frame_gets_an_error_on_both_kinds_of_socket_which_stay_open(alice):
    cookie = session_cookie(alice)
    token = issue_token(alice, "bot")[1]

    async def scenario():
        web = await open_socket(cookie)
        await web.send_to(text_data="[" * 8000)
        assert "did not understand" in await receive_until(web, "did not understand")
        await web.send_to(text_data=json.dumps({"type": "sync"}))
        assert 'id="roster"' in await receive_until(web, 'id="roster"')
        api, _ = await open_stream(token)
        await api.send_to(text_data="{" * 8000)
        assert "nest at most" in (await receive_type(api, "error"))["message"]
        await api.send_to(text_data=json.dumps({"type": "ping"}))
        assert (await receive_type(api, "pong"))["type"] == "pong"
        for socket in (web, api):
            await socket.disconnect()

    run(scenario)
