"""Domain errors → API errors: one table, used by the HTTP API (status + JSON body) and the stream (error events).

Every error reaches the client as `{"error": {"code": "...", "message": "..."}}`; `code` is stable and
machine-readable, `message` is the action's own sentence for people. The most specific class wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from accounts.errors import AccountError, ContactError, InvalidJid, InvalidProfile, NoSuchUser, RateLimited
from accounts.tokens import InvalidTokenName
from chat.errors import (
    ChatError,
    InvalidArgument,
    InvalidMessage,
    MessageTooLong,
    NoSuchMessage,
    NotAContact,
    NotAllowed,
    NotFound,
    RemoteNotSupported,
    SlowDown,
    StorageUnavailable,
)
from chat.files import FileRefused, UploadsTooFast


@dataclass(frozen=True)
class ApiError:
    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    details: object = None

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class InvalidCredentials(Exception):
    """Wrong login or password, or no such account, or an inactive one: one answer for all, on purpose."""

    def __init__(self) -> None:
        super().__init__("The username or email and password do not match an account.")


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit // 1024} KB.")


# (class, HTTP status, code), most specific first: the first class the error is an instance of decides.
_TABLE: list[tuple[type[Exception], int, str]] = [
    (InvalidCredentials, 401, "invalid_credentials"),
    (NotFound, 404, "not_found"),
    (NoSuchMessage, 404, "no_such_message"),
    (NoSuchUser, 404, "no_such_user"),
    (NotAContact, 403, "not_a_contact"),
    (NotAllowed, 403, "forbidden"),
    (MessageTooLong, 413, "message_too_long"),
    (BodyTooLarge, 413, "body_too_large"),
    (InvalidMessage, 422, "invalid_message"),
    (InvalidArgument, 422, "invalid_argument"),
    (InvalidJid, 422, "invalid_jid"),
    (InvalidProfile, 422, "invalid_field"),
    (InvalidTokenName, 422, "invalid_field"),
    (RemoteNotSupported, 422, "remote_not_supported"),
    (UploadsTooFast, 429, "slow_down"),
    (FileRefused, 415, "file_refused"),  # its own status when it has one (too large: 413)
    (SlowDown, 429, "slow_down"),
    (StorageUnavailable, 503, "storage_unavailable"),
    (RateLimited, 429, "rate_limited"),
    (ContactError, 409, "conflict"),
    (ChatError, 409, "conflict"),
    (AccountError, 409, "conflict"),
]

DOMAIN_ERRORS: tuple[type[Exception], ...] = (ChatError, AccountError, BodyTooLarge, InvalidCredentials)


def describe(exc: Exception) -> ApiError:
    """The API error for a domain error (an instance of one of DOMAIN_ERRORS)."""
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            retry_after = getattr(exc, "retry_after", None)  # SlowDown always, RateLimited when it knows
            headers = {"Retry-After": str(retry_after)} if retry_after else {}
            if isinstance(exc, FileRefused) and exc.status in (400, 413, 415):
                status = exc.status
            return ApiError(status, code, str(exc), headers)
    raise TypeError(f"not a domain error: {exc!r}")
