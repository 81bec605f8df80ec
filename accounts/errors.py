"""Domain errors raised by accounts actions; each carries a message a user can read."""


class AccountError(Exception):
    """Base of account errors: str(error) is shown to the user as is."""


class InvalidProfile(AccountError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidAvatar(AccountError):
    pass


class InvalidJid(AccountError):
    pass


class ContactError(AccountError):
    """A contact-list operation that cannot be done; the message says why."""


class NoSuchUser(ContactError):
    """No such account, or one that blocked the asker: the two are indistinguishable on purpose."""

    def __init__(self, jid: str) -> None:
        super().__init__(f"There is no account {jid}.")


class RateLimited(AccountError):
    """Too many attempts; `retry_after` (seconds) when the limit says when, else None."""

    retry_after: int | None = None
