"""Argument checks shared by the use cases."""

from __future__ import annotations

from typing import overload

from jobql.errors import BadUserInput


@overload
def text(name: str, value: str) -> str: ...
@overload
def text(name: str, value: str | None) -> str | None: ...


def text(name: str, value: str | None) -> str | None:
    """A text argument the databases can compare: PostgreSQL refuses NUL characters."""
    if value is None:
        return None
    if "\x00" in value:
        raise BadUserInput(f"`{name}` must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadUserInput(f"`{name}` is not valid Unicode (a lone surrogate?).") from None
    return value
