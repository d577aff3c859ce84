"""Opaque identifiers handed to clients: Relay global ids and keyset cursors.

Both are plain text transforms, so that SQL can produce the same bytes as Python (PostgreSQL with
string concatenation, sha256() and encode(); SQLite with registered functions).

A global id is base64 of `<Type>:<surrogate id>`, the convention Relay tools expect.

A cursor is base64url (no padding) of the UTF-8 text

    <kind>:<field>:<direction>:<id>:<length of workspace>:<workspace><value>

where <value> is `~` for a null sort value, else `=` and the value's text (times as
`YYYY-MM-DDTHH:MM:SS.mmmZ`, integers in decimal, text as is), followed by the first 8 bytes of
sha256(secret || text). The check makes an altered cursor detectable; kind, workspace, field and
direction make a cursor of another connection, workspace or order detectable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from jobql.storage.paging import Position
from jobql.storage.types import format_utc, parse_utc

CHECK_BYTES = 8
MAX_KEY = 2**63 - 1


class InvalidIdentifier(ValueError):
    """Not an identifier this server issued (or one issued for another context)."""


def encode_global_id(type_name: str, key: int) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode("ascii")


def decode_global_id(text: str) -> tuple[str, int | None]:
    """Split a global id into type name and key; the key is None when it names nothing.

    Raises InvalidIdentifier when the text is not a global id at all.
    """
    try:
        decoded = base64.b64decode(text.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidIdentifier("not a global id") from exc
    type_name, sep, raw_key = decoded.partition(":")
    if not sep or not type_name:
        raise InvalidIdentifier("not a global id")
    if not (raw_key.isascii() and raw_key.isdigit() and len(raw_key) <= 19):
        return type_name, None
    if not 0 < int(raw_key) <= MAX_KEY:
        return type_name, None
    return type_name, int(raw_key)


# base64 to base64url, as `urlsafe_b64encode` translates (written out in `sign_cursor`: a page
# signs a cursor per row).
URL_SAFE = bytes.maketrans(b"+/", b"-_")


def sign_cursor(secret: bytes, text: str) -> str:
    """The cursor of a payload text: base64url (no padding) of the text and its check."""
    payload = text.encode()
    token = payload + hashlib.sha256(secret + payload).digest()[:CHECK_BYTES]
    return binascii.b2a_base64(token, newline=False).translate(URL_SAFE).rstrip(b"=").decode()


class ValueKind(Enum):
    """What a cursor's sort value is, and the range the column can hold."""

    TIME = "time"
    INT64 = "int64"
    INT32 = "int32"
    TEXT = "text"


INT_RANGES = {ValueKind.INT64: (-(2**63), 2**63 - 1), ValueKind.INT32: (-(2**31), 2**31 - 1)}
TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
INT_TEXT = re.compile(r"-?\d{1,19}")


@dataclass(frozen=True, slots=True)
class CursorContext:
    """What a cursor is valid for: a kind of connection, in one workspace, in one order."""

    kind: str
    workspace: str
    field: str
    direction: str


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._secret = secret.encode()

    def encode(self, context: CursorContext, position: Position) -> str:
        value = "~" if position.value is None else "=" + _value_text(position.value)
        text = (
            f"{context.kind}:{context.field}:{context.direction}:{position.id}:"
            f"{len(context.workspace)}:{context.workspace}{value}"
        )
        return sign_cursor(self._secret, text)

    def decode(self, context: CursorContext, cursor: str, *, kind: ValueKind) -> Position:
        try:
            token = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
            payload, check = token[:-CHECK_BYTES], token[-CHECK_BYTES:]
            if len(token) <= CHECK_BYTES or check != self._check(payload):
                raise InvalidIdentifier("malformed cursor")
            text = payload.decode("utf-8")
            cursor_kind, field, direction, raw_key, length, rest = text.split(":", 5)
            workspace, value = rest[: int(length)], rest[int(length) :]
        except (binascii.Error, UnicodeError, ValueError) as exc:
            raise InvalidIdentifier("malformed cursor") from exc
        if (cursor_kind, workspace, field, direction) != (
            context.kind,
            context.workspace,
            context.field,
            context.direction,
        ):
            raise InvalidIdentifier("cursor belongs to another connection or order")
        key = _parse_int(raw_key, ValueKind.INT64)
        if key < 1:
            raise InvalidIdentifier("malformed cursor")
        if value == "~":
            return Position(None, key)
        if not value.startswith("="):
            raise InvalidIdentifier("malformed cursor")
        return Position(_parse_value(value[1:], kind), key)

    def _check(self, payload: bytes) -> bytes:
        return hashlib.sha256(self._secret + payload).digest()[:CHECK_BYTES]


def _value_text(value: Any) -> str:
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, (str, int)):
        return str(value)
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


def _parse_value(text: str, kind: ValueKind) -> Any:
    if kind is ValueKind.TIME:
        if not TIME_TEXT.fullmatch(text):
            raise InvalidIdentifier("malformed cursor")
        try:
            return parse_utc(text)
        except (ValueError, OverflowError) as exc:
            raise InvalidIdentifier("malformed cursor") from exc
    if kind is ValueKind.TEXT:
        if "\x00" in text:
            raise InvalidIdentifier("malformed cursor")
        return text
    return _parse_int(text, kind)


def _parse_int(text: str, kind: ValueKind) -> int:
    if not INT_TEXT.fullmatch(text):
        raise InvalidIdentifier("malformed cursor")
    value = int(text)
    low, high = INT_RANGES[kind]
    if not low <= value <= high:
        raise InvalidIdentifier("malformed cursor")
    return value
