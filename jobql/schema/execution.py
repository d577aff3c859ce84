"""The compiled read strategy's GraphQL side.

A root field (`instances`, `instance`, `jobs`, `job`, `node`, `nodes`) whose whole selection is
plain stored data is answered by one SQL statement that returns the finished JSON of its subtree
(`nodes(ids:)`: one row per object, joined in the ids' order) (`jobql.resolvers.selection`,
`jobql.storage.json_sql`). Its resolver returns that text as an
`orjson.Fragment`; `CompiledExecutionContext` hands the fragment back unchanged instead of
walking it, and the endpoint's orjson encoder embeds it verbatim.

Which fields compile is derived from the schema at start-up (`compilable_fields`): a field with a
resolver this module does not know, a permission class or a field extension never compiles, so a
new field is served by the reference strategy until someone teaches the compiler about it. Any
other surprise while planning (a nested argument error, an unknown directive, an object too wide
for one SQL JSON constructor, a statement the database's own compiler refuses, such as one nested
deeper than SQLite's parser stack) also sends the root field the reference way, before any SQL
runs, so errors always come from the reference resolvers. A compiled statement the database fails
all the same (not a lost connection, a timeout or a cancellation) is answered again the reference
way, logged with the document's hash and counted (`FALLBACKS`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    get_operation_ast,
    parse,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.language import BooleanValueNode, VariableNode
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionResult
from strawberry.types.arguments import convert_arguments

from jobql import metrics
from jobql.resolvers import jobs as job_use_cases
from jobql.resolvers import selection
from jobql.resolvers.context import Reader, RequestContext, is_statement_error
from jobql.resolvers.live import SharedRead
from jobql.resolvers.nodes import status_names
from jobql.resolvers.objects import MAX_IDS, parse_global_id
from jobql.resolvers.pagination import PageArgs
from jobql.schema.catalogue import KNOWN_RESOLVERS
from jobql.schema.context import Info
from jobql.schema.instances import instance_arguments
from jobql.schema.limits import estimate_cost
from jobql.schema.telemetry import field_span

DEFINITION = "strawberry-definition"
CONNECTIONS = {
    "InstanceConnection": ("Instance", "InstanceEdge"),
    "JobConnection": ("Job", "JobEdge"),
    "InstanceNodeConnection": ("InstanceNode", "InstanceNodeEdge"),
}
CONNECTION_PARTS = ("edges", "nodes", "pageInfo", "totalCount")
EDGE_PARTS = ("cursor", "node")
PAGE_INFO_PARTS = ("hasNextPage", "hasPreviousPage", "startCursor", "endCursor")
ROOTS = ("instances", "instance", "jobs", "job", "node", "nodes")
NULL = orjson.Fragment(b"null")

logger = logging.getLogger("jobql.compiled")
# Compiled statements the database failed, each then answered by the reference strategy, by root
# field name (per worker process). Each is a planner bug or an engine limit it does not know yet.
FALLBACKS: Counter[str] = Counter()


class Unsupported(Exception):
    """This selection is not served by the compiled strategy."""


class CompiledExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, except that a compiled subtree is returned as it is."""

    def complete_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if isinstance(result, orjson.Fragment):
            return result
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def build_per_event_executor(self, payload: Any) -> Any:
        """A subscription event the compiled strategy answered whole (an `orjson.Fragment`: its
        root field's JSON) is the event's result as it is: graphql-core would copy this executor,
        resolve the root field to the payload and complete it unchanged, once per event and
        subscription group. Not with field middleware (tracing), which must see the field."""
        if isinstance(payload, orjson.Fragment) and not (
            self.middleware_manager and self.middleware_manager.middlewares
        ):
            key = _single_root_key(self.operation.selection_set)
            if key is not None:
                return _Answered(GraphQLExecutionResult({key: payload}, None))
        return super().build_per_event_executor(payload)


@dataclass(frozen=True, slots=True)
class _Answered:
    """A per-event executor whose result is known (`build_per_event_executor`)."""

    result: GraphQLExecutionResult

    def execute_operation(self, _initial_result_record: Any = None) -> GraphQLExecutionResult:
        return self.result


