"""Reading the frames a socket receives (the web UI's and the API stream's): anything at all may arrive, and
each failure is a precise error the socket sends back while it stays open.

A frame is one JSON object with a string "type", within the socket's size limit, nested at most MAX_DEPTH
deep (no frame of ours needs more than three levels; Python's JSON parser would otherwise recurse until it
fails, which Channels answered by closing the socket with 1011).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

MAX_DEPTH = 8


class FrameError(ValueError):
    """A frame that cannot be used; `code` for the API stream, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _too_deep(raw: str) -> bool:
    """More than MAX_DEPTH open brackets at once, outside strings (a cheap scan before any parsing)."""
    depth = 0
    in_string = escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def decode(text_data: str | None, bytes_data: bytes | None, max_bytes: int) -> dict[str, object]:
    """The frame as a dict with a string "type", or FrameError saying what is wrong with it."""
    raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
    if len(raw) > max_bytes or len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise FrameError("frame_too_large", f"Frames can be at most {max_bytes // 1024} KB.")
    if _too_deep(raw):
        raise FrameError("invalid_frame", f"A frame may nest at most {MAX_DEPTH} levels deep.")
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        raise FrameError("invalid_frame", "A frame must be a JSON object.") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("invalid_frame", 'A frame must be a JSON object with a "type".')
    return frame


class FrameBudget:
    """How fast one socket may make the server work: `rate` frames a second on average, `burst` at once (a token
    bucket). Every frame takes one token before it is looked at; what a frame turns out to cost beyond that (a
    re-sync renders the whole contact and conversation lists, a catch-up renders every message it sends) is
    charged after the work, and may leave the socket in debt, so the next frames wait. Over budget, a frame is
    refused with the seconds to wait and nothing else happens: one socket cannot make the server spend everyone
    else's time."""

    def __init__(self, rate: float = 20.0, burst: float = 40.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst
        self.at = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def spend(self) -> float:
        """Take one token for a frame: 0.0 when there was one, else the seconds until there will be."""
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def charge(self, cost: float) -> None:
        """Work a frame caused, in frames' worth, taken even into debt."""
        self._refill()
        self.tokens -= cost


# What work beyond reading a frame costs, in frames' worth: a re-sync, and each message a catch-up renders.
SYNC_COST = 10.0
CATCH_UP_COST_PER_MESSAGE = 0.05
