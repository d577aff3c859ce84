"""Compiled reads: a plan becomes one SQL statement that returns the values of its answer.

Each object comes back as a JSON array of its values in the order of its fields, not as a JSON
object: PostgreSQL builds it with `json_build_array` / `json_agg`, SQLite with `json_array` /
`json_group_array`, and a `Shaper` made once per plan puts the keys and constants back, encodes
the global ids and signs the cursors from the ids and sort values the statement returns. That
per-row work costs the database several times what it costs Python (see bench/PERFORMANCE.md),
and the database is what a deployment has least of.

Every base query, filter, order and window comes from the same storage functions the reference
strategy uses (`base_query`, `filter_conditions`, `apply_window`), so both strategies confine to
the workspace and page the same way. Scalars are formatted as their GraphQL
serialisers do (on PostgreSQL, times as JSON writes a `timestamp`, completed by the `Shaper`;
a cursor's time by `to_char`); global ids and cursors are those `jobql.storage.identifiers`
makes.

Nested connections are correlated subqueries, each limited per parent on its
`(parent, sort key, id)` index; to-one links are correlated scalar subqueries. On PostgreSQL a
page read only by its list of items is `ARRAY(SELECT ... ORDER BY ...)`, which keeps the order
it is read in, not `json_agg(... ORDER BY ...)`, which sorts it again. An instance's
`jobName` is its `job_id`, which the `Shaper` names from the job names the server keeps per
database (`jobql.storage.job_names`; a miss costs one more statement, a warm read none).
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import gc
import logging
import operator
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    CompoundSelect,
    FromClause,
    Integer,
    Select,
    String,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    extract,
    false,
    func,
    literal_column,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import Alias
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.sql.visitors import InternalTraversal

from jobql.storage import instances, job_names, jobs, nodes, partitions
from jobql.storage.capacity import NotExpressible, Refused, check
from jobql.storage.engine import DriverSettings, DriverTemplate, Reader
from jobql.storage.identifiers import sign_cursor
from jobql.storage.instances import InstanceFilter, InstanceOrder
from jobql.storage.jobs import JOB_ORDER, JobFilter
from jobql.storage.models import Instance, InstanceNode, Job
from jobql.storage.nodes import NODE_ORDER
from jobql.storage.paging import KeysetWindow, OffsetWindow, SortKey, apply_window, merge_pages
from jobql.storage.plan import (
    Column,
    ConnectionPlan,
    Const,
    Cursor,
    Duration,
    Edges,
    Facet,
    Fields,
    GlobalId,
    IdLookup,
    InstanceLookup,
    JobLookup,
    JobName,
    Link,
    ManyPlan,
    Nodes,
    ObjectPlan,
    PageInfo,
    RootPlan,
    SinglePlan,
    TotalCount,
    Value,
)
from jobql.storage.scope import in_workspace
from jobql.storage.types import UtcDateTime

logger = logging.getLogger("jobql")

# json_build_array takes at most 100 arguments; SQLite's json_array at most 127.
MAX_VALUES = 100
PG_TIME = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'
# Constants of the SQL are written into its text, not bound: fewer values to send and bind.
PG_TIME_LITERAL: ColumnElement[str] = literal_column(f"'{PG_TIME}'")

Row = Callable[[str], ColumnElement[Any]]


class TooWide(NotExpressible):
    """An object with more keys than one SQL JSON constructor takes: serve it another way."""


def sort_key(plan: ConnectionPlan) -> SortKey:
    if plan.entity == "instance":
        assert plan.order is not None
        return plan.order.sort_key()
    return JOB_ORDER if plan.entity == "job" else NODE_ORDER


def edge_cursor(plan: ConnectionPlan) -> tuple[str, str] | None:
    """The response keys of the first edges selection with a cursor, and of that cursor."""
    for key, part in plan.fields:
        if isinstance(part, Edges):
            for edge_key, value in part.fields:
                if isinstance(value, Cursor):
                    return key, edge_key
    return None


@dataclass(frozen=True, slots=True)
class PageForm:
    """How a connection's statement reads its page; the builder and the shaper agree on it.

    Numbered (`_n` per row, the kept rows filtered, the end cursors found by position): only
    where the sort key is nullable (two ranges, nulls apart) or end cursors are asked without
    an edge cursor to take them from. Otherwise the rows are aggregated in the sort key's own
    order: exactly the page where nothing asks whether there is more (lean), else the page and
    the one row past it (`peek`), which the shaper drops (`trim`); the end cursors are the first
    and last edges' (about a fifth less database CPU than numbering, on W1 and W2)."""

    numbered: bool
    peek: bool
    trim: bool
    ends_in_sql: bool


def page_form(plan: ConnectionPlan, key: SortKey) -> PageForm:
    asked = [
        name for _, part in plan.fields if isinstance(part, PageInfo) for _, name in part.fields
    ]
    ends = any(name in ("startCursor", "endCursor") for name in asked)
    more = any(name in ("hasNextPage", "hasPreviousPage") for name in asked)
    if key.nullable or (ends and edge_cursor(plan) is None):
        return PageForm(numbered=True, peek=True, trim=False, ends_in_sql=ends)
    return PageForm(numbered=False, peek=more, trim=more, ends_in_sql=False)


class _Partition(Alias):
    """`instance` read as one month's partition (`FROM instance_p2025_04`): the same columns.
    Its name is the partition's, in the statement's cache key."""

    inherit_cache = True
    _traverse_internals = [*Alias._traverse_internals, ("partition", InternalTraversal.dp_string)]
    partition: str


@compiles(_Partition)
def _partition_sql(element: _Partition, compiler: SQLCompiler, **kw: Any) -> str:
    if not kw.get("asfrom") or kw.get("lateral"):
        return str(compiler.visit_alias(element, **kw))  # type: ignore[no-untyped-call]
    linter = kw.get("from_linter")
    if linter is not None:
        linter.froms[element._de_clone()] = element.partition  # type: ignore[no-untyped-call]
    return compiler.preparer.quote(element.partition)


