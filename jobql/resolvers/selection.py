"""GraphQL selections -> compiled read plans (`jobql.storage.plan`), and running them.

The schema layer walks the selection (fields merged by response key, fragments, `@skip` /
`@include`) and converts arguments exactly as for the reference resolvers; this module knows which
stored column or computation answers each field, validates page arguments with the same functions
as the reference strategy (`keyset_window`, cursors), and runs the one statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobql.resolvers.context import RequestContext
from jobql.resolvers.instances import cursor_context as instance_cursor_context
from jobql.resolvers.jobs import CURSOR_KIND as JOB_CURSOR_KIND
from jobql.resolvers.nodes import CURSOR_KIND as NODE_CURSOR_KIND
from jobql.resolvers.pagination import PageArgs, keyset_window
from jobql.resolvers.validation import text
from jobql.storage import json_sql
from jobql.storage.engine import Reader
from jobql.storage.identifiers import CursorContext, ValueKind
from jobql.storage.instances import InstanceFilter, InstanceOrder
from jobql.storage.jobs import JobFilter
from jobql.storage.models import Instance
from jobql.storage.plan import (
    Column,
    ConnectionPlan,
    Const,
    Cursor,
    CursorSpec,
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

__all__ = [
    "COMPOSITES",
    "ENTITIES",
    "LEAVES",
    "Column",
    "ConnectionFields",
    "ConnectionPlan",
    "Const",
    "Cursor",
    "Edges",
    "Fields",
    "Nodes",
    "ObjectPlan",
    "PageInfo",
    "PreparedRead",
    "RootPlan",
    "TotalCount",
    "Workspace",
    "by_ids",
    "instance_connection",
    "job_connection",
    "link",
    "many_by_id",
    "may_be_null",
    "node_connection",
    "prepare",
    "prepare_read",
    "read",
    "read_by_ids",
    "read_prepared",
    "single_by_id",
    "single_instance",
    "single_job",
]


@dataclass(frozen=True, slots=True)
class Workspace:
    """Job.workspace: the request's workspace name."""


def _times(*pairs: tuple[str, str]) -> dict[str, Column]:
    return {name: Column(column, "time") for name, column in pairs}


# A facet is null when all of its columns are: every dispatch_* / runtime_* column of the model.
DISPATCH_COLUMNS = tuple(c.name for c in Instance.__table__.c if c.name.startswith("dispatch_"))
RUNTIME_COLUMNS = tuple(c.name for c in Instance.__table__.c if c.name.startswith("runtime_"))

# Fields answered by a stored column or a computation on the row. A field absent here (such as
# StreamRuntime.packages, a split of the stored text) is served by the reference strategy.
LEAVES: dict[str, dict[str, Column | GlobalId | Duration | JobName | Workspace]] = {
    "Instance": {
        "id": GlobalId("Instance"),
        "instanceId": Column("vendor_instance_id", "int"),
        "jobName": JobName(),
        "jobInstanceName": Column("job_instance_name", "text"),
        "status": Column("status", "enum"),
        "instanceType": Column("instance_type", "enum"),
        **_times(
            ("planTime", "plan_time"),
            ("startTime", "start_time"),
            ("endTime", "end_time"),
            ("submitTime", "submit_time"),
        ),
        "executeTime": Column("execute_time", "float"),
        "forceSuccess": Column("force_success", "bool"),
        "ignoreSuccess": Column("ignore_success", "bool"),
        "version": Column("version", "int"),
        "runId": Column("run_id", "text"),
        "errorMessage": Column("error_message", "text"),
        "durationMs": Duration(),
    },
    "Job": {
        "id": GlobalId("Job"),
        "jobId": Column("vendor_job_id", "int"),
        "name": Column("name", "text"),
        "workspace": Workspace(),
        "type": Column("type", "enum"),
        "parentNodeName": Column("parent_node_name", "text"),
        "namespace": Column("namespace", "text"),
    },
    "InstanceNode": {
        "id": GlobalId("InstanceNode"),
        "name": Column("name", "text"),
        "type": Column("type", "text"),
        "status": Column("status", "enum"),
        **_times(
            ("planTime", "plan_time"),
            ("startTime", "start_time"),
            ("endTime", "end_time"),
            ("submitTime", "submit_time"),
        ),
        "retryTimes": Column("retry_times", "int"),
        "inputRowCount": Column("input_row_count", "int"),
        "speed": Column("speed", "float"),
        "logPath": Column("log_path", "text"),
        "errorMessage": Column("error_message", "text"),
        "durationMs": Duration(),
    },
    "Dispatch": {
        "triggerType": Column("dispatch_trigger_type", "enum"),
        "timeType": Column("dispatch_time_type", "enum"),
        "workerAddress": Column("dispatch_worker_address", "text"),
        "executor": Column("dispatch_executor", "text"),
        "progress": Column("dispatch_progress", "text"),
        "result": Column("dispatch_result", "text"),
        **_times(("dataTime", "dispatch_data_time"), ("scheduleTime", "dispatch_schedule_time")),
    },
    "StreamRuntime": {
        "actualState": Column("runtime_actual_state", "enum"),
        "expectState": Column("runtime_expect_state", "enum"),
        "apiType": Column("runtime_api_type", "enum"),
        "engineVersion": Column("runtime_engine_version", "text"),
        "clusterId": Column("runtime_cluster_id", "text"),
        "queueName": Column("runtime_queue_name", "text"),
        "engineJobHandler": Column("runtime_engine_job_handler", "text"),
        "code": Column("runtime_code", "text"),
        "properties": Column("runtime_properties", "text"),
        "planJson": Column("runtime_plan_json", "text"),
        "inputDelay": Column("runtime_input_delay", "int"),
        "autoScaleParams": Column("runtime_auto_scale_params", "text"),
        "lastErrorMessage": Column("runtime_last_error_message", "text"),
        "lastErrorTime": Column("runtime_last_error_time", "time"),
        "lastOperator": Column("runtime_last_operator", "text"),
        "lastOperateTime": Column("runtime_last_operate_time", "time"),
        "starter": Column("runtime_starter", "text"),
    },
}

