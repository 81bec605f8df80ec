"""Who may read and write a conversation, and reading the ids and seqs that arrive from outside.

Authorization lives in `membership()`: only a current participant may read or write a conversation, and
whoever is not one gets the same `NotFound` as for an id that does not exist, whatever the id looks like.
Every read (chat.queries) and every action (chat.actions) goes through it.
"""

from __future__ import annotations

import re

from accounts.models import User
from chat.errors import InvalidArgument, NotFound
from chat.models import Participant

# Ids and sequence numbers are PostgreSQL bigints; anything larger cannot exist.
MAX_BIGINT = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


def conversation_pk(value: object) -> int:
    """The conversation id in `value` (an int, or a string of ASCII digits), else NotFound.

    Ids come from URLs and frames, so anything is possible; every malformed shape gets the same NotFound as a
    well-formed id of a conversation the user is not in.
    """
    if isinstance(value, bool):
        raise NotFound
    if isinstance(value, int):
        pk = value
    elif isinstance(value, str) and _ASCII_DIGITS.fullmatch(value):
        pk = int(value)
    else:
        raise NotFound
    if not 1 <= pk <= MAX_BIGINT:
        raise NotFound
    return pk


def parse_seq(value: object, name: str = "seq") -> int:
    """A sequence number (≥ 0) given as an int or a string of ASCII digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        seq = value
    elif isinstance(value, str) and _ASCII_DIGITS.fullmatch(value):
        seq = int(value)
    else:
        raise InvalidArgument(f"{name} must be a whole number, 0 or more.")
    if not 0 <= seq <= MAX_BIGINT:
        raise InvalidArgument(f"{name} must be a whole number, 0 or more.")
    return seq


def membership(user: User, conversation_id: object) -> Participant:
    """The user's current participation (with its conversation), or NotFound. One query."""
    pk = conversation_pk(conversation_id)
    if not getattr(user, "is_authenticated", False):
        raise NotFound
    participant = (
        Participant.objects.select_related("conversation")
        .filter(conversation_id=pk, user=user, left_at__isnull=True)
        .first()
    )
    if participant is None:
        raise NotFound
    return participant
