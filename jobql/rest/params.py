"""Request parameters as the source APIs read them.

Every problem is a `BadUserInput` naming the parameter; each endpoint turns it into its source's
own error reply. Numbers are ASCII digits only (no `+`, spaces, `_`, fractions or exponents),
64-bit at most. An empty value (`?status=`) counts as absent, as the pages' URI templates
(`?jobName={jobName}&status={status}`) produce it for unset parameters; a parameter given twice is
refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar

from starlette.datastructures import QueryParams

from jobql.errors import BadUserInput
from jobql.rest.formats import EPOCH_MS_MAX, from_epoch_ms

INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"-?[0-9]{1,19}")

T = TypeVar("T")


def _show(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:37] + "...")


def integer(name: str, raw: str, low: int, high: int) -> int:
    if _INTEGER.fullmatch(raw):
        value = int(raw)
        if low <= value <= high:
            return value
    raise BadUserInput(f"{name} must be an integer from {low} to {high}, got {_show(raw)}.")


def long(name: str, raw: str) -> int:
    """A 64-bit id (a source's Long)."""
    if _INTEGER.fullmatch(raw):
        value = int(raw)
        if -INT64_MAX - 1 <= value <= INT64_MAX:
            return value
    raise BadUserInput(f"{name} must be a 64-bit integer, got {_show(raw)}.")


def epoch_ms(name: str, raw: str) -> datetime:
    """A time in epoch milliseconds, 1970 .. year 9999."""
    if _INTEGER.fullmatch(raw):
        value = int(raw)
        if 0 <= value <= EPOCH_MS_MAX:
            return from_epoch_ms(value)
    raise BadUserInput(f"{name} must be a time in epoch milliseconds, got {_show(raw)}.")


def boolean(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in ("true", "false"):
        return value == "true"
    raise BadUserInput(f"{name} must be true or false, got {_show(raw)}.")


def choice(name: str, raw: str, table: Mapping[str, T]) -> T:
    if raw in table:
        return table[raw]
    raise BadUserInput(f"{name} must be one of {', '.join(table)}, got {_show(raw)}.")


class Query:
    """A request's query parameters; each getter returns None for an absent parameter."""

    def __init__(self, params: QueryParams) -> None:
        self._params = params

    def text(self, name: str) -> str | None:
        values = self._params.getlist(name)
        if len(values) > 1:
            raise BadUserInput(f"{name} is given {len(values)} times; give it once.")
        return values[0] if values and values[0] != "" else None

    def integer(self, name: str, low: int, high: int) -> int | None:
        raw = self.text(name)
        return None if raw is None else integer(name, raw, low, high)

    def long(self, name: str) -> int | None:
        raw = self.text(name)
        return None if raw is None else long(name, raw)

    def epoch_ms(self, name: str) -> datetime | None:
        raw = self.text(name)
        return None if raw is None else epoch_ms(name, raw)

    def boolean(self, name: str) -> bool | None:
        raw = self.text(name)
        return None if raw is None else boolean(name, raw)

    def choice(self, name: str, table: Mapping[str, T]) -> T | None:
        raw = self.text(name)
        return None if raw is None else choice(name, raw, table)
