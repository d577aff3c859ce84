"""What every source endpoint shares: its request context, its error replies, request ids,
JSON and XML bodies.

A handler reads its parameters, opens a `RequestContext` for the workspace its source names (the
same context GraphQL requests get), calls the resolvers, and closes the context. Whatever goes
wrong becomes the source's own error form: a refused parameter (`BadUserInput`, from the
parameter readers or the resolvers) its "invalid parameter" reply, a `NotFound` its "not found"
reply, anything unexpected a logged, masked 500 (never a traceback).

Every request gets a fresh id (`request_id_of`), and every reply of a source route carries it
in `X-Request-Id`, errors and Starlette's own 405 included: the header the Huawei SDKs put in
their exceptions' `request_id`. A body that names its request (Alibaba's `RequestId`) names the
same id. Error replies are logged with it, so that an id a client quotes finds its log line.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import orjson
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobql import metrics
from jobql.access import principal_of
from jobql.errors import BadUserInput, Forbidden, NotFound
from jobql.resolvers.context import (
    LSN_HEADER,
    AsyncEngine,
    BadLsn,
    CursorCodec,
    RequestContext,
    capture_commit_lsns,
    has_replicas,
    parse_lsn,
    written_lsn,
)
from jobql.resolvers.validation import text

logger = logging.getLogger("jobql")

JSON = "application/json"
XML = "application/xml"
REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_NAME = REQUEST_ID_HEADER.lower().encode()
# Where a request's id lives: its scope's `state` (what `request.state` reads), one per request.
_REQUEST_ID_KEY = "jobql_request_id"
# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class Backend:
    """What the endpoints are built with: the app's engine and cursor codec, the time zone of
    the sources' local times and "today" (JOBQL_TIMEZONE), and the clock (a UTC `now`)."""

    engine: AsyncEngine
    cursors: CursorCodec
    zone: tzinfo
    now: Callable[[], datetime]

    @asynccontextmanager
    async def context(
        self,
        request: Request,
        workspace: str | None,
        *,
        parameter: str = "workspace",
        header: str | None = None,
    ) -> AsyncIterator[RequestContext]:
        """The request's context in `workspace` (None or empty: `default`), closed at the end;
        `parameter` names where the workspace came from, for messages. Where the workspace
        comes from the request itself (Namespace, projectName), a `workspace` header that names
        another one is refused: the header is what gateways and access control look at."""
        chosen = workspace or "default"
        if header is not None and parameter != "workspace" and header != chosen:
            raise BadUserInput(
                f"The workspace header {header!r} does not match {parameter} {chosen!r}."
            )
        record = metrics.current()
        if record is not None:  # the request's log line names it
            record.workspace = chosen
        scopes = principal_of(request.scope).scopes_in(text(parameter, chosen))
        if not scopes:
            raise Forbidden(f"This token may not use workspace {chosen!r}.")
        ctx = RequestContext.open(
            self.engine, self.cursors, text(parameter, workspace), scopes=scopes
        )
        if request.method in ("GET", "HEAD"):
            # A source API's GET only reads: a read replica may answer it (read-your-writes:
            # not before it has replayed the JobQL-LSN the client sent).
            sent = request.headers.get(LSN_HEADER)
            try:
                ctx.min_lsn = None if sent is None else parse_lsn(sent)
            except BadLsn as exc:
                await ctx.close()
                raise BadUserInput(f"JobQL-LSN: {exc}") from exc
            ctx.read_only()
        try:
            yield ctx
        finally:
            await ctx.close()


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """What a source answers when something went wrong: HTTP status, its code and message."""

    status: int
    code: str | int
    message: str


class ApiError(Exception):
    """Raised by a handler to answer with `reply` in its source's error form."""

    def __init__(self, reply: ErrorReply) -> None:
        super().__init__(reply.message)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class ErrorForms:
    """How one source API says what went wrong."""

    render: Callable[[Request, ErrorReply], Response]
    # A parameter it refuses; the argument says which one and why.
    invalid: Callable[[str], ErrorReply]
    not_found: ErrorReply
    internal: ErrorReply
    # A workspace the caller's token does not cover.
    forbidden_code: str | int = "Forbidden"


Handler = Callable[[Backend, Request], Awaitable[Response]]


