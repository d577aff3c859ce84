"""The GraphQL HTTP endpoint: Strawberry's ASGI view, following the GraphQL-over-HTTP spec.

- `Accept: application/graphql-response+json` gets that media type, and a request that fails
  before execution (parse, validation, bad variables) gets a 4xx. `application/json` (or no
  Accept header) gets 200 with `errors`, as older clients expect.
- Transport errors (bad JSON, wrong method or content type) are JSON error bodies, never text.
- Each request gets its own context (workspace, connection, loaders), closed when it ends.
- `GET /graphql` from a browser serves GraphiQL from the app's own static files (no CDN).
- Automatic persisted queries and the cache headers of GET queries: see `persisted.py`.
- WebSocket upgrades speak graphql-transport-ws (`ws.py`); subscriptions run through the
  shared runner (`subscriptions.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from importlib import resources
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected as StarletteDisconnected
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from jobql import metrics
from jobql.access import ANONYMOUS, Access, principal_if_any, principal_of
from jobql.http.persisted import VARY, HttpCache, PersistedQueries, PersistedQueryError
from jobql.http.subscriptions import LiveLimits, Runner
from jobql.http.ws import CLOSE_BAD_REQUEST, CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, TransportWS
from jobql.http.wsframes import SEND_TEXT_NOW
from jobql.resolvers.context import (
    DEFAULT_WORKSPACE,
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

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header; None when we can serve none it accepts."""
    if not accept:
        return JSON
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        media, _, params = item.strip().partition(";")
        media = media.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 1.0  # a malformed weight does not refuse the type
        if quality <= 0:
            continue
        if media == GRAPHQL_RESPONSE_JSON:
            chosen = GRAPHQL_RESPONSE_JSON
        elif media in (JSON, "application/*", "*/*"):
            chosen = JSON
        else:
            continue
        # Highest quality wins; among equals, the first listed.
        candidate = (quality, -position, chosen)
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[2]


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """graphql-transport-ws speaks in text frames; our encoder makes bytes for HTTP."""

    async def send_json(self, message: Any) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except (WebSocketDisconnect, StarletteDisconnected) as exc:
            raise WebSocketDisconnected from exc

    def send_text_now(self, message: bytes) -> bool:
        """A message already encoded, sent without waiting where the server offers it
        (`wsframes.SEND_TEXT_NOW`); False when it was not sent."""
        send = self.ws.scope.get("extensions", {}).get(SEND_TEXT_NOW)
        return send is not None and bool(send(message))

    async def send_text(self, message: bytes) -> None:
        """A message already encoded (UTF-8 JSON)."""
        try:
            await self.ws.send_text(message.decode())
        except (WebSocketDisconnect, StarletteDisconnected) as exc:
            # StarletteDisconnected: the connection was closed meanwhile (a client that left).
            raise WebSocketDisconnected from exc


