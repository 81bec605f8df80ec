"""Where a socket stands in each conversation it follows: the last seq it forwarded, and what to do with the
next push. The web UI's socket and the API stream share it (chat.consumers, chat.api.stream).

Seqs are numbered 1, 2, 3, ... without gaps (chat.actions.messages), so a push is either the next one (forward
it as it is), one already forwarded (a duplicate: drop it), or further on (a gap: some push was lost or is
late; catch up from the database, then go on). Pushes about a conversation the socket does not follow are not
its business.
"""

from __future__ import annotations

import enum


class Verdict(enum.Enum):
    FORWARD = "forward"  # the next seq: send the payload as it is, then `advance`
    DUPLICATE = "duplicate"  # already forwarded (or caught up past it): drop
    GAP = "gap"  # further on than the next one: catch up from the database first
    UNKNOWN = "unknown"  # a conversation this socket does not follow


class Cursor:
    """The last seq forwarded per followed conversation."""

    def __init__(self) -> None:
        self._last: dict[int, int] = {}

    def follow(self, conversation: int, after: int) -> None:
        """From now on forward what comes after `after` (what the client says it holds), rewinding if needed."""
        self._last[conversation] = after

    def forget(self, conversation: int) -> None:
        self._last.pop(conversation, None)

    def follows(self, conversation: int) -> bool:
        return conversation in self._last

    def last(self, conversation: int) -> int | None:
        return self._last.get(conversation)

    def offer(self, conversation: int, seq: int) -> Verdict:
        last = self._last.get(conversation)
        if last is None:
            return Verdict.UNKNOWN
        if seq <= last:
            return Verdict.DUPLICATE
        if seq == last + 1:
            return Verdict.FORWARD
        return Verdict.GAP

    def advance(self, conversation: int, seq: int) -> None:
        """Record that everything up to `seq` was forwarded (never moves back)."""
        if conversation in self._last and seq > self._last[conversation]:
            self._last[conversation] = seq

    def positions(self) -> dict[int, int]:
        return dict(self._last)
