"""A bot against the real service (started as `make run` starts it): it logs in over HTTP, listens on the event
stream, gets a person's message, answers it, and the person sees the answer, stored once even when retried.

The person uses the web UI's own doors (sign-up form, the page's WebSocket, the history view); the bot uses
only the API, with `httpx` and the `websockets` client, as a bot written by someone else would.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.servers import Service

PASSWORD = "correct horse battery staple"
TIMEOUT = 15
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # A bot may send far faster than a person: the limit is a setting, raised here as an operator would.
    service = Service(Path(tmp_path_factory.mktemp("api")), env={"IMWEB_MESSAGE_RATE_LIMITS": "1000/10"}).start()
    yield service
    assert service.stop() == 0, service.log()


def sign_up(service: Service, username: str) -> httpx.Client:
    """A signed-in browser session, made through the sign-up form."""
    http = httpx.Client(base_url=service.url, timeout=TIMEOUT)
    form = http.get("/accounts/signup/")
    token = _CSRF_FIELD.search(form.text).group(1)
    data = {
        "csrfmiddlewaretoken": token,
        "username": username,
        "email": f"{username}@example.org",
        "password1": PASSWORD,
    }
    answer = http.post("/accounts/signup/", data=data)
    assert answer.status_code == 302, answer.text
    return http


def api_login(service: Service, username: str) -> httpx.Client:
    """An API client holding a fresh token, as a bot gets one."""
    answer = httpx.post(
        service.url + "/api/v1/token", json={"username": username, "password": PASSWORD, "name": "test bot"}
    )
    assert answer.status_code == 201, answer.text
    token = answer.json()["token"]
    return httpx.Client(base_url=service.url + "/api/v1", timeout=TIMEOUT, headers={"Authorization": f"Bearer {token}"})


def open_stream(service: Service, api: httpx.Client) -> ClientConnection:
    """The bot's event stream (use it in a `with`), authenticated by the Authorization header."""
    url = service.url.replace("http://", "ws://") + "/api/v1/stream"
    return connect(url, additional_headers={"Authorization": api.headers["Authorization"]}, open_timeout=TIMEOUT)