def _single_root_key(selection_set: SelectionSetNode) -> str | None:
    """The response key of a subscription's one root field, when it is written as one plain
    field (no fragment, no directive); None otherwise."""
    if len(selection_set.selections) != 1:
        return None
    node = selection_set.selections[0]
    if not isinstance(node, FieldNode) or node.directives:
        return None
    return (node.alias or node.name).value


def compilable_fields(schema: GraphQLSchema) -> frozenset[tuple[str, str]]:
    """(type, field) pairs the compiled strategy may serve: catalogued, and plain."""
    found: set[tuple[str, str]] = set()
    for type_name, graphql_type in schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, field in graphql_type.fields.items():
            definition = field.extensions.get(DEFINITION)
            if definition is None or definition.extensions or definition.permission_classes:
                continue
            resolver = definition.base_resolver
            if resolver is not None and resolver.wrapped_func not in KNOWN_RESOLVERS:
                continue
            if not _catalogued(type_name, field_name):
                continue
            if not _enum_names_match(get_named_type(field.type)):
                continue
            found.add((type_name, field_name))
    return frozenset(found)


def _catalogued(type_name: str, field_name: str) -> bool:
    if field_name in selection.LEAVES.get(type_name, {}):
        return True
    if (type_name, field_name) in selection.COMPOSITES:
        return True
    if type_name in CONNECTIONS:
        return field_name in CONNECTION_PARTS
    if any(type_name == edge for _, edge in CONNECTIONS.values()):
        return field_name in EDGE_PARTS
    return type_name == "PageInfo" and field_name in PAGE_INFO_PARTS


def _enum_names_match(graphql_type: Any) -> bool:
    """Enums are stored as member names; the compiled SQL emits them unchanged."""
    if not isinstance(graphql_type, GraphQLEnumType):
        return True
    definition = graphql_type.extensions.get(DEFINITION)
    members = getattr(getattr(definition, "wrapped_cls", None), "__members__", {})
    return all(
        name in members and members[name].value == value.value
        for name, value in graphql_type.values.items()
    )