class GraphQLEndpoint(GraphQL[RequestContext, None]):
    websocket_adapter_class = TextWebSocketAdapter
    graphql_transport_ws_handler_class = TransportWS
    # Set by the app: the subscription runner (None: subscriptions are refused).
    runner: Runner | None = None

    def __init__(
        self,
        schema: Any,
        engine: AsyncEngine,
        cursors: CursorCodec,
        *,
        graphiql: bool = True,
        max_body_bytes: int = 1_048_576,
        timeout: float = 10.0,
        persisted: PersistedQueries | None = None,
        cache_max_age: int = 5,
        access: Access | None = None,
        live_limits: LiveLimits | None = None,
    ) -> None:
        self.live_limits = live_limits or LiveLimits()
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            allow_queries_via_get=True,
            # graphql-transport-ws only: the legacy graphql-ws protocol has no connection_init
            # payload rules here.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=self.live_limits.max_per_connection,
        )
        self.access = access
        self.engine = engine
        # Read replicas serve queries: writes report where they committed (read-your-writes).
        self.replicas = has_replicas(engine)
        self.cursors = cursors
        self.max_body_bytes = max_body_bytes
        self.timeout = timeout
        self.persisted = persisted or PersistedQueries()
        self.http_cache = HttpCache(cache_max_age)
        self.graphiql_html = (
            resources.files("jobql").joinpath("static/graphiql/index.html").read_text("utf-8")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # One context per connection (graphql-transport-ws): it holds no database connection
            # and caches no rows between operations. Its workspace and scopes are decided by
            # connection_init (`admit`); until then it may do nothing.
            socket = WebSocket(scope, receive=receive, send=send)
            context = RequestContext.open(
                self.engine,
                self.cursors,
                socket.headers.get("workspace"),
                long_lived=True,
                scopes=frozenset(),
            )
            try:
                await self.run(socket, context=context)
            finally:
                await context.close()
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        media_type = negotiate(request.headers.get("accept"))
        wants_ide = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if media_type is None and not wants_ide:
            response: Response = error_response(
                406, f"Accept {JSON} or {GRAPHQL_RESPONSE_JSON}.", JSON
            )
            await response(scope, receive, send)
            return
        request.state.media_type = media_type or JSON
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send, request.state.media_type)
            return
        request = Request(scope, receive=_limited(receive, self.max_body_bytes))
        request.state.media_type = media_type or JSON
        workspace = request.headers.get("workspace") or DEFAULT_WORKSPACE
        scopes = principal_of(scope).scopes_in(workspace)
        if not scopes and not wants_ide:
            forbidden = error_response(
                403,
                f"This token may not use workspace {workspace!r}.",
                request.state.media_type,
                code="FORBIDDEN",
            )
            await forbidden(scope, receive, send)
            return
        context = RequestContext.open(self.engine, self.cursors, workspace, scopes=scopes)
        sent_lsn = request.headers.get(LSN_HEADER)
        if sent_lsn is not None:
            try:
                context.min_lsn = parse_lsn(sent_lsn)
            except BadLsn as exc:
                await context.close()
                bad = error_response(
                    400, f"JobQL-LSN: {exc}", request.state.media_type, code="BAD_USER_INPUT"
                )
                await bad(scope, receive, send)
                return
        record = metrics.current()
        if record is not None:
            record.workspace, record.strategies = workspace, context.strategies
        try:
            # Cancelling the request cancels its database statement; the context returns the
            # connection to the pool.
            with capture_commit_lsns() if self.replicas else contextlib.nullcontext():
                response = await asyncio.wait_for(self.run(request, context=context), self.timeout)
        except BodyTooLarge:
            response = self._too_large_response(request.state.media_type)
        except TimeoutError:
            response = self.timeout_response(request.state.media_type)
        except HTTPException as exc:
            status = exc.status_code
            if request.method == "GET" and "not allowed when using GET" in exc.reason:
                status = 405  # GraphQL-over-HTTP: a mutation over GET is a method error
            response = error_response(status, exc.reason, request.state.media_type)
            if status == 405:
                response.headers["allow"] = "GET, POST"
        except PersistedQueryError as exc:
            response = exc.response(request.state.media_type)
        finally:
            await context.close()
        response = self.http_cache.apply(request, response)
        await response(scope, receive, send)

    def admit(
        self, websocket: Any, payload: dict[str, Any], context: RequestContext
    ) -> tuple[int, str] | None:
        """graphql-transport-ws connection_init: who is calling, in which workspace (see ws.py).
        None: admitted (`context` now serves that workspace); else the close code and reason."""
        scope = websocket.ws.scope
        headers = websocket.ws.headers
        token = payload.get("Authorization", payload.get("authorization"))
        if token is not None and not isinstance(token, str):
            return CLOSE_BAD_REQUEST, "Authorization must be a string: Bearer <token>"
        open_access = self.access is None or self.access.open
        if token is not None:
            principal = ANONYMOUS if self.access is None else self.access.authenticate(token)
        else:
            principal = principal_if_any(scope) or (ANONYMOUS if open_access else None)
        if principal is None:
            return CLOSE_UNAUTHORIZED, "Unauthorized"
        workspace = payload.get("workspace")
        if workspace is not None and not isinstance(workspace, str):
            return CLOSE_BAD_REQUEST, "workspace must be a string"
        workspace = workspace or headers.get("workspace") or DEFAULT_WORKSPACE
        scopes = principal.scopes_in(workspace)
        if not scopes:
            return CLOSE_FORBIDDEN, "Forbidden"
        context.rebind(workspace, scopes)
        return None

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = getattr(request.state, "media_type", JSON)
        return sub_response

    def timeout_response(self, media_type: str) -> Response:
        return error_response(
            504,
            f"The request took longer than {self.timeout:g} s and was cancelled.",
            media_type,
            code="TIMEOUT",
        )

    def _too_large_response(self, media_type: str) -> Response:
        return error_response(
            413,
            f"The request body is larger than {self.max_body_bytes} bytes.",
            media_type,
            code="PAYLOAD_TOO_LARGE",
        )

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, media: str) -> None:
        await self._too_large_response(media)(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> Response:
        # The same URL answers JSON to other Accept headers: no cache may hand this page to them.
        return HTMLResponse(self.graphiql_html, headers={"vary": VARY})

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A GET by persisted-query hash has no `query` either, and wants JSON even with */*.
        return super().should_render_graphql_ide(request) and (
            "extensions" not in request.query_params
        )

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData):  # batches are refused before this
            record = metrics.current()
            if record is not None:
                record.note_operation(data.operation_name, data.extensions)
            data.query = self.persisted.resolve(data.query, data.extensions)
        return data

    def parse_json(self, data: str | bytes) -> Any:
        try:
            parsed = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise HTTPException(400, "The body is not valid UTF-8 JSON.") from exc
        except RecursionError as exc:  # [[[[... nested deeper than Python's JSON decoder goes
            raise HTTPException(400, "The JSON is nested too deeply.") from exc
        if not isinstance(parsed, (dict, list)):
            raise HTTPException(
                400, 'Expected a JSON object, such as {"query": "{ jobs { totalCount } }"}.'
            )
        return parsed

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        processed = process_result(result)
        request.state.no_errors = not result.errors  # what HttpCache may cache
        lsn = written_lsn()
        if lsn is not None:
            # Where this request's writes committed: sent back as JobQL-LSN, a read sees them.
            processed["extensions"] = {**(processed.get("extensions") or {}), "lsn": lsn}
        # Not executed at all (parse, validation or variable errors): no `data` entry.
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            processed.pop("data", None)
        return processed

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or JSON
        status = 200
        errors: list[Any] = (
            list(response_data.get("errors") or []) if isinstance(response_data, dict) else []
        )
        metrics.note_errors(errors)
        if errors and all(
            (error.get("extensions") or {}).get("code") == "SERVICE_UNAVAILABLE" for error in errors
        ):
            status = 503  # nothing but an unreachable database: let clients and balancers retry
        # Without a `data` entry the request failed before execution: a client error.
        if (
            media_type == GRAPHQL_RESPONSE_JSON
            and isinstance(response_data, dict)
            and "data" not in response_data
        ):
            status = 400
        response = Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or status,
            media_type=f"{media_type}; charset=utf-8",
        )
        response.headers.raw.extend(sub_response.headers.raw)
        lsn = written_lsn()
        if lsn is not None:
            response.headers[LSN_HEADER] = lsn
        return response


class BodyTooLarge(Exception):
    pass


def _limited(receive: Receive, limit: int) -> Receive:
    """`receive` that stops a body growing past `limit` (chunked bodies declare no length)."""
    seen = 0

    async def limited() -> Any:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return limited


def error_response(
    status: int, message: str, media_type: str, *, code: str = "BAD_REQUEST"
) -> Response:
    metrics.note_error(code)
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(
        orjson.dumps(body), status_code=status, media_type=f"{media_type}; charset=utf-8"
    )
