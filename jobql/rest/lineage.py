"""`POST /api/v1/lineage`: OpenLineage RunEvents in, as `openlineage-python`'s `HttpTransport`
(its default endpoint) and Marquez take them: one event as JSON, optionally gzip-compressed
(`Content-Encoding: gzip`), a Bearer token (the client's `api_key` auth). The mapping is
`jobql.resolvers.lineage`'s; this module is only the HTTP side.

Answers: 201 `{"outcome", "instance": {"id", "jobName", "instanceId", "runId"}, "node"}`; errors
in the body form of jobql's other early answers (401, 413, 503): `{"errors": [{"message",
"extensions": {"code", "field"}}]}` — 400 `INVALID_EVENT` naming the field, 403 `FORBIDDEN`,
409 `CONFLICT`, 413 `PAYLOAD_TOO_LARGE`, 503 `SERVICE_UNAVAILABLE`, and a logged, masked 500
`INTERNAL` for anything unexpected (never a traceback).
"""

from __future__ import annotations

import logging
import zlib
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from jobql import metrics
from jobql.access import ALL_WORKSPACES, principal_of
from jobql.errors import BadUserInput, Forbidden
from jobql.resolvers import lineage
from jobql.resolvers.context import is_unavailable
from jobql.rest.endpoint import Backend, request_id_of

logger = logging.getLogger("jobql")

PATH = "/api/v1/lineage"
JSON_TYPES = ("application/json",)


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def _error(status: int, code: str, message: str, field: str | None = None) -> Response:
    metrics.note_error(code)
    extensions: dict[str, Any] = {"code": code}
    if field is not None:
        extensions["field"] = field
    body = {"errors": [{"message": message, "extensions": extensions}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _workspace(request: Request) -> str | None:
    """The `workspace` header; without it, the token's only workspace, if it names one."""
    header = request.headers.get("workspace")
    if header:
        return header
    covered = principal_of(request.scope).workspaces
    if len(covered) == 1 and ALL_WORKSPACES not in covered:
        return next(iter(covered))
    return None


async def _body(request: Request, limit: int) -> bytes:
    """The body, decompressed, counted against JOBQL_MAX_BODY_BYTES as it arrives (a chunked
    body declares no length) and again once inflated."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise _Refused(
            400,
            "INVALID_EVENT",
            f"Content-Type must be application/json, got {media or 'none'!r}.",
            "Content-Type",
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise _Refused(
            400,
            "INVALID_EVENT",
            f"Content-Encoding must be gzip or identity, got {encoding!r}.",
            "Content-Encoding",
        )
    too_large = _Refused(
        413, "PAYLOAD_TOO_LARGE", f"The request body is larger than {limit} bytes."
    )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    raw = b"".join(chunks)
    if encoding == "identity":
        return raw
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
        if len(body) > limit or inflater.unconsumed_tail:
            raise too_large
        body += inflater.flush()
        if not inflater.eof:
            raise zlib.error("truncated")
    except zlib.error:
        raise _Refused(400, "INVALID_EVENT", "The body is not valid gzip.", "body") from None
    return body


def routes(backend: Backend, max_body_bytes: int) -> list[Route]:
    async def post_lineage(request: Request) -> Response:
        try:
            body = await _body(request, max_body_bytes)
            try:
                event = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise _Refused(
                    400, "INVALID_EVENT", f"The body is not JSON: {exc}.", "body"
                ) from None
            async with backend.context(request, _workspace(request)) as ctx:
                result = await lineage.record_event(ctx, event)
        except _Refused as exc:
            return _logged(request, _error(exc.status, exc.code, exc.message, exc.field), exc)
        except lineage.InvalidEvent as exc:
            return _logged(request, _error(400, "INVALID_EVENT", exc.message, exc.field), exc)
        except lineage.InstanceIdTaken as exc:
            return _logged(request, _error(409, exc.code, exc.message, exc.field), exc)
        except BadUserInput as exc:  # the workspace's name
            return _logged(request, _error(400, "INVALID_EVENT", exc.message, "workspace"), exc)
        except Forbidden as exc:
            return _logged(request, _error(403, exc.code, exc.message), exc)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as exc:
            if is_unavailable(exc):
                message = "The database is unavailable; try again."
                return _logged(request, _error(503, "SERVICE_UNAVAILABLE", message), exc)
            logger.exception("POST %s failed (request id %s)", PATH, request_id_of(request))
            return _error(500, "INTERNAL", "The event could not be stored (an internal error).")
        return Response(
            orjson.dumps(result.to_json()), status_code=201, media_type="application/json"
        )

    return [Route(PATH, post_lineage, methods=["POST"], name="openlineage_post_lineage")]


def _logged(request: Request, response: Response, exc: Exception) -> Response:
    logger.info(
        "POST %s answered %d (request id %s): %s",
        PATH,
        response.status_code,
        request_id_of(request),
        exc,
    )
    return response
