"""What each finished HTTP request feeds: its Prometheus metrics, its request log line, and the
name and attributes of its OpenTelemetry server span.

The middleware sits in front of everything that may answer (tokens, admission, body limits, the
fast lane), so that those answers count too. It puts a `RequestRecord` in `jobql.metrics.CURRENT`
for the request; the layers below note on it what only they know (workspace, operation, how each
root field was read, APQ, the error codes they answered). Labels stay bounded: routes are route
templates, operations are capped (`jobql.metrics.operation_label`), codes are jobql's own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobql import metrics

# Paths that keep their name when no route matched them (answered before routing).
GRAPHQL_PATHS = ("/graphql", "/graphql/stream")
KNOWN_PATHS = (*GRAPHQL_PATHS, "/metrics", "/livez", "/readyz", "/healthz")
UNROUTED = "unrouted"
NOT_GRAPHQL = "none"


class Telemetry:
    """ASGI middleware (see the module docstring). `count`: Prometheus metrics (JOBQL_METRICS);
    `log`: a line per request (JOBQL_LOG_FORMAT=json with JOBQL_ACCESS_LOG); `tracing`: name the
    request's span after its route and give it the operation."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        count: bool = True,
        log: logging.Logger | None = None,
        request_id: Callable[[Scope], str] | None = None,
        tracing: bool = False,
    ) -> None:
        self.app = app
        self.count = count
        self.log = log
        self.request_id = request_id
        self.tracing = tracing
        # Label children by label values: `labels()` takes a lock and builds a key each time.
        self._requests: dict[tuple[str, ...], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = metrics.RequestRecord()
        token = metrics.CURRENT.set(record)
        started = time.perf_counter()
        status = 500  # unless an answer started: an exception, or a client that left
        # The server span ends with the answer's last body: name it when the answer starts.
        span = trace.get_current_span() if self.tracing else None

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if span is not None:
                    _describe(span, scope, record)
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics.CURRENT.reset(token)
            self._finish(scope, record, status, time.perf_counter() - started, span)

    def _finish(
        self,
        scope: Scope,
        record: metrics.RequestRecord,
        status: int,
        seconds: float,
        span: trace.Span | None,
    ) -> None:
        route = route_of(scope)
        strategy = record.strategy()
        operation = operation_of(record, route)
        if self.count:
            if status >= 500:
                outcome = "server_error"
            elif status >= 400:
                outcome = "client_error"
            else:
                outcome = "graphql_error" if record.errors else "success"
            key = (route, operation, strategy, outcome)
            requests = self._requests.get(key)
            if requests is None:
                requests = self._requests[key] = metrics.REQUESTS.labels(*key)
            requests.observe(seconds)
            for code in record.errors:
                metrics.ERRORS.labels(code).inc()
            if record.persisted is not None:
                metrics.PERSISTED_QUERIES.labels(record.persisted).inc()
        if self.log is not None and self.log.isEnabledFor(logging.INFO):
            fields: dict[str, Any] = {
                "request_id": self.request_id(scope) if self.request_id else None,
                "method": scope["method"],
                "route": route,
                "path": scope["path"],  # never the query string: GET variables live there
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "workspace": record.workspace,
                "operation": operation,
                "strategy": strategy,
            }
            if span is not None and span.get_span_context().is_valid:
                fields["trace_id"] = format(span.get_span_context().trace_id, "032x")
            self.log.info(
                "%s %s %d %.1f ms", scope["method"], route, status, seconds * 1000, extra=fields
            )


def _describe(span: trace.Span, scope: Scope, record: metrics.RequestRecord) -> None:
    if not span.is_recording():
        return
    route = route_of(scope)
    span.update_name(f"{scope['method']} {route}")
    span.set_attribute("http.route", route)
    operation = operation_of(record, route)
    if operation != NOT_GRAPHQL:
        span.set_attribute("graphql.operation.name", operation)
        span.set_attribute("jobql.strategy", record.strategy())


def operation_of(record: metrics.RequestRecord, route: str) -> str:
    if record.operation is not None:
        return record.operation
    return metrics.ANONYMOUS if route in GRAPHQL_PATHS else NOT_GRAPHQL


def route_of(scope: Scope) -> str:
    """The route template that served the request (bounded, unlike paths)."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path or "/"
    raw = scope.get("path", "")
    return raw if raw in KNOWN_PATHS else UNROUTED


__all__ = ["Telemetry", "route_of"]