# Object-valued fields: (parent type, field) -> what kind of composite, and the target type.
COMPOSITES: dict[tuple[str, str], tuple[str, str]] = {
    ("Instance", "dispatch"): ("facet", "Dispatch"),
    ("Instance", "runtime"): ("facet", "StreamRuntime"),
    ("Instance", "job"): ("link", "Job"),
    ("Job", "parent"): ("link", "Job"),
    ("InstanceNode", "instance"): ("link", "Instance"),
    ("Instance", "nodes"): ("connection", "InstanceNodeConnection"),
    ("Job", "instances"): ("connection", "InstanceConnection"),
    ("Query", "instances"): ("connection", "InstanceConnection"),
    ("Query", "jobs"): ("connection", "JobConnection"),
    ("Query", "instance"): ("single", "Instance"),
    ("Query", "job"): ("single", "Job"),
    ("Query", "node"): ("single", "Node"),
    ("Query", "nodes"): ("many", "Node"),
}
FACET_COLUMNS = {"Dispatch": DISPATCH_COLUMNS, "StreamRuntime": RUNTIME_COLUMNS}
LINK_COLUMNS = {("Instance", "job"): "job_id", ("Job", "parent"): "parent_id"}
LINK_COLUMNS[("InstanceNode", "instance")] = "instance_id"
ENTITIES = {"Instance": "instance", "Job": "job", "InstanceNode": "node"}


def leaf(ctx: RequestContext, type_name: str, field_name: str) -> Value | None:
    found = LEAVES.get(type_name, {}).get(field_name)
    if isinstance(found, Workspace):
        return Const(ctx.workspace)
    return found


def facet(type_name: str, fields: Fields) -> Facet:
    return Facet(FACET_COLUMNS[type_name], fields)


def link(parent_type: str, field_name: str, target_type: str, fields: Fields) -> Link:
    entity = ENTITIES[target_type]
    assert entity != "node"
    return Link(LINK_COLUMNS[(parent_type, field_name)], ObjectPlan(entity, fields))  # type: ignore[arg-type]


ConnectionFields = tuple[tuple[str, Edges | Nodes | PageInfo | TotalCount | Const], ...]


def instance_connection(
    ctx: RequestContext,
    spec: InstanceFilter,
    order: InstanceOrder,
    page: PageArgs,
    fields: ConnectionFields,
    *,
    nested: bool,
) -> ConnectionPlan:
    context = instance_cursor_context(ctx, order)
    window = keyset_window(page, ctx.cursors, context, order.value_kind)
    return ConnectionPlan(
        entity="instance",
        filter=spec,
        order=order,
        window=window,
        cursor=_cursor_spec(context),
        fields=fields,
        parent_column="job_id" if nested else None,
    )


def job_connection(
    ctx: RequestContext, spec: JobFilter, page: PageArgs, fields: ConnectionFields
) -> ConnectionPlan:
    context = CursorContext(JOB_CURSOR_KIND, ctx.workspace, "NAME", "ASC")
    window = keyset_window(page, ctx.cursors, context, ValueKind.TEXT)
    return ConnectionPlan(
        entity="job",
        filter=spec,
        order=None,
        window=window,
        cursor=_cursor_spec(context),
        fields=fields,
    )