class _Planner:
    def __init__(
        self,
        schema: Any,
        fragments: dict[str, FragmentDefinitionNode],
        variables: Any,
        ctx: RequestContext,
        compilable: frozenset[tuple[str, str]],
    ) -> None:
        self.strawberry_schema = schema
        self.schema: GraphQLSchema = schema._schema
        self.fragments = fragments
        # Strawberry passes resolvers the coerced dict; graphql-core has a container.
        self.variables: dict[str, Any] = (
            variables.coerced if isinstance(variables, VariableValues) else variables
        )
        self.ctx = ctx
        self.compilable = compilable

    @classmethod
    def of(cls, info: Info, compilable: frozenset[tuple[str, str]]) -> _Planner:
        raw = info._raw_info
        return cls(info.schema, raw.fragments, raw.variable_values, info.context, compilable)

    # -- selections -------------------------------------------------------------------------

    def fields(self, type_name: str, nodes: Iterable[FieldNode]) -> dict[str, list[FieldNode]]:
        grouped: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for node in nodes:
            if node.selection_set is not None:
                self._collect(type_name, node.selection_set, grouped, visited)
        return grouped

    def _collect(
        self,
        type_name: str,
        selection_set: SelectionSetNode,
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        for item in selection_set.selections:
            if not self._included(item):
                continue
            if isinstance(item, FieldNode):
                key = item.alias.value if item.alias else item.name.value
                grouped.setdefault(key, []).append(item)
            elif isinstance(item, InlineFragmentNode):
                condition = item.type_condition
                if condition is None or self._matches(condition.name.value, type_name):
                    self._collect(type_name, item.selection_set, grouped, visited)
            elif isinstance(item, FragmentSpreadNode):
                name = item.name.value
                fragment = self.fragments.get(name)
                if name in visited or fragment is None:
                    continue
                visited.add(name)
                if self._matches(fragment.type_condition.name.value, type_name):
                    self._collect(type_name, fragment.selection_set, grouped, visited)
            else:  # pragma: no cover - the AST has no other selections
                raise Unsupported(type(item).__name__)

    def _matches(self, condition: str, type_name: str) -> bool:
        if condition == type_name:
            return True
        object_type = self.schema.type_map.get(type_name)
        assert isinstance(object_type, GraphQLObjectType)
        return any(interface.name == condition for interface in object_type.interfaces)

    def _included(self, item: Any) -> bool:
        for directive in item.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                raise Unsupported(f"directive @{name}")
            (argument,) = directive.arguments
            value = argument.value
            flag: Any
            if isinstance(value, BooleanValueNode):
                flag = value.value
            elif isinstance(value, VariableNode):
                flag = self.variables.get(value.name.value)
            else:
                raise Unsupported("directive argument")
            if not isinstance(flag, bool):
                raise Unsupported("directive argument")
            if (name == "skip") == flag:
                return False
        return True

    def arguments(self, type_name: str, field_name: str, node: FieldNode) -> dict[str, Any]:
        object_type = self.schema.type_map[type_name]
        assert isinstance(object_type, GraphQLObjectType)
        field = object_type.fields[field_name]
        raw = get_argument_values(field, node, VariableValues({}, self.variables))
        definition = field.extensions[DEFINITION]
        converter = self.strawberry_schema.schema_converter
        return convert_arguments(
            raw,
            definition.arguments,
            scalar_registry=converter.scalar_registry,
            config=converter.config,
        )

    def check(self, type_name: str, field_name: str) -> None:
        if (type_name, field_name) not in self.compilable:
            raise Unsupported(f"{type_name}.{field_name}")

    # -- plans ------------------------------------------------------------------------------

    def object(self, type_name: str, nodes: Iterable[FieldNode]) -> selection.Fields:
        out: list[tuple[str, Any]] = []
        for key, found in self.fields(type_name, nodes).items():
            name = found[0].name.value
            if name == "__typename":
                out.append((key, selection.Const(type_name)))
                continue
            self.check(type_name, name)
            value = selection.leaf(self.ctx, type_name, name)
            if value is not None:
                out.append((key, value))
                continue
            kind, target = selection.COMPOSITES[(type_name, name)]
            if kind == "facet":
                out.append((key, selection.facet(target, self.object(target, found))))
            elif kind == "link":
                fields = self.object(target, found)
                out.append((key, selection.link(type_name, name, target, fields)))
            elif kind == "connection":
                out.append((key, self.connection(type_name, name, target, found)))
            else:
                raise Unsupported(f"{type_name}.{name}")
        return tuple(out)

    def connection_fields(
        self, type_name: str, nodes: Iterable[FieldNode]
    ) -> selection.ConnectionFields:
        item_type, edge_type = CONNECTIONS[type_name]
        entity = selection.ENTITIES[item_type]
        out: list[tuple[str, Any]] = []
        for key, found in self.fields(type_name, nodes).items():
            name = found[0].name.value
            if name == "__typename":
                out.append((key, selection.Const(type_name)))
                continue
            self.check(type_name, name)
            if name == "edges":
                edge: list[tuple[str, Any]] = []
                for edge_key, edge_found in self.fields(edge_type, found).items():
                    edge_name = edge_found[0].name.value
                    if edge_name == "__typename":
                        edge.append((edge_key, selection.Const(edge_type)))
                        continue
                    self.check(edge_type, edge_name)
                    if edge_name == "cursor":
                        edge.append((edge_key, selection.Cursor()))
                    else:
                        plan = selection.ObjectPlan(entity, self.object(item_type, edge_found))  # type: ignore[arg-type]
                        edge.append((edge_key, plan))
                out.append((key, selection.Edges(tuple(edge))))
            elif name == "nodes":
                item = selection.ObjectPlan(entity, self.object(item_type, found))  # type: ignore[arg-type]
                out.append((key, selection.Nodes(item)))
            elif name == "pageInfo":
                info: list[tuple[str, Any]] = []
                for info_key, info_found in self.fields("PageInfo", found).items():
                    info_name = info_found[0].name.value
                    if info_name == "__typename":
                        info.append((info_key, selection.Const("PageInfo")))
                    else:
                        self.check("PageInfo", info_name)
                        info.append((info_key, info_name))
                out.append((key, selection.PageInfo(tuple(info))))
            else:
                out.append((key, selection.TotalCount()))
        return tuple(out)

    def connection(
        self, parent_type: str, name: str, type_name: str, nodes: list[FieldNode]
    ) -> selection.ConnectionPlan:
        kwargs = self.arguments(parent_type, name, nodes[0])
        page = PageArgs(
            first=kwargs.get("first"),
            after=kwargs.get("after"),
            last=kwargs.get("last"),
            before=kwargs.get("before"),
        )
        fields = self.connection_fields(type_name, nodes)
        if type_name == "InstanceConnection":
            spec, order = instance_arguments(kwargs.get("filter"), kwargs.get("order_by"))
            nested = parent_type != "Query"
            return selection.instance_connection(self.ctx, spec, order, page, fields, nested=nested)
        if type_name == "JobConnection":
            job_filter = kwargs.get("filter")
            spec_ = job_filter.to_spec() if job_filter is not None else job_use_cases.build_filter()
            return selection.job_connection(self.ctx, spec_, page, fields)
        statuses = status_names(kwargs.get("statuses"))
        return selection.node_connection(self.ctx, statuses, page, fields)

    def root(self, name: str, nodes: list[FieldNode]) -> selection.RootPlan:
        plan = self._root(name, nodes)
        selection.prepare(self.ctx, plan)  # raises when SQL cannot express it: the reference way
        return plan

    def _root(self, name: str, nodes: list[FieldNode]) -> selection.RootPlan:
        self.check("Query", name)
        kind, target = selection.COMPOSITES[("Query", name)]
        if kind == "connection":
            return self.connection("Query", name, target, nodes)
        kwargs = self.arguments("Query", name, nodes[0])
        if name == "nodes":
            ids = kwargs["ids"]
            if len(ids) > MAX_IDS:
                raise Unsupported("too many ids: the resolver reports it")
            order: list[tuple[str, int] | None] = []
            for text in ids:
                type_name, key = parse_global_id(text)  # a malformed id: the resolver reports it
                if key is not None and type_name in selection.ENTITIES:
                    order.append((type_name, key))
                else:
                    order.append(None)
            named = {at[0] for at in order if at is not None}
            return selection.many_by_id(
                {type_name: self.object(type_name, nodes) for type_name in sorted(named)}, order
            )
        if name == "node":
            type_name, key = parse_global_id(kwargs["id"])
            if key is None or type_name not in selection.ENTITIES:
                raise Unsupported("a global id that names nothing")
            return selection.single_by_id(type_name, key, self.object(type_name, nodes))
        fields = self.object(target, nodes)
        if name == "instance":
            return selection.single_instance(kwargs["job_name"], kwargs["instance_id"], fields)
        return selection.single_job(kwargs["name"], fields)


class ReadRouting(SchemaExtension):
    """A query only reads: a read replica may serve it (mutations and subscriptions read from
    the primary, which has their writes and the event log)."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        # Strawberry's OperationType (not graphql-core's): compared by value.
        if isinstance(context, RequestContext) and execution.operation_type.value == "query":
            context.read_only()
        yield


class StrategyReport(SchemaExtension):
    """`extensions.strategy`: how each root field was served (a debugging aid)."""

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        strategies = getattr(context, "strategies", None)
        return {"strategy": dict(strategies)} if strategies else {}


def plan_root(info: Info, name: str) -> selection.RootPlan | None:
    """The compiled plan of this root field, or None when the reference strategy serves it."""
    compilable = getattr(info.schema, "compilable", None)
    if not compilable or getattr(info.schema, "read_strategy", None) != "compiled":
        return None
    try:
        return _Planner.of(info, compilable).root(name, list(info._raw_info.field_nodes))
    except Exception:
        return None


def selected(info: Info, type_name: str, field_name: str) -> list[list[FieldNode]]:
    """The field nodes of `field_name` in this field's selection on `type_name`, one list per
    response key (fragments and @skip/@include applied)."""
    planner = _Planner.of(info, frozenset())
    found = planner.fields(type_name, list(info._raw_info.field_nodes))
    return [nodes for nodes in found.values() if nodes[0].name.value == field_name]


def asks_for(info: Info, type_name: str, field_name: str) -> bool:
    """Whether this field's selection on `type_name` holds `field_name` (fragments and
    @skip/@include applied); True where a directive the planner does not know leaves it open."""
    keys = selection_keys(info, type_name)
    return keys is None or field_name in keys.values()


def selection_keys(info: Info, type_name: str) -> dict[str, str] | None:
    """This field's selection on `type_name` as response key -> field name, in the order the
    answer has them (fragments and @skip/@include applied); None when a directive the planner
    does not know is in it."""
    try:
        found = _Planner.of(info, frozenset()).fields(type_name, list(info._raw_info.field_nodes))
    except Unsupported:
        return None
    return {key: nodes[0].name.value for key, nodes in found.items()}


def compiled_instances(info: Info, nodes: list[FieldNode]) -> SharedRead[orjson.Fragment] | None:
    """A subscription's instances, compiled: `nodes` (an `Instance` selection) read for a whole
    batch of instances in one statement, each instance's JSON as a fragment; shared by every
    subscription with the same selection in the workspace. None when the selection does not
    compile (the reference strategy serves it)."""
    compilable = getattr(info.schema, "compilable", None)
    if not compilable or getattr(info.schema, "read_strategy", None) != "compiled":
        return None
    ctx = info.context
    try:
        fields = _Planner.of(info, compilable).object("Instance", nodes)
        statement = selection.by_ids(ctx, "Instance", fields)
    except Exception:
        return None

    async def read(
        reader: Reader, keys: Sequence[int], plan_times: Mapping[int, datetime]
    ) -> dict[int, orjson.Fragment]:
        found = await selection.read_by_ids(reader, statement, sorted(set(keys)), plan_times)
        return {key: orjson.Fragment(value) for key, value in found.items()}

    return SharedRead(statement, read)


async def serve(info: Info, name: str) -> orjson.Fragment | None:
    """Answer a root field with one statement, or None to let the reference resolver do it."""
    plan = plan_root(info, name)
    ctx = info.context
    key = info.path.key
    if plan is None:
        ctx.note_strategy(str(key), "reference")
        return None
    ctx.note_strategy(str(key), "compiled")
    try:
        found = await selection.read(ctx, plan)
    except Exception as exc:
        if not is_statement_error(exc):
            raise  # the connection, a timeout: the reference strategy would meet the same
        await _fall_back(ctx, name, str(key), exc)
        return None
    if found is None:
        # node(id:) that finds nothing answers null; a missing instance or job is an error,
        # which the reference resolver reports.
        return NULL if selection.may_be_null(plan) else None
    return orjson.Fragment(found)


async def _fall_back(ctx: RequestContext, name: str, key: str, exc: Exception) -> None:
    """Second line of defence: a compiled statement the database failed (not the connection,
    not a timeout) is answered again the reference way instead of INTERNAL, and counted."""
    FALLBACKS[name] += 1
    metrics.FALLBACKS.labels(name).inc()
    record = metrics.current()
    if record is not None:
        record.fallbacks += (key,)
    document = hashlib.sha256((ctx.document or "").encode()).hexdigest()
    logger.warning(
        "compiled read of %s failed, answered by the reference strategy instead "
        "(document sha256 %s; fallback %d of %s in this worker): %s",
        key,
        document,
        FALLBACKS[name],
        name,
        getattr(exc, "orig", None) or exc,
    )
    ctx.note_strategy(key, "reference")


# -- the whole-operation fast path ------------------------------------------------------------


# Prepared answers kept across all fast documents, least recently used out. An entry is the SQL
# text and values on PostgreSQL (a few KB), a SQLAlchemy statement elsewhere (up to a few hundred
# KB for a large selection): this bounds what repeated variations can make a worker hold.
PREPARED_CACHE_SIZE = 512


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a request of a fast document with given variables needs besides the database: the
    coerced cost, and per root field its prepared statement (values bound as parameters)."""

    cost: int
    reads: tuple[tuple[str, selection.PreparedRead, bool], ...]  # key, read, may be null


