"""Domain errors of the storage layer: one small hierarchy, mapped to HTTP in one place above."""

from __future__ import annotations

__all__ = ["ActivelabelError", "Conflict", "Forbidden", "InvalidInput", "NotFound", "TooManyAttempts"]


class ActivelabelError(Exception):
    """Base of every domain error; ``code`` is a stable machine-readable string."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ActivelabelError):
    """The named object does not exist (or the caller may not see it)."""

    code = "not_found"


class Conflict(ActivelabelError):
    """The call clashes with the current state (duplicate name, already superseded revision...)."""

    code = "conflict"


class InvalidInput(ActivelabelError):
    """The arguments are malformed; the message says which one and how to fix it."""

    code = "invalid_input"


class Forbidden(ActivelabelError):
    """The caller is known but lacks the role for this call."""

    code = "forbidden"


class TooManyAttempts(ActivelabelError):
    """Too many failed attempts (logins): the caller must wait ``retry_after`` seconds."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
