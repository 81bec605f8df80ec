"""Catch-up benchmark: a person comes back to N messages stored while they were away, and reads them all.

`python -m bench.catchup [--missed 1000] [--rounds 3]`

One pair of contacts on the embedded imweb; the sender's N messages are stored (through chat.actions, as a send
stores them) while the receiver has no connection. Then, `--rounds` times, the receiver reconnects and asks for
everything after the seq it last saw, as a returning client does:

- `page`: a browser tab's socket (`/ws/` with the session cookie) that opens the conversation with
  `{"type": "conversation.open", "after": 1}`;
- `api`: a bot's `/api/v1/stream?since=<conversation>:1`.

It prints, per way in, the seconds from the start of the connection until the last missed message arrived (the
design target: under 1 s for 1,000), how many arrived (each exactly once), and the server's CPU time for it.
The server is started by the script on loopback and stopped by PID; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
import uuid

from websockets.asyncio.client import connect

from bench.common import (
    CONNECT_TIMEOUT,
    Person,
    Server,
    api_headers,
    cpu_seconds,
    create_people,
    load_average,
    print_settings_notes,
    start_api,
)

# Stores the missed messages in chunks through the plural action, as the web processes' batches do.
STORE = """
import uuid
from accounts.models import User
from chat.actions import SendRequest, send_messages
sender = User.objects.get(username={username!r})
for start in range(0, {count}, 100):
    sent = send_messages([
        SendRequest(sender, {conversation}, f"missed message {{n}} " + "x" * 40, uuid.uuid4())
        for n in range(start, min(start + 100, {count}))
    ])
    assert all(not isinstance(s, Exception) for s in sent), sent
print("BENCH-STORED", {count})
"""
_SEQ = re.compile(r'<article id="msg-(\d+)-(\d+)"')
ROUND_LIMIT_SECONDS = 60.0


async def page_round(server: Server, person: Person, last_seq: int) -> tuple[float, int, int]:
    """Seconds until the tab had every missed message, how many distinct ones it got, and how many twice."""
    seen: dict[int, int] = {}
    started = time.perf_counter()
    ws = await connect(
        server.ws_url(0), origin=server.http_urls[0], additional_headers={"Cookie": f"sessionid={person.session}"},
        open_timeout=CONNECT_TIMEOUT, max_size=2**24, compression=None,
    )  # fmt: skip
    try:
        await ws.send(json.dumps({"type": "conversation.open", "conversation": person.conversation, "after": 1}))
        async with asyncio.timeout(ROUND_LIMIT_SECONDS):
            while len(seen) < last_seq - 1:
                frame = await ws.recv()
                for conversation, seq in _SEQ.findall(frame if isinstance(frame, str) else frame.decode()):
                    if int(conversation) == person.conversation and int(seq) > 1:
                        seen[int(seq)] = seen.get(int(seq), 0) + 1
        return time.perf_counter() - started, len(seen), sum(n - 1 for n in seen.values())
    finally:
        await ws.close()


async def api_round(server: Server, person: Person, last_seq: int) -> tuple[float, int, int]:
    seen: dict[int, int] = {}
    started = time.perf_counter()
    url = server.http_urls[0].replace("http://", "ws://") + f"/api/v1/stream?since={person.conversation}:1"
    ws = await connect(
        url, additional_headers=api_headers(person), open_timeout=CONNECT_TIMEOUT, max_size=2**24, compression=None
    )
    try:
        async with asyncio.timeout(ROUND_LIMIT_SECONDS):
            while len(seen) < last_seq - 1:
                event = json.loads(await ws.recv())
                if event.get("type") == "message" and event.get("conversation") == person.conversation:
                    seen[int(event["seq"])] = seen.get(int(event["seq"]), 0) + 1
        return time.perf_counter() - started, len(seen), sum(n - 1 for n in seen.values())
    finally:
        await ws.close()


def measure(server: Server, way: str, person: Person, last_seq: int, rounds: int) -> dict:
    take = page_round if way == "page" else api_round
    seconds, cpu, counts, twice = [], [], [], 0
    for _ in range(rounds):
        before = cpu_seconds(server.pids())
        took, got, doubled = asyncio.run(take(server, person, last_seq))
        seconds.append(took)
        cpu.append(cpu_seconds(server.pids()) - before)
        counts.append(got)
        twice += doubled
    return {"way": way, "seconds": seconds, "cpu": cpu, "got": min(counts), "twice": twice}


def report(missed: int, r: dict) -> None:
    print(
        f"[imweb-{r['way']}] catch-up of {missed} missed messages: received={r['got']} duplicated={r['twice']} "
        f"seconds median={statistics.median(r['seconds']):.3f} max={max(r['seconds']):.3f} "
        f"server CPU median={statistics.median(r['cpu']):.3f} s ({len(r['seconds'])} reconnects)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missed", type=int, default=1000, help="messages stored while away (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="reconnects measured per way in (default 3)")
    args = parser.parse_args()
    if not (1 <= args.missed <= 1000 and 1 <= args.rounds <= 20):
        parser.error("bounds: 1-1000 missed messages (one catch-up's bound), 1-20 rounds")
    print(f"[machine] load average (1, 5, 15 min) at start: {load_average()}", flush=True)
    server = start_api()  # the embedded imweb, its people with a session and an API token each
    try:
        [(sender, receiver)], _ = create_people(server, f"c{uuid.uuid4().hex[:6]}", 1)
        print_settings_notes(server)
        assert server.manage is not None and receiver.conversation is not None
        username = sender.jid.split("@", 1)[0]
        server.manage(STORE.format(username=username, count=args.missed, conversation=receiver.conversation))
        last_seq = args.missed + 1  # seq 1 is the pair's first message, which both have seen
        results = [measure(server, way, receiver, last_seq, args.rounds) for way in ("page", "api")]
    finally:
        server.stop()
    for r in results:
        report(args.missed, r)
    print(f"[machine] load average (1, 5, 15 min) at end: {load_average()}", flush=True)
    return 0 if all(r["got"] == args.missed and r["twice"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