class PreparedCache:
    """Variable coercion, cost and planning are pure functions of the document, the variables,
    the database and the caller's workspace and scopes: a repeated request (a polling
    dashboard) reuses them."""

    def __init__(self, size: int = PREPARED_CACHE_SIZE) -> None:
        self.size = size
        self.entries: OrderedDict[Any, Prepared] = OrderedDict()

    def get(self, key: Any) -> Prepared | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: Any, value: Prepared) -> None:
        self.entries[key] = value
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity (cache keys)
class FastOperation:
    """A query document that once ran cleanly with every root field compiled."""

    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    roots: tuple[tuple[str, str, FieldNode], ...]  # response key, field name, node


def learn(query: str, operation_name: str | None, result: Any, ctx: Any) -> FastOperation | None:
    """The fast form of a document whose full run had no errors and only compiled root fields.

    Root-level directives, fragments or repeated response keys keep it on the full pipeline."""
    if result.errors or not isinstance(result.data, dict) or not result.data:
        return None
    strategies = getattr(ctx, "strategies", {})
    for key, value in result.data.items():
        if not isinstance(value, orjson.Fragment) or strategies.get(key) != "compiled":
            return None
    try:
        document = parse(query)
    except GraphQLError:
        return None
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None
    roots: list[tuple[str, str, FieldNode]] = []
    for item in operation.selection_set.selections:
        if not isinstance(item, FieldNode) or item.directives or item.name.value not in ROOTS:
            return None
        key = item.alias.value if item.alias else item.name.value
        if any(key == known for known, _, _ in roots):
            return None
        roots.append((key, item.name.value, item))
    if sorted(key for key, _, _ in roots) != sorted(result.data):
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return FastOperation(document, operation, fragments, tuple(roots))


