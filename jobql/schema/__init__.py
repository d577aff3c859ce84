"""The GraphQL schema (Strawberry only)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from jobql.schema.errors import ErrorCodes, SingleOperation
from jobql.schema.execution import CompiledExecutionContext, StrategyReport, compilable_fields
from jobql.schema.ingest import Mutation
from jobql.schema.instances import Instance
from jobql.schema.jobs import Job
from jobql.schema.limits import Limits
from jobql.schema.limits import extensions as limit_extensions
from jobql.schema.nodes import InstanceNode
from jobql.schema.query import Query
from jobql.schema.scalars import SCALAR_MAP

DOCUMENT_CACHE_SIZE = 1_000


class Schema(strawberry.Schema):
    # Set by create_schema: how reads are served, and what compiles (derived from the schema).
    read_strategy: str = "compiled"
    compilable: frozenset[tuple[str, str]] = frozenset()

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
) -> Schema:
    """The schema with its limits; `public=False` hides introspection and field suggestions.

    `read_strategy` is "compiled" (one statement per root field where the selection allows) or
    "reference" (resolvers and loaders only); `report_strategy` adds `extensions.strategy`.
    """
    # Validating a document is done once per distinct document, schema and rules (a factory:
    # Strawberry shares the cache across requests). Not ParserCache: parse errors raised from it
    # lose the token limit's QUERY_TOO_COMPLEX.
    caches: list[Any] = [lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE)]
    extensions: list[Any] = [
        *caches,
        SingleOperation,
        *limit_extensions(limits or Limits()),
        ErrorCodes,
    ]
    if not public:
        extensions.insert(0, DisableIntrospection)
    if report_strategy:
        extensions.append(StrategyReport)
    created = Schema(
        query=Query,
        mutation=Mutation,
        types=[Job, Instance, InstanceNode],
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP, disable_field_suggestions=not public),
        execution_context_class=CompiledExecutionContext,
    )
    if read_strategy not in ("compiled", "reference"):
        raise ValueError(f"unknown read strategy {read_strategy!r}")
    created.read_strategy = read_strategy
    created.compilable = compilable_fields(created._schema)
    return created


schema = create_schema()
