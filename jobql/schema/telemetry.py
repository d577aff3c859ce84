"""What the schema tells a request's telemetry: the operation's name (`OperationName`, for the
metrics and the log line) and its OpenTelemetry spans (on only when tracing is, see
jobql/tracing.py).

The full pipeline is traced by Strawberry's `OpenTelemetryExtension` (an operation span with
parsing and validation), narrowed to one span per root field, which says how the field was read
(`jobql.strategy`: compiled, reference or fallback); nested fields get none (a reference read
would make thousands). No argument values are recorded (they come from the variables). The fast
path, which bypasses Strawberry's execution, makes the same two levels itself
(`operation_span`, `field_span`, with strategy `fast_path`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from inspect import isawaitable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer
from strawberry.extensions import LifecycleStep, SchemaExtension
from strawberry.extensions.tracing import OpenTelemetryExtension
from strawberry.extensions.tracing.utils import should_skip_tracing

from jobql import metrics

STRATEGY = "jobql.strategy"


class OperationName(SchemaExtension):
    """The name of the operation that runs, for a request that did not send `operationName`
    (Strawberry knows it once the document is parsed)."""

    def on_execute(self) -> Iterator[None]:
        record = metrics.current()
        if record is not None:
            record.note_document_name(self.execution_context.operation_name)
        yield


def _no_arguments(_arguments: dict[str, Any], _info: Any) -> dict[str, Any]:
    return {}


class RootFieldTracing(OpenTelemetryExtension):
    """Strawberry's extension with spans for root fields only, each with its strategy."""

    def __init__(self, *, tracer_provider: trace.TracerProvider | None = None) -> None:
        super().__init__(arg_filter=_no_arguments, tracer_provider=tracer_provider)

    def resolve(
        self, _next: Callable[..., Any], root: Any, info: Any, *args: str, **kwargs: Any
    ) -> Any:
        # Not a coroutine function: nested fields stay synchronous where they are.
        if info.path.prev is not None or should_skip_tracing(_next, info):
            return _next(root, info, *args, **kwargs)
        return self._traced(_next, root, info, args, kwargs)

    async def _traced(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: Any,
        args: tuple[str, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        parent = trace.set_span_in_context(self._span_holder[LifecycleStep.OPERATION])
        with self._tracer.start_as_current_span(
            f"GraphQL Resolving: {info.field_name}", context=parent
        ) as span:
            self.add_tags(span, info, kwargs)
            result = _next(root, info, *args, **kwargs)
            if isawaitable(result):
                result = await result
            strategy = _strategy(info)
            if strategy is not None:
                span.set_attribute(STRATEGY, strategy)
            return result


def _strategy(info: Any) -> str | None:
    key = str(info.path.key)
    record = metrics.current()
    if record is not None and key in record.fallbacks:
        return "fallback"
    strategies = getattr(info.context, "strategies", None) or {}
    found = strategies.get(key)
    return found if isinstance(found, str) else None


def operation_span(
    tracer: Tracer | None, operation_name: str | None
) -> contextlib.AbstractContextManager[Any]:
    """The fast path's operation span (named as Strawberry names its own); it yields the span,
    or None when tracing is off."""
    if tracer is None:
        return contextlib.nullcontext()
    name = f"GraphQL Query: {operation_name}" if operation_name else "GraphQL Query"
    return tracer.start_as_current_span(
        name, kind=SpanKind.SERVER, attributes={"component": "graphql"}
    )


def field_span(
    tracer: Tracer | None, key: str, name: str
) -> contextlib.AbstractContextManager[Any]:
    """A fast-path root field's span."""
    if tracer is None:
        return contextlib.nullcontext()
    return tracer.start_as_current_span(
        f"GraphQL Resolving: {name}",
        attributes={"component": "graphql", "graphql.path": key, STRATEGY: "fast_path"},
    )


__all__ = ["STRATEGY", "OperationName", "RootFieldTracing", "field_span", "operation_span"]