async def run_fast(
    schema: Any,
    fast: FastOperation,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    ctx: RequestContext,
    *,
    max_cost: int,
    report_strategy: bool,
    cache: PreparedCache,
    tracer: Any = None,
) -> ExecutionResult | None:
    """The operation's answer without graphql-core's executor, or None: run the full pipeline.

    Variables are coerced and the cost estimated as on the full pipeline; anything unusual (a
    variable error, a cost over the limit, a lookup that finds nothing, any exception) returns
    None, so that errors always come from the full pipeline. One root field reads in autocommit;
    several read in one read-only snapshot so that they agree. `tracer`: a span per root field
    (jobql.schema.telemetry)."""
    try:
        key = _prepared_key(fast, ctx, variables)
        prepared = cache.get(key) if key is not None else None
        if prepared is None:
            prepared = _prepare(schema, fast, operation_name, variables, ctx, max_cost=max_cost)
            if prepared is None:
                return None
            if key is not None:
                cache.put(key, prepared)
        alone = len(prepared.reads) == 1
        data: dict[str, Any] = {}
        for (response_key, read, nullable), (_, name, _) in zip(
            prepared.reads, fast.roots, strict=True
        ):
            with field_span(tracer, response_key, name):
                found = await selection.read_prepared(ctx, read, alone=alone)
            if found is None:
                if not nullable:
                    return None
                data[response_key] = NULL
            else:
                data[response_key] = orjson.Fragment(found)
            ctx.note_strategy(response_key, "compiled")
    except Exception:
        # The full pipeline answers instead, on a fresh connection: a statement that failed
        # inside the snapshot transaction leaves that transaction unusable.
        with contextlib.suppress(Exception):
            await ctx.reader.release()
        return None
    cost = prepared.cost
    extensions: dict[str, Any] = {"cost": cost}
    if report_strategy:
        extensions["strategy"] = dict(ctx.strategies)
    return ExecutionResult(data=data, errors=None, extensions=extensions)


