"""Opaque identifiers handed to clients: Relay global ids and keyset cursors.

Both are plain text transforms so that SQL can produce the same bytes as Python.

A global id is base64 of `<Type>:<surrogate id>`, the convention Relay tools expect.

A cursor is base64url (no padding) of a compact JSON array
`[kind, workspace, field, direction, value, id]` followed by the first 8 bytes of
sha256(secret || json). The check makes an altered cursor detectable; the workspace, kind, field
and direction make a cursor from another workspace or order detectable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True, slots=True)
class CursorContext:
    """What a cursor is valid for: a kind of connection, in one workspace, in one order."""

    kind: str
    workspace: str
    field: str
    direction: str


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def encode(self, context: CursorContext, position: Position) -> str:
        payload = json.dumps(
            [
                context.kind,
                context.workspace,
                context.field,
                context.direction,
                _value_text(position.value),
                position.id,
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        token = payload + self._check(payload)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    def decode(self, context: CursorContext, cursor: str, *, value_type: type) -> Position:
        try:
            token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidIdentifier("malformed cursor") from exc
        payload, check = token[:-CHECK_BYTES], token[-CHECK_BYTES:]
        if len(token) <= CHECK_BYTES or check != self._check(payload):
            raise InvalidIdentifier("malformed cursor")
        try:
            kind, workspace, field, direction, value, key = json.loads(payload)
        except (ValueError, TypeError) as exc:
            raise InvalidIdentifier("malformed cursor") from exc
        if (kind, workspace, field, direction) != (
            context.kind,
            context.workspace,
            context.field,
            context.direction,
        ):
            raise InvalidIdentifier("cursor belongs to another connection or order")
        if not _is_key(key):
            raise InvalidIdentifier("malformed cursor")
        return Position(_parse_value(value, value_type), key)

    def _check(self, payload: bytes) -> bytes:
        return hashlib.sha256(self._secret + payload).digest()[:CHECK_BYTES]


def _value_text(value: Any) -> str | int | None:
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, datetime):
        return format_utc(value)
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


def _parse_value(value: Any, value_type: type) -> Any:
    if value is None:
        return None
    try:
        if value_type is datetime and isinstance(value, str):
            return parse_utc(value)
        if value_type is int and _is_key(value, minimum=-MAX_KEY - 1):
            return value
        if value_type is str and isinstance(value, str):
            return value
    except ValueError as exc:
        raise InvalidIdentifier("malformed cursor") from exc
    raise InvalidIdentifier("malformed cursor")


def _is_key(value: Any, *, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_KEY
