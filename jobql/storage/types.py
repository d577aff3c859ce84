"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Dialect, String
from sqlalchemy.types import TypeDecorator, TypeEngine


def format_utc(value: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: the one text form of a time, in storage and in GraphQL.

    Fixed width, so SQLite compares the text in instant order; its strftime() reads the trailing Z.
    """
    value = value.astimezone(UTC)
    # Not strftime: its %Y does not pad years before 1000, which would break the fixed width.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def truncate_ms(value: datetime) -> datetime:
    """Times are kept to the millisecond, the precision every source reports."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; give the time zone")
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class UtcDateTime(TypeDecorator[datetime]):
    """`timestamptz` on PostgreSQL, UTC ISO-8601 text with milliseconds on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(24))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = truncate_ms(value)
        if dialect.name == "sqlite":
            return format_utc(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return parse_utc(value)
        assert isinstance(value, datetime)
        if value.tzinfo is None or value.utcoffset() == timedelta(0):
            # Already UTC: no astimezone(), which goes through local time for the year 1.
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
