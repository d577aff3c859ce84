"""The GraphQL schema (Strawberry only)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from jobql.schema.errors import ErrorCodes, SingleOperation
from jobql.schema.ingest import Mutation
from jobql.schema.instances import Instance
from jobql.schema.jobs import Job
from jobql.schema.limits import Limits
from jobql.schema.limits import extensions as limit_extensions
from jobql.schema.nodes import InstanceNode
from jobql.schema.query import Query
from jobql.schema.scalars import SCALAR_MAP


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Unexpected errors are logged (with traceback) by ErrorCodes before they are masked;
        # client mistakes are answers, not server problems.
        return None


def create_schema(limits: Limits | None = None, *, public: bool = True) -> Schema:
    """The schema with its limits; `public=False` hides introspection and field suggestions."""
    extensions: list[Any] = [SingleOperation, *limit_extensions(limits or Limits()), ErrorCodes]
    if not public:
        extensions.insert(0, DisableIntrospection)
    return Schema(
        query=Query,
        mutation=Mutation,
        types=[Job, Instance, InstanceNode],
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP, disable_field_suggestions=not public),
    )


schema = create_schema()
