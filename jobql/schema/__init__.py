"""The GraphQL schema (Strawberry only)."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from jobql import metrics
from jobql.resolvers.context import RequestContext
from jobql.schema.documents import DocumentCache, Documents
from jobql.schema.errors import ErrorCodes, SingleOperation
from jobql.schema.execution import (
    CompiledExecutionContext,
    FastOperation,
    PreparedCache,
    ReadRouting,
    StrategyReport,
    compilable_fields,
    learn,
    run_fast,
)
from jobql.schema.ingest import Mutation
from jobql.schema.instances import Instance
from jobql.schema.jobs import Job
from jobql.schema.limits import Limits
from jobql.schema.limits import extensions as limit_extensions
from jobql.schema.live import Subscription
from jobql.schema.nodes import InstanceNode
from jobql.schema.query import Query
from jobql.schema.scalars import SCALAR_MAP
from jobql.schema.telemetry import STRATEGY, OperationName, RootFieldTracing, operation_span

DOCUMENT_CACHE_SIZE = 1_000


class Schema(strawberry.Schema):
    # Set by create_schema: how reads are served, and what compiles (derived from the schema).
    read_strategy: str = "compiled"
    compilable: frozenset[tuple[str, str]] = frozenset()
    fast_path: bool = False
    report_strategy: bool = False
    max_cost: int = Limits().max_cost
    # An OpenTelemetry tracer when tracing is on (the fast path's spans; jobql.schema.telemetry).
    tracer: Any = None

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Strawberry's execution, with the whole-operation fast path in front of it.

        A document is served fast only after it once ran through the full pipeline (parsing,
        every validation rule and limit, execution) without an error and with every root field
        compiled; every later request of it still has its variables coerced and its cost
        checked, and anything unusual runs the full pipeline again."""
        if isinstance(context_value, RequestContext):
            context_value.document = query
        fast_key = (query, operation_name)
        use_fast = (
            self.fast_path
            and query is not None
            and (operation_name is None or isinstance(operation_name, str))  # {} is unhashable
            and root_value is None
            and isinstance(context_value, RequestContext)
        )
        if use_fast and isinstance(context_value, RequestContext):
            fast = await self.execute_fast(query, variable_values, context_value, operation_name)
            if fast is not None:
                return fast
        result = await super().execute(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            allowed_operation_types=allowed_operation_types,
            operation_extensions=operation_extensions,
        )
        if use_fast and fast_key not in self._fast:
            assert query is not None
            learned = learn(query, operation_name, result, context_value)
            if learned is not None:
                self._fast[fast_key] = learned
                if len(self._fast) > DOCUMENT_CACHE_SIZE:
                    self._fast.popitem(last=False)
        return result

    async def execute_fast(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None,
        context_value: RequestContext,
        operation_name: str | None = None,
    ) -> ExecutionResult | None:
        """The fast path's answer, or None when the document is not known to it or anything
        about this request is unusual (the caller then runs the full pipeline)."""
        if not self.fast_path:
            return None
        try:
            known = self._fast.get((query, operation_name))
        except TypeError:  # an unhashable operation name
            return None
        if known is None:
            return None
        self._fast.move_to_end((query, operation_name))
        named = known.operation.name
        context_value.read_only()  # a known fast document is a query
        with operation_span(self.tracer, named.value if named else None) as span:
            result = await run_fast(
                self,
                known,
                operation_name,
                variable_values,
                context_value,
                max_cost=self.max_cost,
                report_strategy=self.report_strategy,
                cache=self._prepared,
                tracer=self.tracer,
            )
            if span is not None:
                # Declined: the full pipeline answers, with its own operation span.
                span.set_attribute(STRATEGY, "fast_path" if result is not None else "declined")
        if result is not None:
            record = metrics.current()
            if record is not None:
                record.fast_path = True
                record.note_document_name(named.value if named else None)
        return result

    @functools.cached_property
    def _prepared(self) -> PreparedCache:
        return PreparedCache()

    @functools.cached_property
    def _fast(self) -> OrderedDict[tuple[str | None, str | None], FastOperation]:
        return OrderedDict()

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Unexpected errors are logged (with traceback) by ErrorCodes before they are masked;
        # client mistakes are answers, not server problems.
        return None


def create_schema(
    limits: Limits | None = None,
    *,
    public: bool = True,
    read_strategy: str = "compiled",
    report_strategy: bool = False,
    fast_path: bool = True,
    tracer_provider: Any = None,
) -> Schema:
    """The schema with its limits; `public=False` hides introspection and field suggestions.

    `read_strategy` is "compiled" (one statement per root field where the selection allows) or
    "reference" (resolvers and loaders only); `report_strategy` adds `extensions.strategy`;
    `tracer_provider` (OpenTelemetry) adds spans per operation and root field.
    """
    # Validating a document is done once per distinct document, schema and rules (a factory:
    # Strawberry shares the cache across requests). Not ParserCache: parse errors raised from it
    # lose the token limit's QUERY_TOO_COMPLEX; DocumentCache keeps only what parsed.
    documents = Documents(maxsize=DOCUMENT_CACHE_SIZE)
    caches: list[Any] = [
        lambda: DocumentCache(documents),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
    ]
    extensions: list[Any] = [
        *caches,
        SingleOperation,
        *limit_extensions(limits or Limits()),
        ErrorCodes,
        OperationName,
        ReadRouting,
    ]
    if not public:
        extensions.insert(0, DisableIntrospection)
    if report_strategy:
        extensions.append(StrategyReport)
    if tracer_provider is not None:
        extensions.append(lambda: RootFieldTracing(tracer_provider=tracer_provider))
    created = Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Job, Instance, InstanceNode],
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP, disable_field_suggestions=not public),
        execution_context_class=CompiledExecutionContext,
    )
    if read_strategy not in ("compiled", "reference"):
        raise ValueError(f"unknown read strategy {read_strategy!r}")
    created.read_strategy = read_strategy
    created.fast_path = fast_path and read_strategy == "compiled"
    created.report_strategy = report_strategy
    created.max_cost = (limits or Limits()).max_cost
    created.compilable = compilable_fields(created._schema)
    if tracer_provider is not None:
        created.tracer = tracer_provider.get_tracer("jobql")
    return created


schema = create_schema()