def in_partition(statement: Select[Any], month: partitions.Month | None) -> Select[Any]:
    """`statement` with `instance` read as `month`'s partition (None: DEFAULT): a plain table,
    whose cached generic plan walks its index in order and stops at the page's end, where the
    partitioned table's sorted every row of the window (docs/partitioning.md)."""
    name = "instance_default" if month is None else partitions.partition_name("instance", month)
    part = _Partition._construct(Instance.__table__, name=name)
    part.partition = name
    adapted: Select[Any] = ClauseAdapter(part).traverse(statement)
    return adapted


def window_months(plan: RootPlan) -> tuple[partitions.Month, ...] | None:
    """The months of a root instances page whose plan-time window lies within a few months
    (`partitions.within_months`); None for any other plan."""
    if not isinstance(plan, ConnectionPlan) or plan.entity != "instance":
        return None
    spec = plan.filter
    if not isinstance(spec, InstanceFilter) or isinstance(plan.window, OffsetWindow):
        return None
    months = partitions.within_months(spec.plan_time_after, spec.plan_time_before)
    if months and len(months) > 1 and page_form(plan, sort_key(plan)).numbered:
        return None  # its rows are numbered in the page: not a merge of pages (`connection`)
    return months


async def _partitioned_months(
    reader: Reader, plan: RootPlan, *, autocommit: bool
) -> tuple[partitions.Month, ...]:
    """`window_months(plan)` when every one of them has its partition (PostgreSQL), else ()."""
    if reader.dialect != "postgresql":
        return ()
    months = window_months(plan)
    if months is None:
        return ()
    for month in months:
        if not await partitions.has_month(reader, month, autocommit=autocommit):
            return ()
    return months


