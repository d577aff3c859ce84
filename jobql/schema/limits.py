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

from jobql.resolvers.pagination import DEFAULT_PAGE_SIZE

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


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)
