"""The custom scalars: DateTime (RFC 3339, UTC out) and Long (64-bit integer as a JSON number)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NewType

import strawberry

from jobql.storage.types import format_utc, truncate_ms

Long = NewType("Long", int)

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1


RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?")


def parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an RFC 3339 string such as 2019-03-04T03:53:00Z")
    match = RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time such as 2019-03-04T03:53:00Z")
    moment, fraction, offset = match.groups()
    if offset is None:
        raise ValueError(f"{value!r} has no UTC offset; add Z or +hh:mm")
    if fraction and fraction[3:].strip("0"):
        raise ValueError(f"{value!r} is more precise than a millisecond, which jobql keeps")
    milliseconds = (fraction or "").ljust(3, "0")[:3]
    text = f"{moment}.{milliseconds}{'+00:00' if offset in 'Zz' else offset}"
    try:
        return truncate_ms(datetime.fromisoformat(text.replace("t", "T")))
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not a valid instant") from None


def _serialize_datetime(value: datetime) -> str:
    return format_utc(value)


def _parse_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Long must be an integer, got {value!r}")
    if not LONG_MIN <= value <= LONG_MAX:
        raise ValueError(f"Long must fit in 64 bits, got {value}")
    return int(value)


DATETIME_SCALAR = strawberry.scalar(
    name="DateTime",
    description=(
        "An instant, RFC 3339 with a UTC offset (e.g. `2019-03-04T03:53:00.000Z` or "
        "`2019-03-04T11:53:00+08:00`). Output is always UTC with milliseconds; input without an "
        "offset is refused. Kept to the millisecond."
    ),
    specified_by_url="https://datatracker.ietf.org/doc/html/rfc3339",
    serialize=_serialize_datetime,
    parse_value=parse_datetime,
)

LONG_SCALAR = strawberry.scalar(
    name="Long",
    description=(
        "A signed 64-bit integer sent as a JSON number (vendor ids, epoch values, row counts). "
        "GraphQL `Int` is only 32-bit."
    ),
    serialize=int,
    parse_value=_parse_long,
)

SCALAR_MAP: dict[object, Any] = {datetime: DATETIME_SCALAR, Long: LONG_SCALAR}
