"""graphql-transport-ws (npm `graphql-ws`) on `/graphql`: Strawberry's protocol handler with
jobql's connection_init, allow-list, keep-alive pings and the shared subscription runner.

- `connection_init`'s payload carries the token (`Authorization: "Bearer ..."`, what a browser
  cannot put on a WebSocket handshake) and the workspace (`workspace`); without them, the
  handshake's `Authorization` and `workspace` headers count. No valid token: close 4401
  Unauthorized; a workspace the token does not cover: close 4403 Forbidden (graphql-ws's codes
  for refused connections; its clients do not retry them).
- Allow-list mode: only the allow-list's operations run; any other is refused with an `error`
  message (`PERSISTED_QUERY_NOT_ALLOWED`).
- Every `keepalive` seconds the server sends `ping` (graphql-ws clients answer `pong`).
- A subscriber that falls behind is closed with 4013 (`subscriptions.CLOSE_TOO_SLOW`), or cut
  when even the close frame cannot be sent within `CLOSE_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from graphql import GraphQLError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.utils.aio import aclosing

from jobql import metrics
from jobql.http.persisted import PersistedQueryError
from jobql.http.subscriptions import CLOSE_TOO_SLOW, TOO_SLOW_REASON, SharedResult, TooSlow
from jobql.resolvers.context import RequestContext

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY_INITS = 4429
CLOSE_TIMEOUT = 5.0


class TransportWS(BaseGraphQLTransportWSHandler[RequestContext, None]):
    """The protocol over one connection (see the module docstring)."""

    view: Any  # jobql.http.endpoint.GraphQLEndpoint (which imports this module)
    _main: asyncio.Task[Any] | None = None
    _keepalive: asyncio.Task[None] | None = None
    _closing: asyncio.Task[None] | None = None

    async def handle(self) -> None:
        self._main = asyncio.current_task()
        try:
            await super().handle()
        finally:
            if self._keepalive is not None:
                self._keepalive.cancel()

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await self.websocket.close(CLOSE_BAD_REQUEST, "Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(CLOSE_TOO_MANY_INITS, "Too many initialisation requests")
            return
        self.connection_init_received = True
        refused = self.view.admit(self.websocket, payload, self.context)
        if refused is not None:
            await self.websocket.close(*refused)
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        keepalive = self.view.live_limits.keepalive
        if keepalive:
            self._keepalive = asyncio.create_task(self._ping(keepalive))

    async def _ping(self, every: float) -> None:
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(every)
                await self.send_message({"type": "ping"})

    async def run_operation(self, operation: Operation[RequestContext, None]) -> None:
        try:
            try:
                query = self.view.persisted.resolve(operation.query, None)
            except PersistedQueryError as exc:
                error = GraphQLError(exc.message, extensions={"code": exc.code})
                await operation.send_initial_errors([error])
                return
            runner = self.view.runner
            if runner is None:  # an endpoint without the app's broker: no live events
                source = await self.schema.stream(
                    query,
                    variable_values=operation.variables,
                    context_value=self.context,
                    operation_name=operation.operation_name,
                )
            else:
                source = runner.stream(
                    query,
                    operation.variables,
                    operation.operation_name,
                    self.context,
                    on_too_slow=self._too_slow,
                    send_now=lambda result: self._send_now(operation, result),
                )
            async with aclosing(source):
                await self._send_result_stream(operation, source)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except TooSlow:
            self._too_slow()
        except (_OperationStreamClosed, WebSocketDisconnected):
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    def _send_now(self, operation: Operation[RequestContext, None], result: SharedResult) -> bool:
        """A group's result for this operation, sent at once where the server can (see
        `subscriptions.Member`): True when it went (or the operation is complete: then it is
        dropped, as the stream would drop it)."""
        if operation.completed:
            return True
        # Counted in jobql_live_delivered_total by the group, once per result: an increment is
        # a system call per delivery in multi-process metrics (prometheus-client's pid check).
        return bool(
            self.websocket.send_text_now(  # type: ignore[attr-defined]
                b'{"id":%b,"type":"next","payload":%b}'
                % (orjson.dumps(operation.id), result.encoded())
            )
        )

    async def _send_result_stream(
        self, operation: Operation[RequestContext, None], result_source: Any
    ) -> None:
        """Strawberry's, except that a group's result goes out as its payload encoded once."""
        first = True
        async for result in result_source:
            if isinstance(result, SharedResult):
                if operation.completed:
                    return
                await self.websocket.send_text(  # type: ignore[attr-defined]
                    b'{"id":%b,"type":"next","payload":%b}'
                    % (orjson.dumps(operation.id), result.encoded())
                )
                metrics.DELIVERED_WS.inc()
            elif first and isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
                return
            elif isinstance(result, ExecutionResult):
                await operation.send_next(result)
                metrics.DELIVERED_WS.inc()
            else:
                await self._reject_incremental_delivery(operation)
                return
            first = False

    def _too_slow(self) -> None:
        # The operation's task may be stuck sending to the subscriber: close from another task.
        if self._closing is None:
            self._closing = asyncio.create_task(self._close_slow())

    async def _close_slow(self) -> None:
        try:
            await asyncio.wait_for(
                self.websocket.close(CLOSE_TOO_SLOW, TOO_SLOW_REASON), CLOSE_TIMEOUT
            )
        except Exception:
            # Not even the close frame goes out (the client reads nothing): end the connection.
            if self._main is not None:
                self._main.cancel()


__all__ = [
    "CLOSE_BAD_REQUEST",
    "CLOSE_FORBIDDEN",
    "CLOSE_TOO_SLOW",
    "CLOSE_UNAUTHORIZED",
    "TransportWS",
]
