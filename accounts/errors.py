"""Domain errors raised by accounts actions; each carries a message a user can read."""


class AccountError(Exception):
    """Base of account errors: str(error) is shown to the user as is."""


class InvalidProfile(AccountError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidAvatar(AccountError):
    pass