class _Builder:
    def __init__(
        self, dialect: str, workspace: str, secret: str, months: tuple[partitions.Month, ...] = ()
    ) -> None:
        self.pg = dialect == "postgresql"
        self.workspace = workspace
        self.secret = secret
        # The root page reads these months' partitions (PostgreSQL; see `in_partition`).
        self.months = months

    # -- JSON constructors ------------------------------------------------------------------

    def obj(self, values: list[ColumnElement[Any]]) -> ColumnElement[Any]:
        """An object's values as a JSON array, in the order of its fields (see `Shaper`)."""
        if len(values) > MAX_VALUES:
            raise TooWide(f"{len(values)} values in one object")
        if self.pg:
            return func.json_build_array(*values)
        return func.json_array(*values)

    def nested(self, statement: Select[Any]) -> ColumnElement[Any]:
        """A correlated subquery's JSON as a value (SQLite loses the JSON subtype on the way)."""
        value = statement.scalar_subquery()
        return value if self.pg else func.json(value)

    def listed(
        self, item: ColumnElement[Any], page: FromClause, order: list[ColumnElement[Any]]
    ) -> ColumnElement[Any]:
        """A page's items as a JSON array, from `ARRAY(SELECT item ... ORDER BY ...)`
        (PostgreSQL): an array keeps its subquery's order, where `json_agg(... ORDER BY ...)`
        sorts each page again (one sort per parent row of a nested connection)."""
        rows = select(item).select_from(page).order_by(*order).scalar_subquery()
        return func.array_to_json(func.array(rows))

    def boolean(self, condition: ColumnElement[Any]) -> ColumnElement[Any]:
        if self.pg:
            return condition
        return func.json(case((condition, "true"), else_="false"))

    def array(
        self,
        item: ColumnElement[Any],
        order: list[ColumnElement[Any]],
        *,
        kept: ColumnElement[bool] | None,
    ) -> ColumnElement[Any]:
        if self.pg:
            aggregated = func.json_agg(aggregate_order_by(item, *order))
            kept_only = aggregated if kept is None else aggregated.filter(kept)
            return func.coalesce(kept_only, literal_column("'[]'::json"))
        # SQLite aggregates in the order of its ordered FROM subquery (see `_connection`).
        grouped = func.json_group_array(func.json(item))
        return grouped if kept is None else grouped.filter(kept)

    # -- scalars ----------------------------------------------------------------------------

    def time(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """A time as a value: on PostgreSQL the UTC `timestamp`, which the JSON constructors
        write as `2025-05-30T08:37:41.96` (ISO 8601 whatever the session's settings, the
        fraction without its trailing zeros) and `Shaper` completes (`utc_text`): a fifth of
        W1's database CPU went to `to_char`."""
        if self.pg:
            return func.timezone(literal_column("'UTC'"), column)
        return column  # stored as that very text

    def time_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """A time as its GraphQL text, for a cursor's sort value (signed by `Shaper`)."""
        if self.pg:
            return func.to_char(func.timezone(literal_column("'UTC'"), column), PG_TIME_LITERAL)
        return column

    def column(self, row: Row, spec: Column) -> ColumnElement[Any]:
        column = row(spec.name)
        if spec.kind == "time":
            return self.time(column)
        if spec.kind == "bool":
            return self.boolean(column)
        return column

    def duration(self, row: Row) -> ColumnElement[Any]:
        start, end = row("start_time"), row("end_time")
        if self.pg:
            return cast(func.round(extract("epoch", end - start) * 1000), BigInteger)
        seconds = func.strftime("%s", end) - func.strftime("%s", start)
        millis = cast(func.substr(end, 21, 3), Integer) - cast(func.substr(start, 21, 3), Integer)
        return case(
            (and_(start.is_not(None), end.is_not(None)), seconds * 1000 + millis), else_=null()
        )

    def cursor(self, key: SortKey, row: Row) -> list[ColumnElement[Any]]:
        """A cursor's two values: the row's id and its sort value's text (`=` and the text, `~`
        for null); `Shaper` signs them into the cursor `identifiers` makes."""
        value = row(key.column.key)
        if isinstance(key.column.type, UtcDateTime):
            value_text: ColumnElement[Any] = self.time_text(value)
        elif isinstance(key.column.type, String):
            value_text = value
        else:
            value_text = cast(value, Text)
        tail: ColumnElement[Any] = literal_column("'='").op("||")(value_text)
        if key.nullable:
            tail = case((value.is_(None), literal_column("'~'")), else_=tail)
        return [row("id"), tail]

    # -- objects ----------------------------------------------------------------------------

    def object(self, plan: ObjectPlan, row: Row, source: FromClause) -> ColumnElement[Any]:
        return self.fields(plan.fields, row, source)

    def fields(self, fields: Fields, row: Row, source: FromClause) -> ColumnElement[Any]:
        """Constants (`__typename`) are not sent: `Shaper` puts them in."""
        return self.obj(
            [self.value(value, row, source) for _, value in fields if not isinstance(value, Const)]
        )

    def value(self, value: Value, row: Row, source: FromClause) -> ColumnElement[Any]:
        if isinstance(value, Column):
            return self.column(row, value)
        if isinstance(value, GlobalId):
            return row("id")  # `Shaper` encodes it
        if isinstance(value, JobName):
            return row("job_id")  # `Shaper` names it
        if isinstance(value, Duration):
            return self.duration(row)
        if isinstance(value, Facet):
            fields = self.fields(value.fields, row, source)
            empty = and_(true(), *(row(column).is_(None) for column in value.columns))
            facet = case((empty, null()), else_=fields)
            return facet if self.pg else func.json(facet)
        if isinstance(value, Link):
            return self.link(value, row, source)
        if isinstance(value, ConnectionPlan):
            return self.nested(self.connection(value, source))
        raise TypeError(f"cannot compile {value!r}")

    def link(self, link: Link, row: Row, source: FromClause) -> ColumnElement[Any]:
        entity = link.target.entity
        if entity == "job":
            target = jobs.base_query(self.workspace).where(Job.id == row(link.column))
        elif entity == "instance":
            target = instances.base_query(self.workspace).where(Instance.id == row(link.column))
            if link.column == "instance_id":  # a node's instance: its month's partition only
                target = target.where(Instance.plan_time == row("instance_plan_time"))
        else:
            raise TypeError(f"no link to {entity}")
        found = _prune(target, _needed([link.target.fields])).correlate(source).subquery()
        rendered = self.object(link.target, _columns(found), found)
        return self.nested(select(rendered).select_from(found))

    # -- connections ------------------------------------------------------------------------

    def source(
        self, plan: ConnectionPlan, parent: FromClause | None
    ) -> tuple[Select[Any], SortKey, Select[Any]]:
        """The connection's rows (filtered, confined), its order, and its count statement."""
        workspace = self.workspace
        key = sort_key(plan)
        if plan.entity == "instance":
            assert isinstance(plan.filter, InstanceFilter)
            conditions = instances.filter_conditions(workspace, plan.filter)
            base = instances.base_query(workspace)
            counted = select(func.count()).select_from(Instance)
            counted = counted.where(in_workspace(Instance.workspace_id, workspace))  # type: ignore[arg-type]
            if parent is not None:
                conditions.append(Instance.job_id == parent.c.id)
        elif plan.entity == "job":
            assert isinstance(plan.filter, JobFilter)
            conditions = jobs.filter_conditions(plan.filter)
            base = jobs.base_query(workspace)
            counted = select(func.count()).select_from(Job)
            counted = counted.where(in_workspace(Job.workspace_id, workspace))  # type: ignore[arg-type]
        else:
            assert plan.filter is None or isinstance(plan.filter, tuple)
            conditions = nodes.filter_conditions(plan.filter)
            base = nodes.base_query(workspace)
            counted = select(func.count()).select_from(InstanceNode)
            counted = counted.where(in_workspace(InstanceNode.workspace_id, workspace))  # type: ignore[arg-type]
            if parent is not None:
                # Both halves of the node's key: PostgreSQL reads only the parent's month of
                # nodes (pruned at run time, per parent row), not one index per month.
                conditions.append(InstanceNode.instance_id == parent.c.id)
                conditions.append(InstanceNode.instance_plan_time == parent.c.plan_time)
        rows = _prune(base, _needed(_row_fields(plan)) | {key.column.key}).where(*conditions)
        counted = counted.where(*conditions)
        if parent is not None:
            rows, counted = rows.correlate(parent), counted.correlate(parent)
        return rows, key, counted

    def connection(self, plan: ConnectionPlan, parent: FromClause | None) -> Select[Any]:
        rows, key, counted = self.source(plan, parent)
        window = plan.window
        form = page_form(plan, key)
        ends, lean = form.ends_in_sql, not form.numbered
        page = apply_window(
            rows, key, window, numbered=form.numbered, peek=form.peek, inline_limit=True
        )
        months = self.months if parent is None else ()
        if len(months) == 1:
            page, counted = in_partition(page, months[0]), in_partition(counted, months[0])
        elif months and isinstance(window, KeysetWindow) and not form.numbered:
            # A page of each month, then the page of those; the counts summed. (A numbered
            # page, whose rows are numbered in the page, reads the partitioned table.)
            parts = [in_partition(page, month) for month in months]
            page = merge_pages(parts, key, window, peek=form.peek)
            counts = [in_partition(counted, month).scalar_subquery() for month in months]
            counted = select(functools.reduce(operator.add, counts))
        if parent is not None:
            page = page.correlate(parent)
        fetched = page.subquery()
        # The page's row count is only needed to find the last kept row's cursor.
        framed = select(fetched, func.count().over().label("_c")) if ends else select(fetched)
        from_end = window.from_end

        def shown_order(source: FromClause) -> list[ColumnElement[Any]]:
            if lean:
                columns = (source.c[key.column.key], source.c[key.id.key])
                return [c.desc() if key.descending else c.asc() for c in columns]
            return [source.c._n.desc() if from_end else source.c._n.asc()]

        if not self.pg:
            # SQLite before 3.44 has no ORDER BY inside aggregates: it aggregates in FROM order.
            framed = framed.order_by(*shown_order(fetched))
        r = framed.subquery()
        row = _columns(r)
        # The page size is written into the SQL, not bound: with a bound LIMIT, PostgreSQL's
        # generic plan cannot know how few rows are wanted, so it replans every execution.
        limit = _as_int(window.limit)
        order = shown_order(r)
        number = null() if lean else r.c._n  # used only when not lean
        kept = None if lean else number <= limit
        last_kept: ColumnElement[Any] = null()  # used only when a cursor of the page's ends is
        if ends:
            last_kept = func.least(r.c._c, limit) if self.pg else func.min(r.c._c, limit)
        more = func.count() > limit

        def cursor_at(position: ColumnElement[Any]) -> list[ColumnElement[Any]]:
            return [
                func.max(case((number == position, value), else_=null()))
                for value in self.cursor(key, row)
            ]

        first_out, last_out = (last_kept, 1) if from_end else (1, last_kept)
        # The page read once, as an ARRAY(subquery) in its order, where nothing else reads it.
        listed = self.pg and lean and _lists_only(plan)
        values: list[ColumnElement[Any]] = []
        aggregates = False  # whether anything reads the page's rows (all through aggregates)
        for _, part in plan.fields:
            if isinstance(part, Edges | Nodes):
                if isinstance(part, Nodes):
                    item = self.object(part.item, row, r)
                else:
                    edge_values: list[ColumnElement[Any]] = []
                    for _, edge_part in part.fields:
                        if isinstance(edge_part, Cursor):
                            edge_values += self.cursor(key, row)
                        elif isinstance(edge_part, ObjectPlan):
                            edge_values.append(self.object(edge_part, row, r))
                    item = self.obj(edge_values)
                if listed:
                    values.append(self.listed(item, r, order))
                else:
                    values.append(self.array(item, order, kept=kept))
                    aggregates = True
            elif isinstance(part, PageInfo):
                info: list[ColumnElement[Any]] = []
                for _, name in part.fields:
                    if isinstance(name, Const):
                        continue
                    elif name == "hasNextPage":
                        # As page_from_rows: exact paging forward (with or without `before`).
                        has_next: ColumnElement[bool]
                        if from_end:
                            has_next = true() if window.before is not None else false()
                        else:
                            has_next, aggregates = more, True
                        info.append(self.boolean(has_next))
                    elif name == "hasPreviousPage":
                        has_previous: ColumnElement[bool]
                        if from_end:
                            has_previous, aggregates = more, True
                        else:
                            has_previous = true() if window.after is not None else false()
                        info.append(self.boolean(has_previous))
                    elif not ends:
                        continue  # the first or last edge's cursor (see PageForm)
                    elif name == "startCursor":
                        info += cursor_at(_as_int(first_out))
                        aggregates = True
                    else:
                        info += cursor_at(_as_int(last_out))
                        aggregates = True
                values.append(self.obj(info))
            elif isinstance(part, TotalCount):
                values.append(counted.scalar_subquery())
        if not aggregates:
            # Nothing aggregates the page (only totalCount, __typename, page info that is
            # constant for these arguments, or its one list read as an array): no FROM, and
            # without an aggregate the statement would make one row per page row (none for an
            # empty page).
            return select(self.obj(values))
        return select(self.obj(values)).select_from(r)

    def single(self, plan: SinglePlan) -> Select[Any]:
        lookup = plan.lookup
        if isinstance(lookup, InstanceLookup):
            found = instances.lookup_query(self.workspace, lookup.job_name, lookup.instance_id)
            found = _prune(found, _needed([plan.item.fields]))
        elif isinstance(lookup, JobLookup):
            found = _prune(jobs.base_query(self.workspace), _needed([plan.item.fields]))
            found = found.where(Job.name == lookup.name)
        else:  # by id, confined to the workspace like the by-id loaders
            assert isinstance(lookup, IdLookup)
            base, key = BY_ID[lookup.entity]
            found = _prune(base(self.workspace), _needed([plan.item.fields]))
            found = found.where(key == lookup.key)
        r = found.subquery()
        return select(self.object(plan.item, _columns(r), r)).select_from(r)

    def many(self, plan: ManyPlan) -> Select[Any] | CompoundSelect[Any]:
        """One row per object found: (its group's index, its key, its JSON)."""
        parts = []
        for index, (item, keys) in enumerate(plan.groups):
            base, key = BY_ID[item.entity]
            found = _prune(base(self.workspace), _needed([item.fields])).where(key.in_(keys))
            r = found.subquery()
            value = self.object(item, _columns(r), r)
            parts.append(
                select(
                    literal_column(str(index), Integer).label("g"),
                    r.c.id.label("k"),
                    (cast(value, Text) if self.pg else value).label("v"),
                ).select_from(r)
            )
        if not parts:  # no id names an object: one statement that finds nothing
            nothing: list[Any] = [
                literal_column("0", Integer),
                literal_column("0", Integer),
                null(),
            ]
            return select(*nothing).where(false())
        return parts[0] if len(parts) == 1 else union_all(*parts)


Shape = Callable[[Any], Any]
# Type names go into generated code: GraphQL names only.
TYPE_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


class Shaper:
    """Turns a statement's arrays into the GraphQL value: keys from the plan, constants put in,
    global ids encoded, job ids named (`job_names.job_name`) and cursors signed here, where they
    cost the least in a deployment whose database is the scarce machine (bench/PERFORMANCE.md).

    Made once per (plan, workspace, secret) and kept with the statement. Each object selection
    becomes one small generated function, `{"key": v[0], "id": <global id of v[1]>, ...}`, the way
    `dataclasses` makes its `__init__`: a dict display costs a fraction of a generic loop over
    the fields, and W5 shapes eleven thousand objects per request. Keys and constants enter the
    code only through `repr`, values never."""

    def __init__(self, workspace: str, secret: str, dialect: str) -> None:
        self.scope = f":{len(workspace)}:{workspace}"
        self.secret = secret.encode()
        self.pg = dialect == "postgresql"
        self.env: dict[str, Any] = {
            "_b64": binascii.b2a_base64,
            "_job": job_names.job_name,
            "_time": utc_text,
        }

    def root(self, plan: RootPlan) -> Shape:
        if isinstance(plan, ConnectionPlan):
            return self.connection(plan)
        if isinstance(plan, SinglePlan):
            return self.object(plan.item.fields)
        groups = [self.object(item.fields) for item, _ in plan.groups]
        return lambda rows: [groups[group](value) for group, value in rows]

    def _name(self, value: Any) -> str:
        name = f"_f{len(self.env)}"
        self.env[name] = value
        return name

    def _function(self, entries: list[str]) -> Shape:
        """`def shape(v)` returning the dict display of `entries` (null for a null `v`)."""
        code = "def shape(v):\n    if v is None:\n        return None\n"
        code += "    return {" + ", ".join(entries) + "}\n"
        namespace: dict[str, Any] = {}
        exec(compile(code, "<jobql shaper>", "exec"), self.env, namespace)
        shape: Shape = namespace["shape"]
        return shape

    def object(self, fields: Fields) -> Shape:
        entries: list[str] = []
        at = 0
        for key, value in fields:
            if isinstance(value, Const):
                entries.append(f"{key!r}: {value.value!r}")
                continue
            slot = f"v[{at}]"
            at += 1
            if isinstance(value, GlobalId):
                if not TYPE_NAME.fullmatch(value.type_name):
                    raise ValueError(f"not a GraphQL name: {value.type_name!r}")
                # encode_global_id's bytes: base64 of "<Type>:<key>".
                prefix = repr(f"{value.type_name}:".encode())
                slot = f"_b64({prefix} + str({slot}).encode(), newline=False).decode()"
            elif isinstance(value, JobName):
                slot = f"_job({slot})"
            elif isinstance(value, Column) and value.kind == "time" and self.pg:
                slot = f"_time({slot})"
            elif isinstance(value, Facet):
                slot = f"{self._name(self.object(value.fields))}({slot})"
            elif isinstance(value, Link):
                slot = f"{self._name(self.object(value.target.fields))}({slot})"
            elif isinstance(value, ConnectionPlan):
                slot = f"{self._name(self.connection(value))}({slot})"
            entries.append(f"{key!r}: {slot}")
        return self._function(entries)

    def _signer(self, plan: ConnectionPlan) -> str:
        spec = plan.cursor
        prefix = f"{spec.kind}:{spec.field}:{spec.direction}:"
        scope, secret = self.scope, self.secret

        def sign(key: Any, tail: Any) -> str | None:
            if key is None or tail is None:  # no row at that end; a time SQL cannot print
                return None
            return sign_cursor(secret, f"{prefix}{key}{scope}{tail}")

        return self._name(sign)

    def connection(self, plan: ConnectionPlan) -> Shape:
        sign = self._signer(plan)
        form = page_form(plan, sort_key(plan))
        window = plan.window
        # The page's rows; with `trim`, the row past the page dropped (the first when paging
        # from the end: the rows are in the sort key's order).
        each = _each
        if form.trim:
            assert isinstance(window.limit, int)
            each = partial(_trimmed, limit=window.limit, from_end=window.from_end)
        entries: list[str] = []
        infos: list[tuple[str, tuple[tuple[str, bool], ...]]] = []
        at = 0
        for key, part in plan.fields:
            if isinstance(part, Const):
                entries.append(f"{key!r}: {part.value!r}")
                continue
            slot = f"v[{at}]"
            at += 1
            if isinstance(part, Edges):
                edge = self._with_cursors(part.fields, sign, ends=True)
                slot = f"{self._name(each(edge))}({slot})"
            elif isinstance(part, Nodes):
                slot = f"{self._name(each(self.object(part.item.fields)))}({slot})"
            elif isinstance(part, PageInfo):
                info = self._with_cursors(part.fields, sign, ends=form.ends_in_sql)
                slot = f"{self._name(info)}({slot})"
                ends = tuple(
                    (name_key, name == "startCursor")
                    for name_key, name in part.fields
                    if name in ("startCursor", "endCursor")
                )
                if ends:
                    infos.append((key, ends))
            entries.append(f"{key!r}: {slot}")
        shape = self._function(entries)
        found = edge_cursor(plan)
        if form.ends_in_sql or found is None or not infos:
            return shape
        return partial(_with_ends, shape, edges=found[0], cursor=found[1], infos=tuple(infos))

    def _with_cursors(self, fields: Sequence[tuple[str, Any]], sign: str, *, ends: bool) -> Shape:
        """Edges and page info: a cursor takes two values (see `_Builder.cursor`); without
        `ends`, start and end cursors are put in by `_with_ends`."""
        entries: list[str] = []
        at = 0
        for key, value in fields:
            if isinstance(value, Const):
                entries.append(f"{key!r}: {value.value!r}")
            elif value in ("startCursor", "endCursor") and not ends:
                entries.append(f"{key!r}: None")
            elif isinstance(value, Cursor) or value in ("startCursor", "endCursor"):
                entries.append(f"{key!r}: {sign}(v[{at}], v[{at + 1}])")
                at += 2
            elif isinstance(value, ObjectPlan):
                entries.append(f"{key!r}: {self._name(self.object(value.fields))}(v[{at}])")
                at += 1
            else:
                entries.append(f"{key!r}: v[{at}]")
                at += 1
        return self._function(entries)


# What PostgreSQL's JSON text of a `timestamp` lacks, by its length, to be `format_utc`'s text.
_TIME_TAILS = {19: ".000Z", 21: "00Z", 22: "0Z", 23: "Z"}


def utc_text(value: str | None) -> str | None:
    """`format_utc`'s text of a UTC time from PostgreSQL's JSON text of it (`_Builder.time`):
    milliseconds padded, microseconds cut as `to_char`'s `MS` cuts them; null where `to_char`
    gives null (infinite times: `-infinity`, `infinity`)."""
    if value is None:
        return None
    tail = _TIME_TAILS.get(len(value))
    if tail is not None:
        return value + tail
    return value[:23] + "Z" if len(value) > 23 else None


def _each(shape: Shape) -> Shape:
    return lambda values: None if values is None else [shape(value) for value in values]


def _trimmed(shape: Shape, *, limit: int, from_end: bool) -> Shape:
    def trimmed(values: Any) -> Any:
        if values is None:
            return None
        if len(values) > limit:
            values = values[1:] if from_end else values[:limit]
        return [shape(value) for value in values]

    return trimmed


def _with_ends(
    shape: Shape,
    values: Any,
    *,
    edges: str,
    cursor: str,
    infos: tuple[tuple[str, tuple[tuple[str, bool], ...]], ...],
) -> Any:
    """The connection with its page infos' start and end cursors: its first and last edges'.
    `infos`: per page info selection, its response key and, per end cursor asked, the cursor's
    response key and whether it is the start."""
    found = shape(values)
    if found is None:
        return None
    page = found[edges]
    first, last = (page[0][cursor], page[-1][cursor]) if page else (None, None)
    for key, ends in infos:
        info = found[key]
        for name, start in ends:
            info[name] = first if start else last
    return found


BY_ID = {
    "instance": (instances.base_query, Instance.__table__.c.id),
    "job": (jobs.base_query, Job.__table__.c.id),
    "node": (nodes.base_query, InstanceNode.__table__.c.id),
}


def _row_fields(plan: ConnectionPlan) -> list[Fields]:
    """The object selections of a connection's items (edges' nodes and nodes)."""
    found: list[Fields] = []
    for _, part in plan.fields:
        if isinstance(part, Nodes):
            found.append(part.item.fields)
        elif isinstance(part, Edges):
            found += [value.fields for _, value in part.fields if isinstance(value, ObjectPlan)]
    return found


def _lists_only(plan: ConnectionPlan) -> bool:
    """Whether the connection's page is read by one list of items (edges or nodes) and by
    nothing else: no second list, and no page info that counts the rows read."""
    lists = 0
    for _, part in plan.fields:
        if isinstance(part, Edges | Nodes):
            lists += 1
        elif isinstance(part, PageInfo):
            counted = "hasPreviousPage" if plan.window.from_end else "hasNextPage"
            if any(name == counted for _, name in part.fields):
                return False
    return lists == 1


def _needed(selections: list[Fields]) -> set[str]:
    """The columns a row must carry for these selections (not those of nested statements)."""
    needed = {"id"}

    def visit(fields: Fields) -> None:
        for _, value in fields:
            if isinstance(value, Column):
                needed.add(value.name)
            elif isinstance(value, Duration):
                needed.update(("start_time", "end_time"))
            elif isinstance(value, JobName):
                needed.add("job_id")
            elif isinstance(value, Facet):
                needed.update(value.columns)
                visit(value.fields)
            elif isinstance(value, Link):
                needed.add(value.column)
                if value.column == "instance_id":
                    needed.add("instance_plan_time")  # see `_Builder.link`
            elif isinstance(value, ConnectionPlan) and value.entity == "node":
                needed.add("plan_time")  # the nodes' partition key (see `_Builder.source`)

    for fields in selections:
        visit(fields)
    return needed


def _prune(statement: Select[Any], needed: set[str]) -> Select[Any]:
    """Only the columns the statement's readers use: smaller subqueries, cheaper to build."""
    selected = statement.selected_columns
    return statement.with_only_columns(
        *(column for column in selected if column.key in needed), maintain_column_froms=True
    )


def _columns(source: FromClause) -> Row:
    return lambda name: source.c[name]


def _as_int(value: ColumnElement[Any] | int) -> ColumnElement[Any]:
    if isinstance(value, int):
        return literal_column(str(value))
    return value


# Built statements by (plan, dialect, workspace, secret), and their shapers: building one costs
# milliseconds of SQLAlchemy construction; a repeated request (a dashboard polling, the next request
# of a page that did not move) reuses it, and SQLAlchemy's compiled cache keys its SQL text by
# shape.
STATEMENT_CACHE_SIZE = 512
_built: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
B = TypeVar("B")


def _cached(key: tuple[Any, ...], build: Callable[[], B]) -> B:
    """What `build` makes, kept in `_built` by `key` (least recently used dropped)."""
    try:
        cached: B = _built[key]
    except (KeyError, TypeError):  # TypeError: an unhashable value; build it every time
        pass
    else:
        _built.move_to_end(key)
        return cached
    made = build()
    try:
        _built[key] = made
    except TypeError:
        return made
    if len(_built) > STATEMENT_CACHE_SIZE:
        _built.popitem(last=False)
    return made


def _checked(
    statement: Select[Any] | CompoundSelect[Any], dialect: str
) -> Select[Any] | CompoundSelect[Any]:
    check(statement, dialect)  # raises Refused: the database's compiler would refuse it
    return statement


def build_statement(
    plan: RootPlan,
    *,
    dialect: str,
    workspace: str,
    secret: str,
    months: tuple[partitions.Month, ...] = (),
) -> Select[Any] | CompoundSelect[Any]:
    """`months`: the root page reads these months' partitions (`window_months` of the plan, on
    a PostgreSQL database that has them all)."""
    return _cached(
        (plan, dialect, workspace, secret, months),
        lambda: _checked(
            _build(plan, dialect=dialect, workspace=workspace, secret=secret, months=months),
            dialect,
        ),
    )


def shaper(plan: RootPlan, *, dialect: str, workspace: str, secret: str) -> Shape:
    """How the statement's rows of `plan` become its GraphQL value (see `Shaper`)."""
    return _cached(
        ("shape", plan, dialect, workspace, secret),
        lambda: Shaper(workspace, secret, dialect).root(plan),
    )


def _build(
    plan: RootPlan,
    *,
    dialect: str,
    workspace: str,
    secret: str,
    months: tuple[partitions.Month, ...] = (),
) -> Select[Any] | CompoundSelect[Any]:
    builder = _Builder(dialect, workspace, secret, months)
    if isinstance(plan, ManyPlan):
        return builder.many(plan)
    statement = (
        builder.single(plan) if isinstance(plan, SinglePlan) else builder.connection(plan, None)
    )
    if builder.pg:
        only = statement.selected_columns[0]
        return statement.with_only_columns(cast(only, Text))
    return statement


IDS = "ids"
# The connections of by-id reads (`read_by_ids`): a plan made once per connection (under `auto`
# each batch's keys were planned again: 0.2-0.25 ms of planning against 0.03-0.09 of execution,
# bench.live --top), and no sequential scan in it. A partition analyzed while it was empty (a
# month just begun, or DEFAULT) looks to the planner like a few rows, for which a scan costs
# less than the id's index; a plan made then and kept scanned 4,000 rows for five (0.35 ms
# against 0.05). A by-id read never wants one.
BY_KEY: DriverSettings = (("plan_cache_mode", "force_generic_plan"), ("enable_seqscan", "off"))
# A windowed page on partitioned tables, planned for its bounds (`windowed`).
FOR_ITS_VALUES: DriverSettings = (("plan_cache_mode", "force_custom_plan"),)


@dataclass(frozen=True, slots=True)
class ByIds:
    """A statement of `build_by_ids` and the shape of its objects; on PostgreSQL also its
    driver form (`Reader.driver_template`), made on first use, and the same statement reading
    one month's partition (`in_month`)."""

    statement: Select[Any] | CompoundSelect[Any]
    shape: Shape
    workspace: str
    item: ObjectPlan
    secret: str
    driver: dict[Any, DriverTemplate | None] = field(
        default_factory=dict, hash=False, compare=False
    )
    months: dict[partitions.Month | None, Select[Any]] = field(
        default_factory=dict, hash=False, compare=False
    )

    def in_month(self, month: partitions.Month | None) -> Select[Any]:
        """The statement with the instances read from `month`'s partition (PostgreSQL; None:
        the DEFAULT partition)."""
        found = self.months.get(month)
        if found is None:
            found = self.months[month] = _by_ids(
                self.item,
                dialect="postgresql",
                workspace=self.workspace,
                secret=self.secret,
                partition=True,
                month=month,
            )
            _checked(found, "postgresql")
        return found


def build_by_ids(item: ObjectPlan, *, dialect: str, workspace: str, secret: str) -> ByIds:
    """`item`'s objects by key, the keys a parameter (`IDS`, expanding): built (and checked)
    once per selection, then run for any keys by `read_by_ids`; rows (key, JSON)."""
    return _cached(
        ("by_ids", item, dialect, workspace, secret),
        lambda: ByIds(
            _checked(_by_ids(item, dialect=dialect, workspace=workspace, secret=secret), dialect),
            Shaper(workspace, secret, dialect).object(item.fields),
            workspace,
            item,
            secret,
        ),
    )


def _by_ids(
    item: ObjectPlan,
    *,
    dialect: str,
    workspace: str,
    secret: str,
    partition: bool = False,
    month: partitions.Month | None = None,
) -> Select[Any]:
    """`partition`: `instance` read as `month`'s partition (None: DEFAULT)."""
    builder = _Builder(dialect, workspace, secret)
    base, key = BY_ID[item.entity]
    # PostgreSQL: the keys as one array, so that the statement's text (and its prepared plan)
    # is the same whatever their number.
    wanted = (
        key == any_(bindparam(IDS, value=[0], type_=ARRAY(BigInteger)))
        if builder.pg
        else key.in_(bindparam(IDS, value=[0], expanding=True))
    )
    found = _prune(base(workspace), _needed([item.fields]))
    if builder.pg:
        # The keys first, then the workspace: the rows of the keys in a subquery PostgreSQL
        # does not flatten (OFFSET 0), so that the only index its plan can take is the id's.
        # Beside it, `workspace_id = $1` could choose a workspace index and filter every row of
        # the workspace (a partition not yet analyzed, which a generic plan keeps).
        table = key.table
        rows = select(table).where(wanted).offset(literal_column("0")).subquery(table.name)
        found = ClauseAdapter(rows).traverse(found)
        if partition:
            found = in_partition(found, month)
    else:
        found = found.where(wanted)
    r = found.subquery()
    value = builder.object(item, _columns(r), r)
    return select(
        r.c.id.label("k"), (cast(value, Text) if builder.pg else value).label("v")
    ).select_from(r)


async def read_by_ids(
    reader: Reader,
    by_ids: ByIds,
    keys: Sequence[int],
    plan_times: Mapping[int, datetime] | None = None,
) -> dict[int, str]:
    """The JSON text of each object of `keys` found (a statement of `build_by_ids`). On
    PostgreSQL straight to the driver: one round trip, no transaction, a prepared statement
    planned once per connection (the subscriptions' reads, several per batch of events, are all
    this).

    `plan_times`: instances' plan times as their events reported them. On partitioned tables
    the keys of a month that has its partition are read from it by name, and those of other
    months from DEFAULT, one statement each: a generic plan of the partitioned table probes every
    month's index for every key (bench.live --top: 0.45-0.65 ms against 0.04 for three to five
    instances and nine months). The keys not found there (a plan time moved since the event)
    and those without a plan time are read through the table."""
    rows: list[Any] = []
    rest: Sequence[int] = keys
    if plan_times and by_ids.item.entity == "instance" and await partitions.has_default(reader):
        places: dict[partitions.Month | None, list[int]] = {}
        for key in keys:
            time = plan_times.get(key)
            if time is not None:
                month = partitions.month_of(time)
                # DEFAULT holds the months without partitions, as far as this process knows.
                place = month if await partitions.has_month(reader, month) else None
                places.setdefault(place, []).append(key)
        for place, part in places.items():
            try:
                rows.extend(await _rows_by_ids(reader, by_ids, part, place, partition=True))
            except Exception as exc:
                # Dropped since (prune)? The catalog is read again, the keys through the table
                # (which raises what is not about the partition).
                logger.info("by-id read of a partition failed, read through the table: %s", exc)
                partitions.forget(reader)
        found = {row[0] for row in rows}
        rest = [key for key in keys if key not in found]
    if rest:
        rows.extend(await _rows_by_ids(reader, by_ids, rest, None, partition=False))
    shape = by_ids.shape

    def shaped() -> dict[int, str]:
        return {
            int(key): orjson.dumps(shape(orjson.loads(value))).decode()
            for key, value in rows
            if value is not None
        }

    return await _named(reader, by_ids.workspace, shaped, autocommit=False)


async def _rows_by_ids(
    reader: Reader,
    by_ids: ByIds,
    keys: Sequence[int],
    month: partitions.Month | None,
    *,
    partition: bool,
) -> Sequence[Any]:
    """Rows of `keys` through the table, or (`partition`) from `month`'s partition (None:
    DEFAULT)."""
    dialect = reader.dialect
    statement = by_ids.in_month(month) if partition else by_ids.statement
    slot: Any = (dialect, month) if partition else dialect
    if slot not in by_ids.driver:
        by_ids.driver[slot] = reader.driver_template(statement, IDS)
    template = by_ids.driver[slot]
    if template is None:
        return list(await reader.execute(statement.params({IDS: list(keys)})))
    sql, args, at = template
    values = list(args)
    values[at] = list(keys)
    return await reader.fetch_driver(sql, values, settings=BY_KEY)


async def read_json(
    reader: Reader, plan: RootPlan, *, workspace: str, secret: str, autocommit: bool = False
) -> str | None:
    """The JSON text of the plan's root value; None when a lookup finds nothing."""
    months = await _partitioned_months(reader, plan, autocommit=autocommit)
    statement = build_statement(
        plan, dialect=reader.dialect, workspace=workspace, secret=secret, months=months
    )
    shape = shaper(plan, dialect=reader.dialect, workspace=workspace, secret=secret)
    try:
        rows = await reader.execute(statement, autocommit=autocommit)
    except Exception:
        if months:  # a partition may have been dropped since: read the catalog again
            partitions.forget(reader)
        raise
    return await _named(
        reader, workspace, partial(_json_of, plan, shape, rows), autocommit=autocommit
    )


async def _named(reader: Reader, workspace: str, shaped: Callable[[], B], *, autocommit: bool) -> B:
    """`shaped()` with the job names of the reader's database (`job_names`). Names it did not
    know are read in one more statement (in autocommit when `autocommit`: the request's only
    other statement), and the rows shaped again: only a cold cache or a new job pays that."""
    naming = job_names.Naming(job_names.of(reader))
    with _no_collection(), job_names.naming(naming):
        found = shaped()
    if not naming.missing:
        return found
    await naming.read_missing(reader, workspace, autocommit=autocommit)
    with _no_collection(), job_names.naming(naming):
        return shaped()


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """Shaping makes tens of thousands of lists and dicts that all live on (W5: ~11,000
    objects): without this, each few hundred of them start a cyclic collection that walks them
    all again, which more than doubles the cost. Nothing here makes a cycle, and nothing awaits
    in between."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _json_of(plan: RootPlan, shape: Shape, rows: Sequence[Any]) -> str | None:
    if isinstance(plan, ManyPlan):
        values = shape([(group, orjson.loads(value)) for group, _, value in rows])
        found = {(group, key): value for (group, key, _), value in zip(rows, values, strict=True)}
        return orjson.dumps([found.get(at) if at else None for at in plan.order]).decode()
    if not rows:
        return None
    value = rows[0][0]
    if value is None:
        return None
    return orjson.dumps(shape(orjson.loads(value))).decode()


@dataclass(frozen=True, slots=True)
class PreparedRead:
    """A plan's statement, built once: on PostgreSQL the driver's form (text and values); the
    SQLAlchemy form where that is what runs (other databases, several statements)."""

    plan: RootPlan
    statement: Select[Any] | CompoundSelect[Any] | None
    driver: tuple[str, tuple[Any, ...]] | None
    shape: Shape
    workspace: str
    custom_plan: bool = False
    # `window_months(plan)`, and the statement in that form, read when every one of them has
    # its partition (PostgreSQL): the page of a window of a few months reads those partitions.
    months: tuple[partitions.Month, ...] = ()
    months_statement: Select[Any] | CompoundSelect[Any] | None = None
    months_driver: tuple[str, tuple[Any, ...]] | None = None


def windowed(plan: RootPlan) -> bool:
    """Instances in a plan-time window: on PostgreSQL's partitions such a page must be planned
    for its bounds (`Reader.fetch_driver` with `force_custom_plan`). The generic plan, which
    estimates a window at a few rows, appends the partitions' rows and sorts them: it read all
    28,738 rows of an 18-day window for a page of 50 (22 ms against 0.6 ms, 200,000 instances)."""
    if not isinstance(plan, ConnectionPlan) or plan.entity != "instance":
        return False
    spec = plan.filter
    return isinstance(spec, InstanceFilter) and (
        spec.plan_time_after is not None or spec.plan_time_before is not None
    )


def prepare_read(
    reader: Reader, plan: RootPlan, *, workspace: str, secret: str, alone: bool
) -> PreparedRead:
    """`alone`: the request's only statement, sent straight to the driver where there is one."""
    dialect = reader.dialect
    statement = build_statement(plan, dialect=dialect, workspace=workspace, secret=secret)
    driver = reader.driver_statement(statement) if alone else None
    shape = shaper(plan, dialect=reader.dialect, workspace=workspace, secret=secret)
    months = (window_months(plan) if dialect == "postgresql" else None) or ()
    statement_or_none = None if driver is not None else statement
    if not months:
        return PreparedRead(plan, statement_or_none, driver, shape, workspace, windowed(plan))
    in_months = build_statement(
        plan, dialect=dialect, workspace=workspace, secret=secret, months=months
    )
    months_driver = reader.driver_statement(in_months) if alone else None
    return PreparedRead(
        plan,
        statement_or_none,
        driver,
        shape,
        workspace,
        windowed(plan),
        months,
        None if months_driver is not None else in_months,
        months_driver,
    )


async def read_prepared(reader: Reader, prepared: PreparedRead, *, alone: bool) -> str | None:
    """`read_json` of a prepared statement. `alone`: the request's only statement, sent straight
    to the driver where there is one (no transaction), else read in autocommit."""
    if prepared.months and await _partitioned_months(reader, prepared.plan, autocommit=alone):
        try:
            if prepared.months_driver is not None:
                rows = await reader.fetch_driver(*prepared.months_driver)
            else:
                assert prepared.months_statement is not None
                rows = await reader.execute(prepared.months_statement, autocommit=alone)
        except Exception:
            partitions.forget(reader)  # a partition may have been dropped since
            raise
    elif prepared.driver is not None:
        if prepared.custom_plan:
            rows = await reader.fetch_driver(*prepared.driver, settings=FOR_ITS_VALUES)
        else:
            rows = await reader.fetch_driver(*prepared.driver)
    else:
        assert prepared.statement is not None
        rows = await reader.execute(prepared.statement, autocommit=alone)
    shaped = partial(_json_of, prepared.plan, prepared.shape, rows)
    return await _named(reader, prepared.workspace, shaped, autocommit=alone)


__all__ = [
    "ByIds",
    "InstanceFilter",
    "InstanceOrder",
    "JobFilter",
    "NotExpressible",
    "PreparedRead",
    "Refused",
    "Shaper",
    "TooWide",
    "build_by_ids",
    "build_statement",
    "prepare_read",
    "read_by_ids",
    "read_json",
    "read_prepared",
]