def node_connection(
    ctx: RequestContext, statuses: tuple[str, ...] | None, page: PageArgs, fields: ConnectionFields
) -> ConnectionPlan:
    context = CursorContext(NODE_CURSOR_KIND, ctx.workspace, "POSITION", "ASC")
    window = keyset_window(page, ctx.cursors, context, ValueKind.INT32)
    return ConnectionPlan(
        entity="node",
        filter=statuses,
        order=None,
        window=window,
        cursor=_cursor_spec(context),
        fields=fields,
        parent_column="instance_id",
    )


def single_instance(job_name: str, instance_id: int, fields: Fields) -> SinglePlan:
    name = text("jobName", job_name)
    assert name is not None
    return SinglePlan(InstanceLookup(name, instance_id), ObjectPlan("instance", fields))


def single_job(name: str, fields: Fields) -> SinglePlan:
    checked = text("name", name)
    assert checked is not None
    return SinglePlan(JobLookup(checked), ObjectPlan("job", fields))


def single_by_id(type_name: str, key: int, fields: Fields) -> SinglePlan:
    entity = ENTITIES[type_name]
    return SinglePlan(IdLookup(entity, key), ObjectPlan(entity, fields))  # type: ignore[arg-type]


def many_by_id(selections: dict[str, Fields], order: list[tuple[str, int] | None]) -> ManyPlan:
    """`nodes(ids:)`: `selections` per type named by the ids; `order` the (type, key) of each
    requested id, None for an id that names no object type."""
    types = list(selections)
    keys: dict[str, set[int]] = {type_name: set() for type_name in types}
    for at in order:
        if at is not None:
            keys[at[0]].add(at[1])
    groups = tuple(
        (ObjectPlan(ENTITIES[t], selections[t]), tuple(sorted(keys[t])))  # type: ignore[arg-type]
        for t in types
    )
    return ManyPlan(
        groups, tuple(None if at is None else (types.index(at[0]), at[1]) for at in order)
    )


def _cursor_spec(context: CursorContext) -> CursorSpec:
    return CursorSpec(context.kind, context.field, context.direction)


def prepare(ctx: RequestContext, plan: RootPlan) -> None:
    """Build the plan's statement now (it is cached for `read`), so that a plan SQL cannot
    express (an object too wide for one JSON constructor) is known before anything runs."""
    json_sql.build_statement(
        plan, dialect=ctx.reader.dialect, workspace=ctx.workspace, secret=ctx.cursors.secret
    )


def may_be_null(plan: RootPlan) -> bool:
    """A lookup whose miss is an answer (null), not an error: `node(id:)`."""
    return isinstance(plan, SinglePlan) and isinstance(plan.lookup, IdLookup)


async def read(ctx: RequestContext, plan: RootPlan, *, autocommit: bool = False) -> str | None:
    """The JSON text of one compiled root field (one statement); None: the lookup found nothing.

    `autocommit`: the request's only statement, read without a transaction around it."""
    return await json_sql.read_json(
        ctx.reader, plan, workspace=ctx.workspace, secret=ctx.cursors.secret, autocommit=autocommit
    )


PreparedRead = json_sql.PreparedRead


def by_ids(ctx: RequestContext, type_name: str, fields: Fields) -> Any:
    """The statement that reads `type_name` objects with `fields` for any keys (see
    `read_by_ids`), built once per selection; raises when SQL cannot express it."""
    return json_sql.build_by_ids(
        ObjectPlan(ENTITIES[type_name], fields),  # type: ignore[arg-type]
        dialect=ctx.reader.dialect,
        workspace=ctx.workspace,
        secret=ctx.cursors.secret,
    )


async def read_by_ids(
    reader: Reader,
    statement: Any,
    keys: Sequence[int],
    plan_times: Mapping[int, datetime] | None = None,
) -> dict[int, str]:
    """Each found object's JSON text, by key (a statement of `by_ids`, with `reader`;
    `plan_times`: instances' as their events said, see `json_sql.read_by_ids`)."""
    if not keys:
        return {}
    return await json_sql.read_by_ids(reader, statement, keys, plan_times)


def prepare_read(ctx: RequestContext, plan: RootPlan, *, alone: bool) -> json_sql.PreparedRead:
    """The plan's statement in the form `read_prepared` runs, for the fast path to keep;
    `alone`: it will be its request's only statement."""
    return json_sql.prepare_read(
        ctx.reader, plan, workspace=ctx.workspace, secret=ctx.cursors.secret, alone=alone
    )


async def read_prepared(
    ctx: RequestContext, prepared: json_sql.PreparedRead, *, alone: bool
) -> str | None:
    """`read` of a prepared statement; `alone`: the request's only statement."""
    return await json_sql.read_prepared(ctx.reader, prepared, alone=alone)
