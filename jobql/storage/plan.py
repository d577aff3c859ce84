"""A compiled read as plain data: what one statement must return, and in which JSON shape.

Built by `jobql.resolvers.selection` from a GraphQL selection (already validated, arguments already
turned into filters and windows); turned into SQL by `jobql.storage.json_sql`. Nothing here knows
GraphQL or SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jobql.storage.instances import InstanceFilter, InstanceOrder
from jobql.storage.jobs import JobFilter
from jobql.storage.paging import KeysetWindow

Entity = Literal["instance", "job", "node"]
ScalarKind = Literal["text", "int", "float", "bool", "time", "enum"]


@dataclass(frozen=True, slots=True)
class Column:
    """A stored column, rendered as the GraphQL scalar kind says."""

    name: str
    kind: ScalarKind


@dataclass(frozen=True, slots=True)
class Const:
    """A value known before the statement runs (`__typename`, the request's workspace)."""

    value: str


@dataclass(frozen=True, slots=True)
class GlobalId:
    type_name: str


@dataclass(frozen=True, slots=True)
class Duration:
    """`end_time - start_time` in milliseconds; null while either is missing."""


@dataclass(frozen=True, slots=True)
class JobName:
    """An instance's job's name: the statement returns `job_id`, the server knows its name
    (`jobql.storage.job_names`)."""


@dataclass(frozen=True, slots=True)
class Facet:
    """A nested object over columns of the same row; null when all of `columns` are null."""

    columns: tuple[str, ...]
    fields: Fields


@dataclass(frozen=True, slots=True)
class Link:
    """A to-one link through a foreign key column of this row."""

    column: str
    target: ObjectPlan


@dataclass(frozen=True, slots=True)
class ObjectPlan:
    entity: Entity
    fields: Fields


@dataclass(frozen=True, slots=True)
class Cursor:
    """An edge's cursor."""


@dataclass(frozen=True, slots=True)
class Edges:
    fields: tuple[tuple[str, Cursor | ObjectPlan | Const], ...]


@dataclass(frozen=True, slots=True)
class Nodes:
    item: ObjectPlan


PageInfoField = Literal["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"]


@dataclass(frozen=True, slots=True)
class PageInfo:
    fields: tuple[tuple[str, PageInfoField | Const], ...]


@dataclass(frozen=True, slots=True)
class TotalCount:
    """The number of matching rows, ignoring the window."""


@dataclass(frozen=True, slots=True)
class CursorSpec:
    """The constant parts of this connection's cursors (see `jobql.storage.identifiers`)."""

    kind: str
    field: str
    direction: str


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    entity: Entity
    # instance: InstanceFilter + InstanceOrder; job: JobFilter; node: statuses
    filter: InstanceFilter | JobFilter | tuple[str, ...] | None
    order: InstanceOrder | None
    window: KeysetWindow
    cursor: CursorSpec
    fields: tuple[tuple[str, Edges | Nodes | PageInfo | TotalCount | Const], ...]
    # Foreign key column of the child that names the parent row (nested connections only).
    parent_column: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceLookup:
    job_name: str
    instance_id: int


@dataclass(frozen=True, slots=True)
class JobLookup:
    name: str


@dataclass(frozen=True, slots=True)
class IdLookup:
    """An object by its surrogate id (a global id's key)."""

    entity: Entity
    key: int


@dataclass(frozen=True, slots=True)
class SinglePlan:
    """One object found by a lookup; the statement returns null when there is none."""

    lookup: InstanceLookup | JobLookup | IdLookup
    item: ObjectPlan


@dataclass(frozen=True, slots=True)
class ManyPlan:
    """Objects by global id (`nodes(ids:)`), in the order asked, null where an id names nothing
    in the workspace: per entity its selection and keys; per requested id its (group, key)."""

    groups: tuple[tuple[ObjectPlan, tuple[int, ...]], ...]
    order: tuple[tuple[int, int] | None, ...]


Value = Column | Const | GlobalId | Duration | JobName | Facet | Link | ObjectPlan | ConnectionPlan
Fields = tuple[tuple[str, Value], ...]
RootPlan = ConnectionPlan | SinglePlan | ManyPlan
