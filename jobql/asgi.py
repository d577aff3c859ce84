"""Answers written straight to ASGI, for middleware that refuses a request before any route."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from starlette.types import Send

from jobql import metrics


async def send_error(
    send: Send,
    status: int,
    message: str,
    code: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """A GraphQL-style error body (`errors[0].extensions.code`) with `status`."""
    metrics.note_error(code)
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
