"""The reference: a bare `websockets` relay that speaks the benchmark's frames and stores nothing.

`python -m bench.relay --port P` serves ws://127.0.0.1:P/?user=<jid>. A frame
{"type": "message.send", "to": jid, "body": ..., "client_id": ...} goes, numbered per (sender, recipient), to every
socket of the recipient and of the sender, as imweb tells both sides. It is the practical ceiling of a Python
WebSocket server on this machine, run in the same benchmark so the ratio imweb/reference means something.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve

sockets: dict[str, set[ServerConnection]] = defaultdict(set)
seqs: dict[tuple[str, str], int] = defaultdict(int)


async def handler(ws: ServerConnection) -> None:
    user = parse_qs(urlsplit(ws.request.path).query).get("user", [""])[0]
    if not user:
        await ws.close(4401, "no user")
        return
    sockets[user].add(ws)
    try:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") != "message.send":
                continue
            key = tuple(sorted((user, frame["to"])))
            seqs[key] += 1
            out = json.dumps(
                {"type": "message", "from": user, "to": frame["to"], "body": frame["body"],
                 "client_id": frame["client_id"], "seq": seqs[key]}
            )  # fmt: skip
            broadcast(sockets[frame["to"]] | sockets[user], out)
    finally:
        sockets[user].discard(ws)


async def main(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serve(handler, "127.0.0.1", port, max_size=64 * 1024):
        print(f"relay listening on 127.0.0.1:{port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
