"""Cursors keep the bytes identifiers' docstring specifies (the reference strategy, the compiled
one's signers and clients' saved cursors depend on them), however they are computed."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from jobql.storage.identifiers import (
    CursorCodec,
    CursorContext,
    InvalidIdentifier,
    ValueKind,
    sign_cursor,
)
from jobql.storage.json_sql import Shaper
from jobql.storage.paging import Position
from jobql.storage.plan import CursorSpec


def specified(secret: bytes, text: str) -> str:
    """base64url, unpadded, of the text and the first 8 bytes of sha256(secret || text)."""
    payload = text.encode()
    token = payload + hashlib.sha256(secret + payload).digest()[:8]
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "instance:PLAN_TIME:DESC:18001:7:default=2025-05-22T23:35:58.537Z",
        "node:ID:ASC:1:2:ws~",
        "instance:NAME:ASC:9:3:wsé=ünïcode ? > ~~",  # bytes that base64 writes as + and /
        "",
    ],
)
def test_sign_cursor_writes_the_specified_bytes_for_every_secret(text: str) -> None:
    # More secrets than its cache of keyed hashes holds, each twice: no state carries over.
    secrets = [f"secret-{n}".encode() for n in range(12)]
    for secret in secrets + secrets:
        assert sign_cursor(secret, text) == specified(secret, text)


def test_codec_reads_what_it_signed_and_refuses_an_altered_or_foreign_cursor() -> None:
    codec = CursorCodec("s3cret")
    context = CursorContext("instance", "ws1", "PLAN_TIME", "DESC")
    when = datetime(2026, 12, 7, 10, 30, 0, 123000, tzinfo=UTC)
    cursor = codec.encode(context, Position(when, 42))
    assert codec.decode(context, cursor, kind=ValueKind.TIME) == Position(when, 42)

    token = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    token[10] ^= 1
    altered = base64.urlsafe_b64encode(bytes(token)).decode().rstrip("=")
    with pytest.raises(InvalidIdentifier):
        codec.decode(context, altered, kind=ValueKind.TIME)
    with pytest.raises(InvalidIdentifier):
        CursorCodec("other").decode(context, cursor, kind=ValueKind.TIME)


@pytest.mark.parametrize("workspace", ["default", "team-{a}", "q'u\"o\\te", "ümlaut }{"])
def test_the_shapers_generated_signer_signs_as_sign_cursor(workspace: str) -> None:
    # Quotes, backslashes and braces of a workspace's name must come out as they are.
    shaper = Shaper(workspace, "s3cret", "postgresql")
    spec = CursorSpec("instance", "PLAN_TIME", "DESC")
    sign = shaper.env[shaper._signer(SimpleNamespace(cursor=spec))]  # type: ignore[arg-type]
    for key, tail in [(17, "=2025-05-22T23:24:00.000Z"), (2**62, "~"), (3, "={x}")]:
        text = f"instance:PLAN_TIME:DESC:{key}:{len(workspace)}:{workspace}{tail}"
        assert sign(key, tail) == specified(b"s3cret", text)
    assert sign(None, "~") is None  # no row at that end
    assert sign(5, None) is None  # a time SQL cannot print
