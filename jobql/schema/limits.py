"""Query limits: depth, aliases, tokens and the estimated cost of a query.

Each limit is a Strawberry extension class with its setting baked in (classes, not shared
instances: Strawberry makes one per request). Exceeding one is `QUERY_TOO_COMPLEX`, before any
SQL runs; the cost estimate of every executed query is reported in `extensions.cost`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    value_from_ast_untyped,
)
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as create_alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as create_depth_validator
from strawberry.types import ExecutionResult

from jobql.resolvers import stats as stats_use_cases
from jobql.resolvers.pagination import DEFAULT_PAGE_SIZE
from jobql.schema.scalars import parse_datetime
from jobql.storage.enums import TimeBucket

TOO_COMPLEX = "QUERY_TOO_COMPLEX"


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 12
    max_aliases: int = 100
    max_tokens: int = 5_000
    max_cost: int = 50_000


def extensions(limits: Limits) -> list[type[SchemaExtension]]:
    # The validation rules are made once per schema, not per request as QueryDepthLimiter and
    # MaxAliasesLimiter would: the same rule classes every time let ValidationCache hit.
    depth_rule = create_depth_validator(limits.max_depth, None, None)
    alias_rule = create_alias_validator(limits.max_aliases)

    class Depth(AddValidationRules):
        def __init__(self) -> None:
            super().__init__([depth_rule])

    class Aliases(AddValidationRules):
        def __init__(self) -> None:
            super().__init__([alias_rule])

    class Tokens(MaxTokensLimiter):
        def __init__(self) -> None:
            super().__init__(max_token_count=limits.max_tokens)

    class Cost(QueryCost):
        max_cost = limits.max_cost

    return [Tokens, Depth, Aliases, Cost]


class QueryCost(SchemaExtension):
    """Estimates how many objects a query can return; refuses it above `max_cost`."""

    max_cost = Limits().max_cost

    def __init__(self) -> None:
        self.cost: int | None = None

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            self.cost = estimate_cost(
                context.schema._schema, document, context.operation_name, context.variables or {}
            )
            if self.cost > self.max_cost:
                context.result = ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            f"The query could return about {self.cost} objects; the limit is "
                            f"{self.max_cost}. Ask for smaller pages (`first`/`last`).",
                            extensions={
                                "code": TOO_COMPLEX,
                                "cost": self.cost,
                                "maxCost": self.max_cost,
                            },
                        )
                    ],
                )
        yield

    def get_results(self) -> dict[str, Any]:
        return {} if self.cost is None else {"cost": self.cost}


def estimate_cost(
    schema: GraphQLSchema, document: Any, operation_name: str | None, variables: dict[str, Any]
) -> int:
    """Objects the operation can return: each object field counts once per parent; a connection's
    lists count `first`/`last` (10 where absent) per parent, multiplied down nested connections;
    `nodes(ids:)` counts its ids. @skip/@include are ignored (an upper bound)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    operation = next(
        (
            o
            for o in operations
            if operation_name is None or (o.name and o.name.value == operation_name)
        ),
        None,
    )
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    walker = _CostWalker(fragments, variables)
    return walker.selection_set(operation.selection_set, root, 1, 1)


