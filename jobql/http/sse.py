"""GraphQL over Server-Sent Events, graphql-sse's "distinct connections" mode (npm `graphql-sse`):
`POST /graphql/stream` for clients and proxies that cannot do WebSockets.

One request is one operation (any type): a JSON body `{query, variables, operationName,
extensions}` with `Accept: text/event-stream`, the token and workspace in the usual headers. The
answer is `200 text/event-stream`: one `event: next` per result (`data:` the result as JSON),
then `event: complete`. A comment line (`:`) goes out at once and every keep-alive interval.
Refused before streaming, as JSON: 400 for a body that is not a GraphQL request, 403 for a
workspace the token does not cover or an operation outside the allow-list, 406 without
`text/event-stream` in Accept, 413 for a body over the limit. A subscriber that falls behind gets
a last `next` whose error is `SUBSCRIBER_TOO_SLOW`, and the stream ends without `complete`
(graphql-sse clients treat that as a dropped connection); it resubscribes with its last cursor.
Every error entry answered, the refusals' and the streamed results' (a document that does not
parse or validate is answered in the stream), counts in `jobql_graphql_errors_total` by its
`extensions.code`, as /graphql's do.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.types import ExecutionResult

from jobql import metrics
from jobql.access import principal_of
from jobql.http.persisted import PersistedQueryError
from jobql.http.subscriptions import Runner, SharedResult, TooSlow, next_payload
from jobql.resolvers.context import DEFAULT_WORKSPACE, AsyncEngine, CursorCodec, RequestContext

PATH = "/graphql/stream"
EVENT_STREAM = "text/event-stream"
COMMENT = b":\n\n"
COMPLETE = b"event: complete\ndata:\n\n"
TOO_SLOW = {
    "message": "Subscriber fell behind: resubscribe with the cursor of the last event received.",
    "extensions": {"code": "SUBSCRIBER_TOO_SLOW"},
}


def _json_error(status: int, message: str, code: str) -> Response:
    metrics.note_error(code)  # counted by code, as /graphql's refusals are
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(orjson.dumps(body), status, media_type="application/json; charset=utf-8")


def _next(payload: dict[str, Any]) -> bytes:
    return b"event: next\ndata: " + orjson.dumps(payload) + b"\n\n"


def _encoded(result: ExecutionResult) -> bytes:
    if isinstance(result, SharedResult):  # a group's: encoded once for all its members
        return b"event: next\ndata: " + result.encoded() + b"\n\n"
    return _next(next_payload(result))


class GraphQLOverSSE:
    """The ASGI app of `PATH` (see the module docstring)."""

    def __init__(
        self,
        endpoint: Any,  # GraphQLEndpoint: its engine, cursors, persisted queries, limits, runner
    ) -> None:
        self.endpoint = endpoint

    @property
    def engine(self) -> AsyncEngine:
        return self.endpoint.engine  # type: ignore[no-any-return]

    @property
    def cursors(self) -> CursorCodec:
        return self.endpoint.cursors  # type: ignore[no-any-return]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        refusal, parsed = await self._admit(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        assert parsed is not None
        await self._stream(scope, receive, send, *parsed)

    async def _admit(
        self, request: Request
    ) -> tuple[
        Response | None, tuple[str, dict[str, Any] | None, str | None, RequestContext] | None
    ]:
        if request.method != "POST":
            response = _json_error(405, "POST a GraphQL request here.", "BAD_REQUEST")
            response.headers["allow"] = "POST"
            return response, None
        if EVENT_STREAM not in request.headers.get("accept", ""):
            return _json_error(406, f"Accept {EVENT_STREAM}.", "BAD_REQUEST"), None
        workspace = request.headers.get("workspace") or DEFAULT_WORKSPACE
        scopes = principal_of(request.scope).scopes_in(workspace)
        if not scopes:
            message = f"This token may not use workspace {workspace!r}."
            return _json_error(403, message, "FORBIDDEN"), None
        limit = self.endpoint.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            message = f"The request body is larger than {limit} bytes."
            return _json_error(413, message, "PAYLOAD_TOO_LARGE"), None
        body = await request.body()
        if len(body) > limit:
            message = f"The request body is larger than {limit} bytes."
            return _json_error(413, message, "PAYLOAD_TOO_LARGE"), None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _json_error(400, "The body is not valid UTF-8 JSON.", "BAD_REQUEST"), None
        query, variables = (
            (data.get("query"), data.get("variables")) if isinstance(data, dict) else (None, None)
        )
        operation_name = data.get("operationName") if isinstance(data, dict) else None
        extensions = data.get("extensions") if isinstance(data, dict) else None
        if (
            not isinstance(data, dict)
            or not (query is None or isinstance(query, str))
            or not (variables is None or isinstance(variables, dict))
            or not (operation_name is None or isinstance(operation_name, str))
            or not (extensions is None or isinstance(extensions, dict))
        ):
            message = 'Expected {"query": "...", "variables": {...}, "operationName": "..."}.'
            return _json_error(400, message, "BAD_REQUEST"), None
        try:
            query = self.endpoint.persisted.resolve(query, extensions)
        except PersistedQueryError as exc:
            return exc.response("application/json"), None
        if not query:
            return _json_error(400, "No query.", "BAD_REQUEST"), None
        context = RequestContext.open(
            self.engine, self.cursors, workspace, long_lived=True, scopes=scopes
        )
        return None, (query, variables, operation_name, context)

    async def _stream(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: RequestContext,
    ) -> None:
        writer = asyncio.current_task()
        assert writer is not None
        runner: Runner | None = self.endpoint.runner
        keepalive: float = self.endpoint.live_limits.keepalive

        def cut() -> None:  # the writer may be stuck sending to a client that reads nothing
            writer.cancel()

        async def watch_disconnect() -> None:
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    writer.cancel()
                    return

        async def ping() -> None:
            while True:
                await asyncio.sleep(keepalive)
                await send({"type": "http.response.body", "body": COMMENT, "more_body": True})

        watcher = asyncio.create_task(watch_disconnect())
        pinger = asyncio.create_task(ping()) if keepalive else None
        complete = True
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),  # proxies: do not buffer the stream
                    ],
                }
            )
            await send({"type": "http.response.body", "body": COMMENT, "more_body": True})
            if runner is None:
                source = await self.endpoint.schema.stream(
                    query,
                    variable_values=variables,
                    context_value=context,
                    operation_name=operation_name,
                )
            else:
                source = runner.stream(query, variables, operation_name, context, on_too_slow=cut)
            try:
                async for result in source:
                    chunk = _encoded(result)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    metrics.DELIVERED_SSE.inc()
                    if result.errors:  # a bad document's, a refused subscription's, ...
                        metrics.note_errors([error.formatted for error in result.errors])
            except TooSlow:
                complete = False
                metrics.note_error("SUBSCRIBER_TOO_SLOW")
                chunk = _next({"data": None, "errors": [TOO_SLOW]})
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        send({"type": "http.response.body", "body": chunk, "more_body": True}), 5
                    )
            finally:
                with contextlib.suppress(Exception):
                    await source.aclose()
            if complete:
                await send({"type": "http.response.body", "body": COMPLETE, "more_body": False})
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            # The client went away, or fell behind while the writer waited: end here.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            watcher.cancel()
            if pinger is not None:
                pinger.cancel()
            await context.close()


__all__ = ["PATH", "GraphQLOverSSE"]
