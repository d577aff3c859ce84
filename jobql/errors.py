"""Expected failures, shared by every layer; the schema turns them into `extensions.code`."""

from __future__ import annotations


class JobqlError(Exception):
    """An error the client is meant to read: its message is shown as is."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadUserInput(JobqlError):
    """An argument is out of range, malformed, or contradicts another one."""

    code = "BAD_USER_INPUT"


class Forbidden(JobqlError):
    """The caller may not do this in this workspace (e.g. write without the write scope)."""

    code = "FORBIDDEN"


class NotFound(JobqlError):
    """The object asked for does not exist in the caller's workspace."""

    code = "NOT_FOUND"