def _prepared_key(fast: FastOperation, ctx: RequestContext, variables: Any) -> Any:
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        return None
    try:
        text = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
    # The statements also depend on the database and the cursor secret: one schema may serve
    # several engines (the tests do).
    return (fast, ctx.reader.dialect, ctx.cursors.secret, ctx.workspace, ctx.scopes, text)


def _prepare(
    schema: Any,
    fast: FastOperation,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    ctx: RequestContext,
    *,
    max_cost: int,
) -> Prepared | None:
    """Coerce the variables, check the cost and plan every root field; None: not fast."""
    coerced = get_variable_values(
        schema._schema, fast.operation.variable_definitions or (), variables or {}
    )
    if isinstance(coerced, list):
        return None
    cost = estimate_cost(schema._schema, fast.document, operation_name, variables or {})
    if cost > max_cost:
        return None
    planner = _Planner(schema, fast.fragments, coerced, ctx, schema.compilable)
    alone = len(fast.roots) == 1
    reads = []
    for key, name, node in fast.roots:
        plan = planner.root(name, [node])
        read = selection.prepare_read(ctx, plan, alone=alone)
        reads.append((key, read, selection.may_be_null(plan)))
    return Prepared(cost, tuple(reads))


__all__ = [
    "FALLBACKS",
    "ROOTS",
    "CompiledExecutionContext",
    "FastOperation",
    "PreparedCache",
    "StrategyReport",
    "Unsupported",
    "compilable_fields",
    "compiled_instances",
    "learn",
    "plan_root",
    "run_fast",
    "selected",
    "serve",
]