def next_event(stream: ClientConnection, kind: str) -> dict:
    """The next event of type `kind`; others are skipped. Fails after TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no {kind} event within {TIMEOUT}s")
        event = json.loads(stream.recv(timeout=remaining))
        if event["type"] == kind:
            return event


def open_web_socket(service: Service, browser: httpx.Client) -> ClientConnection:
    cookies = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    url = service.url.replace("http://", "ws://") + "/ws/"
    return connect(url, origin=service.url, additional_headers={"Cookie": cookies}, open_timeout=TIMEOUT)


def test_a_bot_logs_in_hears_a_person_and_answers(service: Service):
    person = sign_up(service, "ada")
    sign_up(service, "echobot").close()
    bot = api_login(service, "echobot")
    with open_stream(service, bot) as stream:
        assert next_event(stream, "ready")["jid"] == "echobot@imweb.localhost"
        # Ada adds the bot from her page; the bot hears of it, reads its requests and accepts.
        page = person.get("/")
        token = _CSRF_FIELD.search(page.text).group(1)
        added = person.post(
            "/contacts/add",
            data={"csrfmiddlewaretoken": token, "jid": "echobot@imweb.localhost"},
            headers={"HX-Request": "true"},
        )
        assert added.status_code == 200, added.text
        next_event(stream, "contacts")
        requests = bot.get("/contacts").json()["requests"]
        assert [r["jid"] for r in requests] == ["ada@imweb.localhost"]
        assert bot.post("/contacts/ada@imweb.localhost/accept").status_code == 200

        # Ada writes to the bot through her page's socket.
        with open_web_socket(service, person) as web:
            web.send(
                json.dumps(
                    {
                        "type": "message.send",
                        "to": "echobot@imweb.localhost",
                        "body": "ping?",
                        "client_id": str(uuid.uuid4()),
                    }
                )
            )
            event = next_event(stream, "message")  # the page stays open until the bot has it
        assert (event["seq"], event["message"]["sender"], event["message"]["body"]) == (
            1,
            "ada@imweb.localhost",
            "ping?",
        )
        conversation = event["conversation"]

        # The bot answers; its first answer is "lost", so it retries with the same client_id.
        reply = {"to": conversation, "body": "pong: ping?", "client_id": str(uuid.uuid4()), "reply_to": event["seq"]}
        first = bot.post("/messages", json=reply)
        retry = bot.post("/messages", json=reply)
        assert (first.status_code, retry.status_code) == (201, 200)
        assert first.json() == retry.json()
        assert (first.json()["seq"], first.json()["reply_to"]) == (2, 1)
        # The bot's own stream reports its answer too (another of its clients would see it).
        assert next_event(stream, "message")["seq"] == 2

        # Ada's side has the answer, once.
        history = person.get(f"/c/{conversation}/messages", params={"after": 1})
        assert history.status_code == 200
        articles = re.findall(r'<article [^>]*data-seq="(\d+)"', history.text)
        assert articles == ["2"] and "pong: ping?" in history.text
        stored = bot.get(f"/conversations/{conversation}/messages", params={"after_seq": 0}).json()["messages"]
        assert [(m["seq"], m["body"]) for m in stored] == [(1, "ping?"), (2, "pong: ping?")]
    person.close()


def test_a_revoked_bot_token_is_refused_and_its_stream_cannot_open(service: Service):
    sign_up(service, "shortlived").close()
    bot = api_login(service, "shortlived")
    assert bot.get("/me").json()["jid"] == "shortlived@imweb.localhost"
    assert bot.delete("/token").status_code == 204
    refused = bot.get("/me")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"
    url = service.url.replace("http://", "ws://") + "/api/v1/stream"
    with connect(url, additional_headers={"Authorization": bot.headers["Authorization"]}, open_timeout=TIMEOUT) as s:
        assert next_event(s, "error")["code"] == "unauthenticated"


def test_many_bots_sending_at_once_are_all_answered_and_stored_once(service):
    import asyncio

    sign_up(service, "burst")
    sign_up(service, "sink")
    api = api_login(service, "burst")
    sink = api_login(service, "sink")
    me = {"burst": api.get("/me").json()["jid"], "sink": sink.get("/me").json()["jid"]}
    api.post("/contacts", json={"jid": me["sink"]}).raise_for_status()
    sink.post(f"/contacts/{me['burst']}/accept").raise_for_status()
    conversation = api.post("/messages", json={"to": me["sink"], "body": "hi", "client_id": str(uuid.uuid4())})
    conversation_id = conversation.json()["conversation"]
    bots, each = 20, 8
    client_ids = [str(uuid.uuid4()) for _ in range(bots * each)]

    async def bot(http: httpx.AsyncClient, mine: list[str]) -> list[int]:
        codes = []
        for cid in mine:  # one after the other, as a bot waits for each answer
            answer = await http.post("/messages", json={"to": conversation_id, "body": cid, "client_id": cid})
            codes.append(answer.status_code)
        return codes

    async def burst() -> list[int]:
        # Sends that arrive together are stored together (chat.batching): the batching outlives the request
        # that started it, and every request after it must still be served.
        async with httpx.AsyncClient(base_url=service.url + "/api/v1", headers=api.headers, timeout=TIMEOUT) as http:
            answers = await asyncio.gather(*(bot(http, client_ids[n::bots]) for n in range(bots)))
            return [code for codes in answers for code in codes]

    assert asyncio.run(burst()) == [201] * len(client_ids)
    stored = api.get(f"/conversations/{conversation_id}/messages", params={"after_seq": 0, "limit": 500}).json()
    ids = [m["client_id"] for m in stored["messages"]]
    assert sorted(i for i in ids if i in client_ids) == sorted(client_ids) and len(ids) == len(set(ids))
