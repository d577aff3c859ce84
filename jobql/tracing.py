"""OpenTelemetry traces (off unless JOBQL_OTEL_EXPORTER is `otlp` or `console`).

A request's trace: the ASGI instrumentation's server span (named after its route by
`jobql.http.telemetry`, with the operation), continuing the caller's trace from `traceparent`
(the propagators of OTEL_PROPAGATORS; W3C trace context by default); under it the GraphQL
operation and one span per root field with its read strategy (`jobql.schema.telemetry`); under
those one span per SQL statement: asyncpg's instrumentation on PostgreSQL (both pools: the
compiled reads go straight to asyncpg), SQLAlchemy's on SQLite. Statement parameters and GraphQL
argument values are never recorded.

The standard OTEL_* variables apply: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (service
name `jobql` unless they name one), OTEL_TRACES_SAMPLER(_ARG), OTEL_EXPORTER_OTLP_* (endpoint,
headers, timeout, ...), OTEL_BSP_*, OTEL_PYTHON_ASGI_EXCLUDED_URLS (default: the health checks
and /metrics), OTEL_SDK_DISABLED.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.util.http import get_excluded_urls
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware import Middleware

# Probes and scrapes make no traces unless OTEL_PYTHON_ASGI_EXCLUDED_URLS says otherwise.
EXCLUDED_URLS = "/livez$,/readyz$,/healthz$,/metrics$"


def provider_from_settings(exporter: str) -> TracerProvider | None:
    """The process's tracer provider for JOBQL_OTEL_EXPORTER (None: tracing is off), also made
    the global one for any other instrumented library."""
    if exporter == "none" or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    attributes = {}
    if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        attributes[SERVICE_NAME] = "jobql"
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


class Tracing:
    """The instrumentation of one app: its middleware, and SQL spans for its engine; `close`
    undoes them (the instrumentors are process-wide)."""

    def __init__(self, provider: Any, engine: AsyncEngine) -> None:
        self.provider = provider
        self._instrumentor: AsyncPGInstrumentor | SQLAlchemyInstrumentor
        if engine.dialect.name == "postgresql":
            # Parameters are not captured (its default). Its constructor is not annotated.
            self._instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
            self._instrumentor.instrument(tracer_provider=provider)
        else:
            self._instrumentor = SQLAlchemyInstrumentor()
            self._instrumentor.instrument(
                engine=engine.sync_engine,
                tracer_provider=provider,
                # Its declared range ends before SQLAlchemy 2.1 (jobql's pin), whose cursor
                # events it uses are unchanged; tests/ops/test_tracing.py checks its spans.
                skip_dep_check=True,
            )

    def middleware(self) -> Middleware:
        excluded = get_excluded_urls("ASGI") if _excluded_urls_set() else EXCLUDED_URLS
        return Middleware(
            OpenTelemetryMiddleware,
            tracer_provider=self.provider,
            excluded_urls=excluded,
            # One span per request, not one more per ASGI message.
            exclude_spans=["receive", "send"],
        )

    def close(self) -> None:
        self._instrumentor.uninstrument()
        flush = getattr(self.provider, "force_flush", None)
        if flush is not None:
            flush()


def _excluded_urls_set() -> bool:
    names = ("OTEL_PYTHON_ASGI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS")
    return any(os.environ.get(name) for name in names)


__all__ = ["Tracing", "provider_from_settings"]
