"""Reading one field of a source record: type checks, code tables, times.

A converter takes the raw value, the record it came from and the source's own field name, and
returns the storage value, or None when an XML element was present but empty (as if absent). JSON
is typed, so a JSON string is never read as a number; XML is all text, so numbers, booleans and
codes are read from the element's text there. Booleans are never numbers, and integers outside
64 bits are errors, not rounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NoReturn

from jobql.importers.errors import ImportFormatError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Years 1..9999 in epoch milliseconds: datetime's own range.
_EPOCH_MS_MIN, _EPOCH_MS_MAX = -62135596800000, 253402300799999
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# SchedulerX: a wall-clock time without a zone (milliseconds tolerated, the store keeps them).
_LOCAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,3})?")


class SourceFloat(float):
    """A JSON number with a fraction or exponent that remembers how the source spelled it."""

    text: str


def parse_json_float(text: str) -> float:
    value = SourceFloat(text)
    value.text = text
    return value


def show(raw: object) -> str:
    """A value as the source wrote it, for messages: 'done', 7, 1e30, true, an object."""
    if raw is True:
        return "true"
    if raw is False:
        return "false"
    if raw is None:
        return "null"
    if isinstance(raw, SourceFloat):
        return raw.text
    if isinstance(raw, str):
        return repr(raw if len(raw) <= 60 else raw[:57] + "...")
    if isinstance(raw, dict):
        return "(an object)"
    if isinstance(raw, list):
        return "(a list)"
    return str(raw)


class Rec:
    """Where a value comes from: the file, the record's path inside it, and JSON or XML."""

    __slots__ = ("path", "source", "xml")

    def __init__(self, source: str, path: str, xml: bool) -> None:
        self.source = source
        self.path = path
        self.xml = xml

    @property
    def label(self) -> str:
        return f"{self.source}: {self.path}"

    def fail(self, problem: str) -> NoReturn:
        raise ImportFormatError(self.source, problem, self.path)


Convert = Callable[[Any, Rec, str], Any]
# (source field, storage column, converter)
Field = tuple[str, str, Convert]


def record_object(raw: object, rec: Rec) -> dict[str, Any]:
    if not isinstance(raw, dict):
        rec.fail(f"expected an object, got {show(raw)}")
    return raw


def required(obj: Mapping[str, Any], rec: Rec, key: str, convert: Convert) -> Any:
    raw = obj.get(key)
    value = None if raw is None else convert(raw, rec, key)
    if value is None:
        rec.fail(f"missing required field {key}")
    return value


def put(values: dict[str, Any], obj: Mapping[str, Any], rec: Rec, fields: Iterable[Field]) -> None:
    """Copy the fields the source reported; an absent (or null) field stays out of `values`."""
    for key, column, convert in fields:
        raw = obj.get(key)
        if raw is not None:
            value = convert(raw, rec, key)
            if value is not None:
                values[column] = value


def _xml_blank(raw: object, rec: Rec) -> bool:
    return rec.xml and isinstance(raw, str) and not raw.strip()


def _integer(raw: object, rec: Rec, key: str, low: int, high: int, bits: int) -> int | None:
    if type(raw) is int:
        if low <= raw <= high:
            return raw
    elif rec.xml and isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        if _INTEGER.fullmatch(text):
            value = int(text)
            if low <= value <= high:
                return value
    rec.fail(f"{key} {show(raw)} is not a {bits}-bit integer")


def int64(raw: object, rec: Rec, key: str) -> int | None:
    if type(raw) is int and INT64_MIN <= raw <= INT64_MAX:  # the common case, inline
        return raw
    return _integer(raw, rec, key, INT64_MIN, INT64_MAX, 64)


def int32(raw: object, rec: Rec, key: str) -> int | None:
    return _integer(raw, rec, key, INT32_MIN, INT32_MAX, 32)


def number(raw: object, rec: Rec, key: str) -> float | None:
    """A float, kept as the source reported it (an integer becomes the same float)."""
    if isinstance(raw, float):
        if math.isfinite(raw):
            return float(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        if INT64_MIN <= raw <= INT64_MAX:
            return float(raw)
    elif rec.xml and isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        if _NUMBER.fullmatch(text):
            value = float(text)
            if math.isfinite(value):
                return value
    rec.fail(f"{key} {show(raw)} is not a number")


def boolean(raw: object, rec: Rec, key: str) -> bool | None:
    if raw is True or raw is False:
        return raw
    if rec.xml and isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        if text in ("true", "false"):
            return text == "true"
    rec.fail(f"{key} {show(raw)} is not a boolean (true or false)")


def text(raw: object, rec: Rec, key: str) -> str:
    """Text kept verbatim (an empty text is a value, not an absence)."""
    if isinstance(raw, str):
        if "\x00" in raw:
            rec.fail(f"{key} contains a NUL character")
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            rec.fail(f"{key} is not valid Unicode (a lone surrogate?)")
        return raw
    rec.fail(f"{key} {show(raw)} is not a string")


def name(raw: object, rec: Rec, key: str) -> str:
    value = text(raw, rec, key)
    if not value.strip():
        rec.fail(f"{key} is empty")
    return value


def epoch_ms(raw: object, rec: Rec, key: str) -> datetime | None:
    if type(raw) is int and _EPOCH_MS_MIN <= raw <= _EPOCH_MS_MAX:  # the common case, inline
        return _EPOCH + timedelta(milliseconds=raw)
    ms = int64(raw, rec, key)
    if ms is None:
        return None
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        rec.fail(f"{key} {show(raw)} is out of range for a time in epoch milliseconds")


def local_time(zone: tzinfo) -> Convert:
    """A zone-less `YYYY-MM-DD HH:MM:SS` read in `zone`, returned in UTC."""
    # Schedules repeat the same times across many instances; one body's worth of them is cached.
    seen: dict[str, datetime] = {}

    def convert(raw: object, rec: Rec, key: str) -> datetime | None:
        if isinstance(raw, str):
            known = seen.get(raw)
            if known is not None:
                return known
            value = raw.strip() if rec.xml else raw
            if rec.xml and not value:
                return None
            if _LOCAL_TIME.fullmatch(value):
                try:
                    parsed = datetime.fromisoformat(value).replace(tzinfo=zone).astimezone(UTC)
                except (ValueError, OverflowError):
                    rec.fail(f"{key} {show(raw)} is not a valid time")
                if len(seen) < 100_000:
                    seen[raw] = parsed
                return parsed
        rec.fail(f"{key} {show(raw)} is not a time 'YYYY-MM-DD HH:MM:SS'")

    return convert


def code(table: Mapping[Any, str]) -> Convert:
    """A source code mapped to an enum member name; an unknown code is an error, never a default."""
    numeric = all(type(key) is int for key in table)

    def convert(raw: object, rec: Rec, key: str) -> str | None:
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            rec.fail(f"{key} {show(raw)} is not a code")
        member = table.get(raw)
        if member is None and rec.xml and isinstance(raw, str):
            value = raw.strip()
            if not value:
                return None
            if not numeric:
                member = table.get(value)
            elif _INTEGER.fullmatch(value):
                member = table.get(int(value))
        if member is None:
            rec.fail(f"unknown {key} {show(raw)}")
        return member

    return convert
