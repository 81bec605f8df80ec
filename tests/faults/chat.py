"""Two people chatting through real faults: Ada sends numbered messages over the JSON API, each with its own
client id and retried with that id until answered (a bot's contract); Bo's API stream collects what is pushed,
reconnecting from the last seq it holds after any disconnect. At the end, `check` holds what was stored and what
Bo saw against what was sent: every message stored exactly once, in order, and Bo holding exactly that, in seq
order, none twice.

Everything runs on loopback against a service started as `make run` starts it; every loop is bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from tests.api.test_bot import PASSWORD, sign_up
from tests.servers import Service

REQUEST_TIMEOUT = 20.0


def api_token(service: Service, username: str) -> str:
    answer = httpx.post(
        service.url + "/api/v1/token", json={"username": username, "password": PASSWORD, "name": "faults"}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


@dataclass
class Conversation:
    """Ada and Bo, contacts with a direct conversation, each with an API token."""

    service: Service
    ada: str
    bo: str
    id: int

    @classmethod
    def start(cls, service: Service, prefix: str = "") -> Conversation:
        names = (f"{prefix}ada", f"{prefix}bo")
        for name in names:
            sign_up(service, name)
        ada, bo = (api_token(service, name) for name in names)
        with httpx.Client(base_url=service.url + "/api/v1", timeout=30) as http:
            ada_jid, bo_jid = (http.get("/me", headers=_auth(token)).json()["jid"] for token in (ada, bo))
            asked = http.post("/contacts", json={"jid": bo_jid}, headers=_auth(ada))
            assert asked.status_code in (200, 201), asked.text
            accepted = http.post(f"/contacts/{ada_jid}/accept", headers=_auth(bo))
            assert accepted.status_code in (200, 201), accepted.text
            first = http.post(
                "/messages", json={"to": bo_jid, "body": "start", "client_id": str(uuid.uuid4())}, headers=_auth(ada)
            )
            assert first.status_code == 201, first.text
        return cls(service, ada, bo, first.json()["conversation"])


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Run:
    """One chat through faults: what was sent, what the server answered, what Bo's stream got."""

    conversation: Conversation
    count: int
    sent: dict[str, str] = field(default_factory=dict)  # client id -> body, once answered 200/201
    refusals: list[str] = field(default_factory=list)  # answers that were neither (precise errors are fine)
    seen: list[tuple[int, str]] = field(default_factory=list)  # (seq, body) as Bo's stream delivered them
    reconnects: int = 0

    async def send_all(self, interval: float, deadline: float) -> None:
        """Ada's sends, numbered, one every `interval` s; each retried with its client id until answered."""
        async with httpx.AsyncClient(
            base_url=self.conversation.service.url + "/api/v1", timeout=REQUEST_TIMEOUT
        ) as http:
            for n in range(self.count):
                client_id, body = str(uuid.uuid4()), f"message {n}"
                while time.monotonic() < deadline:
                    try:
                        answer = await http.post(
                            "/messages",
                            json={"to": self.conversation.id, "body": body, "client_id": client_id},
                            headers=_auth(self.conversation.ada),
                        )
                    except httpx.HTTPError:
                        await asyncio.sleep(0.2)  # the web process is restarting: the same send again
                        continue
                    if answer.status_code in (200, 201):
                        self.sent[client_id] = body
                        break
                    self.refusals.append(f"{answer.status_code} {answer.text[:200]}")
                    await asyncio.sleep(0.2)
                await asyncio.sleep(interval)

    async def receive(self, deadline: float, done: asyncio.Event) -> None:
        """Bo's stream: what arrives, in order; after a disconnect it reconnects with ?since= the last seq it
        holds; once `done` is set it asks for a catch-up (sync) until it holds the last message."""
        url = self.conversation.service.url.replace("http://", "ws://") + "/api/v1/stream"
        last = 1  # the conversation's first message ("start") was there before Bo listened
        while time.monotonic() < deadline:
            try:
                async with connect(
                    f"{url}?since={self.conversation.id}:{last}",
                    additional_headers=_auth(self.conversation.bo),
                    open_timeout=REQUEST_TIMEOUT,
                ) as stream:
                    while time.monotonic() < deadline:
                        if done.is_set() and len(self.sent) == self.count and self._has_last():
                            return
                        try:
                            frame = await asyncio.wait_for(stream.recv(), 2.0)
                        except TimeoutError:
                            if done.is_set():  # a push may have been lost with a process: catch up by seq
                                sync = {"type": "sync", "conversations": {str(self.conversation.id): last}}
                                await stream.send(json.dumps(sync))
                            continue
                        event = json.loads(frame)
                        if event.get("type") == "message" and event.get("conversation") == self.conversation.id:
                            self.seen.append((event["seq"], event["message"]["body"]))
                            last = max(last, event["seq"])
            except (OSError, WebSocketException, TimeoutError):
                self.reconnects += 1
                await asyncio.sleep(0.3)

    def _has_last(self) -> bool:
        bodies = {body for _, body in self.seen}
        return f"message {self.count - 1}" in bodies and len(bodies) >= self.count

    def stored(self) -> list[tuple[int, str, str | None]]:
        """What the database holds now, in seq order: (seq, body, client id as Ada sees it)."""
        rows: list[tuple[int, str, str | None]] = []
        after = 0
        with httpx.Client(base_url=self.conversation.service.url + "/api/v1", timeout=30) as http:
            while True:
                page = http.get(
                    f"/conversations/{self.conversation.id}/messages",
                    params={"after_seq": after, "limit": 500},
                    headers=_auth(self.conversation.ada),
                ).json()["messages"]
                rows += [(m["seq"], m["body"], m["client_id"]) for m in page]
                if len(page) < 500:
                    return rows
                after = page[-1]["seq"]

    def check(self) -> None:
        """The exact-set check: stored once each, in order; Bo holds exactly that, in seq order, none twice."""
        assert len(self.sent) == self.count, f"only {len(self.sent)} of {self.count} sends were answered"
        stored = [row for row in self.stored() if row[1] != "start"]
        assert [body for _, body, _ in stored] == [f"message {n}" for n in range(self.count)]
        assert sorted(cid for _, _, cid in stored) == sorted(self.sent)  # each client id stored exactly once
        seqs = [seq for seq, _, _ in stored]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert [seq for seq, _ in self.seen] == seqs, "Bo's stream missed, repeated or reordered a message"
        assert [body for _, body in self.seen] == [body for _, body, _ in stored]
