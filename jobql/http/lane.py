"""The fast lane: `POST /graphql` of a document the fast path knows, answered before routing."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.http import process_result

from jobql import metrics
from jobql.access import Access
from jobql.http.endpoint import JSON, GraphQLEndpoint, negotiate
from jobql.http.persisted import VARY, PersistedQueryError
from jobql.resolvers.context import DEFAULT_WORKSPACE, RequestContext


class FastLane:
    """ASGI middleware: `POST /graphql` of a document the fast path knows, answered without
    routing, Starlette's request objects or Strawberry's view.

    It answers only what it can answer exactly as the full stack would: a JSON body within the
    size limit, an acceptable media type, a valid token for the workspace, a query the fast path
    serves without an error. Anything else (including every error) goes on to the full stack
    with the body replayed, so its checks and error answers stay the only ones. The admission
    limit is the middleware outside this one; authentication, workspace scopes, the allow-list
    and the request timeout are applied here as in `GraphQLEndpoint`."""

    def __init__(self, app: ASGIApp, endpoint: GraphQLEndpoint, access: Access) -> None:
        self.app = app
        self.endpoint = endpoint
        self.access = access
        self.schema: Any = endpoint.schema  # jobql.schema.Schema (it has execute_fast)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != "/graphql"
            or not getattr(self.schema, "fast_path", False)
        ):
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in LANE_HEADERS:
                if name in headers:  # a repeated header: the full stack decides
                    await self.app(scope, receive, send)
                    return
                headers[name] = value
        if b"jobql-lsn" in headers:
            await self.app(scope, receive, send)
            return
        length = headers.get(b"content-length", b"")
        media_type = (
            negotiate(headers[b"accept"].decode("latin-1")) if b"accept" in headers else JSON
        )
        if (
            media_type is None
            or not length.isdigit()
            or int(length) > self.endpoint.max_body_bytes
            or headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
            != b"application/json"
        ):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        answer = await self._answer(headers, body, media_type)
        if answer is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        status, payload, extra = answer
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(payload)).encode()),
                    (b"content-type", f"{media_type}; charset=utf-8".encode()),
                    *extra,
                    (b"vary", VARY_BYTES),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _answer(
        self, headers: dict[bytes, bytes], body: bytes, media_type: str
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """Status, body and extra headers of the answer, or None: the full stack answers."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(request, dict) or not request.keys() <= LANE_KEYS:
            return None
        query = request.get("query")
        variables = request.get("variables")
        operation_name = request.get("operationName")
        extensions = request.get("extensions")
        if (
            not isinstance(query, str | None)
            or not isinstance(variables, dict | None)
            or not isinstance(operation_name, str | None)
            or not isinstance(extensions, dict | None)
        ):
            return None
        authorization = headers.get(b"authorization")
        principal = self.access.authenticate(
            None if authorization is None else authorization.decode("latin-1")
        )
        if principal is None:
            return None
        workspace = headers.get(b"workspace", b"").decode("latin-1") or DEFAULT_WORKSPACE
        scopes = principal.scopes_in(workspace)
        if not scopes:
            return None
        record = metrics.current()
        if record is not None:
            record.note_request(workspace, operation_name, extensions)
        try:
            query = self.endpoint.persisted.resolve(query, extensions)
        except PersistedQueryError:
            return None
        endpoint = self.endpoint
        context = RequestContext.open(endpoint.engine, endpoint.cursors, workspace, scopes=scopes)
        try:
            async with asyncio.timeout(endpoint.timeout):
                result = await self.schema.execute_fast(query, variables, context, operation_name)
        except TimeoutError:
            return 504, bytes(endpoint.timeout_response(media_type).body), []
        finally:
            await context.close()
        if result is None or result.errors:
            return None
        return 200, endpoint.encode_json(process_result(result)), []


# The request headers FastLane reads (ASGI lower-cases header names). A read-your-writes
# position (JobQL-LSN) is the full stack's to honour.
LANE_HEADERS = frozenset(
    {b"accept", b"authorization", b"content-length", b"content-type", b"workspace", b"jobql-lsn"}
)
LANE_KEYS = frozenset({"query", "variables", "operationName", "extensions"})
VARY_BYTES = VARY.encode()


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` that hands out the messages already read, then the rest."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
