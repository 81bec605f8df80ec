"""Reading the frames a socket receives (the web UI's and the API stream's): anything at all may arrive, and
each failure is a precise error the socket sends back while it stays open.

A frame is one JSON object with a string "type", within the socket's size limit, nested at most MAX_DEPTH
deep (no frame of ours needs more than three levels; Python's JSON parser would otherwise recurse until it
fails, which Channels answered by closing the socket with 1011).
"""

from __future__ import annotations

import json

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