class _CostWalker:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any]):
        self.fragments = fragments
        self.variables = variables

    def selection_set(
        self, selections: SelectionSetNode | None, parent: Any, multiplier: int, list_size: int
    ) -> int:
        """`list_size`: how many items each list field of `parent` holds (a connection's page)."""
        if selections is None or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, multiplier, list_size)
            elif isinstance(selection, InlineFragmentNode):
                total += self.selection_set(selection.selection_set, parent, multiplier, list_size)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    total += self.selection_set(
                        fragment.selection_set, parent, multiplier, list_size
                    )
        return total

    def field(self, node: FieldNode, parent: Any, multiplier: int, list_size: int) -> int:
        definition = parent.fields.get(node.name.value)
        if definition is None:
            return 0
        named = get_named_type(definition.type)
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        arguments = {a.name.value: a.value for a in node.arguments or ()}
        stats = self.stats(parent.name, node.name.value, named, arguments)
        if stats is not None:
            items, inner_lists = stats
            count = multiplier * items
            return count + self.selection_set(node.selection_set, named, count, inner_lists)
        if "first" in definition.args or "last" in definition.args:
            # A connection: one object per parent; its lists hold a page each.
            page = self.number(arguments.get("first")) or self.number(arguments.get("last"))
            return multiplier + self.selection_set(
                node.selection_set, named, multiplier, page or DEFAULT_PAGE_SIZE
            )
        count = multiplier
        if _is_list(definition.type):
            count = multiplier * (self.length(arguments.get("ids")) or list_size)
        return count + self.selection_set(node.selection_set, named, count, 1)

    def stats(
        self, parent: str, name: str, named: Any, arguments: dict[str, Any]
    ) -> tuple[int, int] | None:
        """A statistics field (jobql/schema/stats.py): how many objects it gives per parent, and
        how many items each list inside them holds (a timeline's buckets); None for others.

        `countsByStatus` holds one item per status. `instanceStats` one group per combination
        of its `groupBy` keys: each status, each instance type, and a job counts MAX_GROUPS
        (the most it answers) unless `filter.jobName` names one. A timeline holds the buckets of
        the plan time range, counted from the arguments; when the resolver will refuse them
        (no range, over MAX_BUCKETS) it counts 1, so that the refusal names the problem.
        `nodeStats` holds `first` (default DEFAULT_NODE_STATS)."""
        if name == "countsByStatus":
            return _enum_size(named, "status"), 1
        if (parent, name) == ("Query", "instanceStats"):
            spec = self.value(arguments.get("filter"))
            spec = spec if isinstance(spec, dict) else {}
            groups = 1
            for key in set(self.list_of(arguments.get("groupBy"))):
                if key == "STATUS":
                    groups *= _enum_size(named, "status")
                elif key == "INSTANCE_TYPE":
                    groups *= _enum_size(named, "instanceType")
                elif key == "JOB" and spec.get("jobName") is None:
                    groups *= stats_use_cases.MAX_GROUPS
            return min(groups, stats_use_cases.MAX_GROUPS), self.buckets(arguments, spec)
        if (parent, name) == ("Job", "stats"):
            window = self.value(arguments.get("window"))
            return 1, self.buckets(arguments, window if isinstance(window, dict) else {})
        if (parent, name) == ("Instance", "nodeStats"):
            first = self.number(arguments.get("first"))
            return first or stats_use_cases.DEFAULT_NODE_STATS, 1
        return None

    def buckets(self, arguments: dict[str, Any], window: dict[str, Any]) -> int:
        bucket = self.value(arguments.get("bucket"))
        if not isinstance(bucket, str) or bucket not in TimeBucket.__members__:
            return 1
        try:
            after = parse_datetime(window.get("planTimeAfter"))
            before = parse_datetime(window.get("planTimeBefore"))
        except (ValueError, OverflowError):
            return 1  # missing or invalid: refused by the resolver or the scalar
        if after >= before:
            return 1
        count = stats_use_cases.bucket_count(TimeBucket[bucket], after, before)
        return count if count <= stats_use_cases.MAX_BUCKETS else 1

    def list_of(self, node: Any) -> list[Any]:
        value = self.value(node)
        if isinstance(value, list):
            return value
        return [] if value is None else [value]  # a single value is coerced to a list

    def value(self, node: Any) -> Any:
        if node is None:
            return None
        if isinstance(node, VariableNode):
            return self.variables.get(node.name.value)
        return value_from_ast_untyped(node, self.variables)

    def number(self, node: Any) -> int | None:
        value = self.value(node)
        return (
            value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
        )

    def length(self, node: Any) -> int | None:
        if isinstance(node, ListValueNode):
            return len(node.values)
        value = self.value(node)
        return len(value) if isinstance(value, list) else None


def _enum_size(object_type: Any, field_name: str) -> int:
    """How many values the enum of `object_type.field_name` has."""
    return len(get_named_type(object_type.fields[field_name].type).values)


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)