def endpoint(
    backend: Backend, handler: Handler, errors: ErrorForms
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint: `handler` with the backend, its failures in the source's form."""

    replicas = has_replicas(backend.engine)

    async def run(request: Request) -> Response:
        try:
            if not replicas:
                return await handler(backend, request)
            with capture_commit_lsns():
                response = await handler(backend, request)
                lsn = written_lsn()
            if lsn is not None:  # where its writes committed, for a read to send back
                response.headers[LSN_HEADER] = lsn
            return response
        except ApiError as exc:
            error, detail = exc.reply, exc.reply.message
        except BadUserInput as exc:
            error, detail = errors.invalid(exc.message), exc.message
        except NotFound as exc:
            error, detail = errors.not_found, exc.message
        except Forbidden as exc:
            error = ErrorReply(403, errors.forbidden_code, exc.message)
            detail = exc.message
        except Exception:
            response = errors.render(request, errors.internal)
            logger.exception(
                "REST %s %s failed (request id %s)",
                request.method,
                request.url.path,
                _reply_id(request, response),
            )
            return response
        response = errors.render(request, error)
        logger.info(
            "REST %s %s answered %d %s (request id %s): %s",
            request.method,
            request.url.path,
            error.status,
            error.code,
            _reply_id(request, response),
            detail,
        )
        return response

    return run


def _reply_id(request: Request, response: Response) -> str:
    """The id the reply carries: the request's, unless the reply set its own header."""
    return response.headers.get(REQUEST_ID_HEADER) or request_id_of(request)


class SourceRoute(Route):
    """A source endpoint's route: each request gets a fresh id, and every reply of the route
    (the handler's, its error forms', Starlette's 405 for another method) carries it in
    `X-Request-Id`, unless the handler set that header itself."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        _scope_request_id(scope)  # RequestIds (in front of routing) may have made it already

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers[REQUEST_ID_HEADER] = _scope_request_id(scope)
            await send(message)

        if self.methods and scope["method"] not in self.methods:
            # Starlette's own 405, answered here: inside an app, Route raises it for the app's
            # exception middleware to send, past this route's `send`.
            allow = {"Allow": ", ".join(sorted(self.methods))}
            response = PlainTextResponse("Method Not Allowed", status_code=405, headers=allow)
            await response(scope, receive, send_with_id)
            return
        await super().handle(scope, receive, send_with_id)


class RequestIds:
    """ASGI middleware, in front of everything that may answer before routing (tokens, the
    admission limit, body limits, GraphQL's fast lane): every HTTP reply carries the request's
    id in `X-Request-Id`, so that a 401, 503 or 413 names its request too, and the request's
    log line (`jobql.access`) names the same id. A `SourceRoute` behind it uses the same id.
    A client's own `X-Request-Id` is not taken: every request gets a fresh one.

    It is on the fast lane's path, so a reply costs one header appended to the start message
    (no `MutableHeaders`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        identifier = _scope_request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                # ASGI header names are lower-case bytes (Starlette writes them so).
                if not any(name == _REQUEST_ID_NAME for name, _ in headers):
                    message["headers"] = [*headers, (_REQUEST_ID_NAME, identifier.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


def with_request_ids(route: Route) -> SourceRoute:
    """`route` as a `SourceRoute` (same path, endpoint, methods and name)."""
    return SourceRoute(
        route.path,
        route.endpoint,
        methods=None if route.methods is None else sorted(route.methods),
        name=route.name,
    )


def request_id_of(request: Request) -> str:
    """The id of this request: the one its reply's `X-Request-Id` carries, and so the one a
    body's `RequestId` must name. Made on first use where no `SourceRoute` made it."""
    return _scope_request_id(request.scope)


def set_request_id(request: Request, value: str) -> None:
    """Make `value` this request's id (its reply's header follows)."""
    request.scope.setdefault("state", {})[_REQUEST_ID_KEY] = value


def _scope_request_id(scope: Scope) -> str:
    state = scope.setdefault("state", {})
    found = state.get(_REQUEST_ID_KEY)
    if not isinstance(found, str):
        found = state[_REQUEST_ID_KEY] = request_id()
    return found


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


def xml_response(root: str, body: dict[str, Any], status: int = 200) -> Response:
    return Response(to_xml(root, body), status_code=status, media_type=XML)


def to_xml(root: str, body: dict[str, Any]) -> bytes:
    """`body` as Alibaba's XML replies write it: one element per field under `root`, a list as
    its element repeated, booleans as `true`/`false`, characters XML cannot carry as U+FFFD."""
    element = ET.Element(root)
    _fill(element, body)
    ET.indent(element)
    text = ET.tostring(element, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode()


def _fill(element: ET.Element, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            child = ET.SubElement(element, key)
            if isinstance(item, dict):
                _fill(child, item)
            elif isinstance(item, bool):
                child.text = "true" if item else "false"
            else:
                child.text = _NOT_XML.sub("\ufffd", str(item))


def request_id() -> str:
    """A new request id, in the Alibaba replies' form: an upper-case random (version 4) UUID
    (any string will do for the Huawei SDKs). Made by hand from 16 random bytes, as `uuid4()`
    makes it, for a third of its cost: every reply carries one, the fast lane's too."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    text = raw.hex().upper()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def present(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields that have a value: what a stored instance lacks is left out of a reply."""
    return {key: value for key, value in fields.items() if value is not None}
