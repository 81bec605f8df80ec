"""The load generator's client side: one link per person, whatever the server speaks.

- `WsLink`: a WebSocket as a browser tab has it (imweb's /ws/ with the session cookie, or the relay's ?user=).
- `XmppLink`: a c2s session on Prosody (bench/xmpp.py), logged in up to its initial presence.
- `ApiSender`: a bot sending with `POST /api/v1/messages` over its own keep-alive HTTP connection.
- `ApiStream`: a bot reading `/api/v1/stream`, authenticated by `Authorization: Bearer <token>`.

A link's `read(on_message)` runs until the connection ends and calls on_message(client_id, body, seq) for every
message pushed to it: client_id when the server shows it (imweb's pages, the relay, Prosody's stanza id), the body
otherwise (the API shows a message's client id to its sender only). Prosody numbers nothing, so each arrival gets
the next number of its session: one send that arrives twice has two numbers, which counts it as duplicated.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.common import CONNECT_TIMEOUT, Person, Server, api_headers, open_socket, send_frame
from bench.xmpp import XmppClient

OnMessage = Callable[[str | None, str | None, int], None]
API_TIMEOUT = 60.0
SAMPLE_CHARS = 300


class ErrorCount(Counter):
    """API answers other than 200/201 by status (or the exception's name), with the first answer of each kind."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: dict[str, str] = {}

    def add(self, kind: str, sample: str) -> None:
        self[kind] += 1
        self.samples.setdefault(kind, " ".join(sample.split())[:SAMPLE_CHARS])

    def clear(self) -> None:
        super().clear()
        self.samples.clear()


class Link:
    person: Person

    async def send(self, receiver: Person, body: str, client_id: str) -> None:
        raise NotImplementedError

    async def read(self, on_message: OnMessage | None) -> None:
        raise NotImplementedError

    def is_open(self) -> bool:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class WsLink(Link):
    def __init__(self, server: Server, person: Person, ws: ClientConnection) -> None:
        self.server, self.person, self.ws = server, person, ws

    async def send(self, receiver: Person, body: str, client_id: str) -> None:
        await self.ws.send(send_frame(self.person, receiver, body, client_id))

    async def read(self, on_message: OnMessage | None) -> None:
        try:
            async for frame in self.ws:
                if on_message is not None:
                    for client_id, seq in self.server.parse(frame if isinstance(frame, str) else frame.decode()):
                        on_message(client_id, None, seq)
        except ConnectionClosed:
            return

    def is_open(self) -> bool:
        return self.ws.protocol.state.name == "OPEN"

    async def close(self) -> None:
        await self.ws.close()


class XmppLink(Link):
    def __init__(self, person: Person, client: XmppClient) -> None:
        self.person, self.client = person, client
        self.arrivals = 0

    async def send(self, receiver: Person, body: str, client_id: str) -> None:
        self.client.send_message(receiver.jid, body, client_id)
        await self.client.drain_if_full()

    async def read(self, on_message: OnMessage | None) -> None:
        def arrived(message_id: str, _body: bytes) -> None:
            self.arrivals += 1
            if on_message is not None:
                on_message(message_id, None, self.arrivals)

        try:
            await self.client.read(arrived)
        except (ConnectionError, OSError):
            return

    def is_open(self) -> bool:
        return self.client.is_open()

    async def close(self) -> None:
        await self.client.close()


class ApiSender(Link):
    """Sends one message at a time (a bot waits for its answer), on one keep-alive connection of its own."""

    def __init__(self, server: Server, person: Person, index: int, errors: ErrorCount) -> None:
        self.person = person
        self.errors = errors
        base = server.http_urls[index % len(server.http_urls)]
        self.http = httpx.AsyncClient(
            base_url=base + "/api/v1", headers=api_headers(person), timeout=API_TIMEOUT,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )  # fmt: skip

    async def send(self, receiver: Person, body: str, client_id: str) -> None:
        payload = {"to": self.person.conversation, "body": body, "client_id": client_id}
        try:
            response = await self.http.post("/messages", json=payload)
        except httpx.HTTPError as error:
            self.errors.add(type(error).__name__, str(error))
            return
        if response.status_code not in (200, 201):
            self.errors.add(str(response.status_code), response.text)

    async def read(self, on_message: OnMessage | None) -> None:
        return  # a sender reads nothing: its answers are the POSTs' responses

    def is_open(self) -> bool:
        return not self.http.is_closed

    async def close(self) -> None:
        await self.http.aclose()


class ApiStream(Link):
    def __init__(self, person: Person, ws: ClientConnection) -> None:
        self.person, self.ws = person, ws

    @classmethod
    async def open(cls, server: Server, person: Person, index: int, open_seconds: float = CONNECT_TIMEOUT) -> ApiStream:
        url = server.http_urls[index % len(server.http_urls)].replace("http://", "ws://") + "/api/v1/stream"
        ws = await connect(
            url, additional_headers=api_headers(person), open_timeout=open_seconds, max_size=2**20, compression=None
        )
        # The stream is subscribed once it has sent "ready" (where each conversation stands).
        async with asyncio.timeout(open_seconds):
            while True:
                event = json.loads(await ws.recv())
                if event.get("type") == "ready":
                    break
                if event.get("type") == "error":
                    await ws.close()
                    raise RuntimeError(f"the API stream refused {person.jid}: {event}")
        return cls(person, ws)

    async def send(self, receiver: Person, body: str, client_id: str) -> None:
        raise NotImplementedError("API streams receive; ApiSender sends")

    async def read(self, on_message: OnMessage | None) -> None:
        try:
            async for frame in self.ws:
                if on_message is None:
                    continue
                event = json.loads(frame)
                if event.get("type") == "message":
                    message = event.get("message") or {}
                    on_message(message.get("client_id"), message.get("body"), int(event["seq"]))
        except ConnectionClosed:
            return

    def is_open(self) -> bool:
        return self.ws.protocol.state.name == "OPEN"

    async def close(self) -> None:
        await self.ws.close()


async def open_link(
    server: Server, person: Person, index: int = 0, *, role: str = "receiver", first_frame: bool = False,
    errors: ErrorCount | None = None, open_seconds: float = CONNECT_TIMEOUT,
) -> Link:  # fmt: skip
    """A link as the person. index picks the web process (senders 0, receivers 1); role "sender" or "receiver"
    (the API sends and receives on different connections); first_frame: for imweb's page socket, also wait for
    the first frame the server sends on a new socket (the contact list), so the socket is fully set up (Prosody's
    sessions always wait for their reflected presence, API streams for "ready"). open_seconds bounds each step."""
    if server.kind == "xmpp":
        assert server.prosody is not None and person.password is not None
        async with asyncio.timeout(open_seconds):
            client = await XmppClient.login(server.prosody.c2s_port, person.jid, person.password)
        return XmppLink(person, client)
    if server.kind == "api":
        if role == "sender":
            return ApiSender(server, person, index, errors if errors is not None else ErrorCount())
        return await ApiStream.open(server, person, index, open_seconds)
    ws = await open_socket(server, person, index, open_timeout=open_seconds)
    if first_frame and server.manage is not None:
        try:
            await asyncio.wait_for(ws.recv(), open_seconds)
        except BaseException:
            await ws.close()
            raise
    return WsLink(server, person, ws)
