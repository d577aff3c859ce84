"""Helpers for importer tests: the seed examples and checks on record values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobql.storage.records import InstanceRecord

EXAMPLES = Path(__file__).parent / "examples"


def example(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


def utc(*parts: int) -> datetime:
    """A UTC time from (year, month, day, hour, minute, second, millisecond)."""
    year, month, day, hour, minute, second, *ms = parts
    return datetime(year, month, day, hour, minute, second, ms[0] * 1000 if ms else 0, tzinfo=UTC)


def assert_plain_values(record: InstanceRecord) -> None:
    """Times are aware UTC datetimes and numbers are plain int/float, as storage expects."""
    values: list[Any] = [*record.values.values(), *record.job_values.values()]
    for node in record.nodes or []:
        values.extend(node.values.values())
    for value in values:
        assert type(value) in (str, int, float, bool, datetime), value
        if isinstance(value, datetime):
            assert value.tzinfo is UTC, value
