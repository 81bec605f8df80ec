"""Domain errors raised by chat actions; each carries a message a user can read.

Entry points map them: `NotFound` → 404 / an "item-not-found" error, `SlowDown` → 429 with Retry-After,
`NotAllowed` → 403, anything else → 400. Sending to a blocked or nonexistent local account raises
`accounts.errors.NoSuchUser` (shared with contacts, so both doors give the same answer); a malformed address
raises `accounts.errors.InvalidJid`.
"""

from __future__ import annotations


class ChatError(Exception):
    """Base of chat errors: str(error) is shown to the user as is."""


class NotFound(ChatError):
    """No such conversation, or one the user is not in: the two are indistinguishable on purpose.

    The message never echoes the id, so nothing about it (its shape, whether it exists) leaks back.
    """

    def __init__(self) -> None:
        super().__init__("There is no such conversation.")


class NoSuchMessage(ChatError):
    """The user is in the conversation, but no message there has this sequence number."""

    def __init__(self, seq: object) -> None:
        super().__init__(f"There is no message {seq} in this conversation.")
        self.seq = seq


class NotAllowed(ChatError):
    """The user is in the conversation but may not do this (not an owner, not their message)."""


class InvalidMessage(ChatError):
    """A message body (or client id) that cannot be stored; the message says what to fix."""


class MessageTooLong(InvalidMessage):
    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"This message is {length:,} characters long; the limit is {limit:,} characters.")
        self.length = length
        self.limit = limit


class InvalidArgument(ChatError):
    """A malformed parameter (a sequence number, a page size, a reaction, a room name)."""


class SlowDown(ChatError):
    """Too many messages too fast; nothing was stored. `retry_after` is in whole seconds (at least 1)."""

    def __init__(self, retry_after: int) -> None:
        unit = "second" if retry_after == 1 else "seconds"
        super().__init__(f"You are sending messages too fast. Try again in {retry_after} {unit}.")
        self.retry_after = retry_after


class RemoteNotSupported(ChatError):
    """An address on another server where only local people fit: rooms do not federate (yet)."""

    def __init__(self, domain: str) -> None:
        super().__init__(f"Rooms can only have members on this server for now; {domain} is another server.")
        self.domain = domain


class NotAContact(ChatError):
    """Rooms are built from mutual contacts; the message names everyone who is not one."""

    def __init__(self, jids: list[str]) -> None:
        names = ", ".join(jids)
        super().__init__(f"Only contacts who share presence with you both ways can be added to a room; not: {names}.")
        self.jids = jids


class StorageUnavailable(ChatError):
    """The database could not store the message right now (the disk is full, the database read-only or away);
    nothing was stored, and the same send will work again once it can."""

    def __init__(self, retry_after: int = 5) -> None:
        super().__init__(
            f"The server cannot store messages right now; yours is kept and sent again in {retry_after} seconds."
        )
        self.retry_after = retry_after
