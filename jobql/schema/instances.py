"""Instance: one run of a job, with its facets and its nodes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers import jobs as job_use_cases
from jobql.resolvers import nodes as node_use_cases
from jobql.resolvers import stats as stats_use_cases
from jobql.resolvers.objects import global_id
from jobql.schema import pagination
from jobql.schema.catalogue import known_resolver
from jobql.schema.context import Info
from jobql.schema.enums import (
    InstanceOrderField,
    InstanceStatus,
    InstanceType,
    NodeStatsOrder,
    NodeStatus,
    OrderDirection,
    StreamApiType,
    StreamState,
    TimeType,
    TriggerType,
)
from jobql.schema.nodes import InstanceNodeConnection, duration_ms
from jobql.schema.pagination import AFTER, BEFORE, FIRST, LAST, CountedConnection
from jobql.schema.relay import Node
from jobql.schema.scalars import Long
from jobql.schema.stats import (
    COUNTS_BY_STATUS,
    NodeStats,
    StatsWindow,
    StatusCount,
    status_counts,
    window_spec,
)

if TYPE_CHECKING:
    from jobql.schema.jobs import Job


@strawberry.input(description="Conditions on instances; all given conditions must hold.")
class InstanceFilter:
    job_name: str | None = strawberry.field(
        default=None,
        description=(
            "Only instances of this job (exact name). A real-time job's sub-job is named "
            "`<realtime job>_<node>`."
        ),
    )
    statuses: list[InstanceStatus] | None = strawberry.field(
        default=None, description="Only instances in one of these statuses. `[]` matches nothing."
    )
    instance_types: list[InstanceType] | None = strawberry.field(
        default=None,
        description="Only instances of one of these scheduling types. `[]` matches nothing.",
    )
    plan_time_after: datetime | None = strawberry.field(
        default=None,
        description="Only instances planned strictly after this time (like DLF `minPlanTime`).",
    )
    plan_time_before: datetime | None = strawberry.field(
        default=None,
        description=(
            "Only instances planned strictly before this time (like DLF `maxPlanTime`). Must be "
            "later than `planTimeAfter`."
        ),
    )
    force_success: bool | None = strawberry.field(
        default=None, description="Only instances whose success was (true) or was not forced."
    )
    ignore_success: bool | None = strawberry.field(
        default=None, description="Only instances whose failure was (true) or was not ignored."
    )
    run_ids: list[str] | None = strawberry.field(
        default=None,
        description=(
            "Only the instances of these OpenLineage runs (`runId`, UUIDs in any case; at most "
            "1000). `[]` matches nothing. Not available on subscriptions."
        ),
    )

    def to_spec(self) -> instance_use_cases.InstanceFilter:
        return instance_use_cases.build_filter(
            job_name=self.job_name,
            statuses=self.statuses,
            instance_types=self.instance_types,
            plan_time_after=self.plan_time_after,
            plan_time_before=self.plan_time_before,
            force_success=self.force_success,
            ignore_success=self.ignore_success,
            run_ids=self.run_ids,
        )


@strawberry.input(description="Sort order of instances. Default: PLAN_TIME DESC (newest first).")
class InstanceOrder:
    field: InstanceOrderField = strawberry.field(
        default=InstanceOrderField.PLAN_TIME, description="Sort key."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.DESC, description="Sort direction."
    )


def instance_arguments(
    filter: InstanceFilter | None, order_by: InstanceOrder | None
) -> tuple[instance_use_cases.InstanceFilter, instance_use_cases.InstanceOrder]:
    spec = filter.to_spec() if filter is not None else instance_use_cases.build_filter()
    if order_by is None:
        return spec, instance_use_cases.build_order()
    return spec, instance_use_cases.build_order(order_by.field, order_by.direction)


@strawberry.type(description="How a SchedulerX run was dispatched. Null for other sources.")
class Dispatch:
    trigger_type: TriggerType | None = strawberry.field(description="What triggered the run.")
    time_type: TimeType | None = strawberry.field(description="The schedule kind.")
    worker_address: str | None = strawberry.field(
        description="`ip:port` of the worker that ran it (`WorkAddr`)."
    )
    executor: str | None = strawberry.field(description="Who ran it (`Executor`).")
    progress: str | None = strawberry.field(description="Progress detail (`Progress`).")
    result: str | None = strawberry.field(description="Result text (`Result`).")
    data_time: datetime | None = strawberry.field(description="Data time (`DataTime`).")
    schedule_time: datetime | None = strawberry.field(
        description="Scheduled time (`ScheduleTime`); also the instance's `planTime`."
    )


@strawberry.type(description="The running engine job of a Realtime Compute (Flink) instance.")
class StreamRuntime:
    actual_state: StreamState | None = strawberry.field(description="Actual state.")
    expect_state: StreamState | None = strawberry.field(description="Expected (target) state.")
    api_type: StreamApiType | None = strawberry.field(description="SQL or DATASTREAM.")
    engine_version: str | None = strawberry.field(description="Engine version, e.g. blink-3.4.4.")
    cluster_id: str | None = strawberry.field(description="Cluster id.")
    queue_name: str | None = strawberry.field(description="Queue name.")
    engine_job_handler: str | None = strawberry.field(
        description="YARN `ApplicationID|jobID` of the running job."
    )
    code: str | None = strawberry.field(description="SQL code or DataStream configuration.")
    properties: str | None = strawberry.field(description="Run parameters, as text.")
    plan_json: str | None = strawberry.field(description="Execution plan, as sent.")
    packages: list[str] | None = strawberry.field(
        description="Referenced packages (the source's comma-separated text split; empty: `[]`)."
    )
    input_delay: Long | None = strawberry.field(description="Business delay in milliseconds.")
    auto_scale_params: str | None = strawberry.field(
        description="AutoScale parameters: the JSON text exactly as the source sent it."
    )
    last_error_message: str | None = strawberry.field(description="Latest error message.")
    last_error_time: datetime | None = strawberry.field(description="Time of the latest error.")
    last_operator: str | None = strawberry.field(description="Who operated it last.")
    last_operate_time: datetime | None = strawberry.field(description="When it was last operated.")
    starter: str | None = strawberry.field(description="Who started it.")


def _dispatch(row: Any) -> Dispatch | None:
    values = (
        row.dispatch_trigger_type,
        row.dispatch_time_type,
        row.dispatch_worker_address,
        row.dispatch_executor,
        row.dispatch_progress,
        row.dispatch_result,
        row.dispatch_data_time,
        row.dispatch_schedule_time,
    )
    if all(value is None for value in values):
        return None
    return Dispatch(
        trigger_type=_member(TriggerType, row.dispatch_trigger_type),
        time_type=_member(TimeType, row.dispatch_time_type),
        worker_address=row.dispatch_worker_address,
        executor=row.dispatch_executor,
        progress=row.dispatch_progress,
        result=row.dispatch_result,
        data_time=row.dispatch_data_time,
        schedule_time=row.dispatch_schedule_time,
    )


RUNTIME_COLUMNS = (
    "actual_state",
    "expect_state",
    "api_type",
    "engine_version",
    "cluster_id",
    "queue_name",
    "engine_job_handler",
    "code",
    "properties",
    "plan_json",
    "packages",
    "input_delay",
    "auto_scale_params",
    "last_error_message",
    "last_error_time",
    "last_operator",
    "last_operate_time",
    "starter",
)


def _runtime(row: Any) -> StreamRuntime | None:
    values = {name: getattr(row, f"runtime_{name}") for name in RUNTIME_COLUMNS}
    if all(value is None for value in values.values()):
        return None
    packages = values["packages"]
    values["packages"] = (
        None if packages is None else [p.strip() for p in packages.split(",") if p.strip()]
    )
    values["actual_state"] = _member(StreamState, values["actual_state"])
    values["expect_state"] = _member(StreamState, values["expect_state"])
    values["api_type"] = _member(StreamApiType, values["api_type"])
    return StreamRuntime(**values)


def _member(enum: Any, name: str | None) -> Any:
    return None if name is None else enum[name]


@strawberry.type(description="One run of a job (a job instance).")
class Instance(Node):
    key: strawberry.Private[int]
    job_key: strawberry.Private[int]
    instance_id: Long = strawberry.field(
        description="The source's instance id; unique within its job, not across jobs."
    )
    job_name: str = strawberry.field(description="Name of the job this is a run of.")
    job_instance_name: str | None = strawberry.field(
        description="Instance name recorded by the scheduler's log (not the job definition's)."
    )
    status: InstanceStatus = strawberry.field(description="Status of the run.")
    instance_type: InstanceType = strawberry.field(description="How the run was scheduled.")
    plan_time: datetime = strawberry.field(description="Planned execution time.")
    start_time: datetime | None = strawberry.field(description="Actual start time.")
    end_time: datetime | None = strawberry.field(description="Actual end time; null while running.")
    submit_time: datetime | None = strawberry.field(description="When the job was submitted.")
    execute_time: float | None = strawberry.field(
        description=(
            "Execution duration exactly as the source reported it (documented as milliseconds, "
            "though the sources' examples read like minutes). Never converted; see `durationMs`."
        )
    )
    force_success: bool = strawberry.field(description="The run's success was forced.")
    ignore_success: bool = strawberry.field(description="The run's failure was ignored.")
    version: int | None = strawberry.field(description="Instance version (DLF v2).")
    dispatch: Dispatch | None = strawberry.field(
        description="SchedulerX dispatch details; null for other sources."
    )
    runtime: StreamRuntime | None = strawberry.field(
        description="Realtime Compute (Flink) engine details; null for other sources."
    )
    run_id: str | None = strawberry.field(
        description=(
            "The OpenLineage run id (a lower-case UUID) of a run reported to `POST "
            "/api/v1/lineage`; unique within the workspace. Null for other sources."
        )
    )
    error_message: str | None = strawberry.field(
        description=(
            "Why the run failed, as its reporter said (OpenLineage: the newest `errorMessage` "
            "facet's `message`); null when not reported. Realtime Compute's own is "
            "`runtime.lastErrorMessage`."
        )
    )
    lineage_facets_text: strawberry.Private[str | None]

    @strawberry.field(
        description=(
            "The OpenLineage run facets of this run's own events, by facet name, each as the "
            "newest event carrying it sent it (`parent`, `nominalTime`, `errorMessage` and "
            "jobql's own `jobql` facet included); null for runs of other sources. Facets of "
            "child runs (nodes) are not kept."
        )
    )
    def lineage_facets(self) -> JSON | None:
        facets: JSON | None = instance_use_cases.facets_of(self.lineage_facets_text)
        return facets

    @strawberry.field(description="Global id of the instance.")
    @known_resolver
    def id(self) -> strawberry.ID:
        return strawberry.ID(global_id("Instance", self.key))

    @strawberry.field(
        description="`endTime - startTime` in milliseconds; null while either is missing."
    )
    @known_resolver
    def duration_ms(self) -> Long | None:
        return duration_ms(self.start_time, self.end_time)

    @strawberry.field(description="The job this is a run of.")
    @known_resolver
    async def job(self, info: Info) -> Annotated[Job, strawberry.lazy("jobql.schema.jobs")]:
        from jobql.schema.jobs import Job

        row = await job_use_cases.load_job(info.context, self.job_key)
        return Job.from_row(row, info.context.workspace)

    @strawberry.field(
        description="The nodes (steps) of this run in the order the source listed them."
    )
    @known_resolver
    async def nodes(
        self,
        info: Info,
        statuses: Annotated[
            list[NodeStatus] | None,
            strawberry.argument(
                description="Only nodes in one of these statuses. `[]` matches nothing."
            ),
        ] = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
        last: Annotated[int | None, strawberry.argument(description=LAST)] = None,
        before: Annotated[str | None, strawberry.argument(description=BEFORE)] = None,
    ) -> InstanceNodeConnection:
        result = await node_use_cases.list_instance_nodes(
            info.context,
            (self.key, self.plan_time),
            statuses,
            pagination.page_args(first, after, last, before),
        )
        names = node_use_cases.status_names(statuses)
        return InstanceNodeConnection.of(
            result,
            lambda: stats_use_cases.node_status_counts(
                info.context, (self.key, self.plan_time), names
            ),
        )

    @strawberry.field(
        description=(
            "The drill-down: per node name of this run's job, across the job's runs planned in "
            "`window` (this run's own nodes need not be among them), how often it ran, failed "
            "and was retried and how long it took. Without `window`: the job's runs planned in "
            "the 30 days up to and including this run's plan time (`planTime - 30 days` "
            "exclusive .. `planTime` inclusive). One statement for all the instances of a "
            "request that ask with the same window."
        )
    )
    async def node_stats(
        self,
        info: Info,
        window: Annotated[
            StatsWindow | None,
            strawberry.argument(
                description="The runs' plan time range; default: the 30 days up to this run."
            ),
        ] = None,
        order_by: Annotated[
            NodeStatsOrder,
            strawberry.argument(description="Order of the list; default SLOWEST."),
        ] = NodeStatsOrder.SLOWEST,
        first: Annotated[
            int | None,
            strawberry.argument(
                description=(
                    f"At most this many node names, the first in `orderBy` order "
                    f"(1..{stats_use_cases.MAX_NODE_STATS}; default "
                    f"{stats_use_cases.DEFAULT_NODE_STATS})."
                )
            ),
        ] = None,
    ) -> list[NodeStats]:
        spec = None if window is None else window_spec(window)
        found = await stats_use_cases.node_stats(
            info.context, (self.key, self.plan_time), spec, order_by, first
        )
        return [NodeStats.from_stats(item) for item in found]

    @classmethod
    def from_row(cls, row: Any) -> Instance:
        return cls(
            key=row.id,
            job_key=row.job_id,
            instance_id=row.vendor_instance_id,
            job_name=row.job_name,
            job_instance_name=row.job_instance_name,
            status=InstanceStatus[row.status],
            instance_type=InstanceType[row.instance_type],
            plan_time=row.plan_time,
            start_time=row.start_time,
            end_time=row.end_time,
            submit_time=row.submit_time,
            execute_time=row.execute_time,
            force_success=bool(row.force_success),
            ignore_success=bool(row.ignore_success),
            version=row.version,
            dispatch=_dispatch(row),
            runtime=_runtime(row),
            run_id=row.run_id,
            error_message=row.error_message,
            lineage_facets_text=row.lineage_facets,
        )


@strawberry.type(
    description=(
        "A page of instances with Relay cursor pagination, and counts over all the instances "
        "its filter matches."
    )
)
class InstanceConnection(CountedConnection[Instance]):
    @staticmethod
    def item(row: Any) -> Instance:
        return Instance.from_row(row)

    @strawberry.field(description=COUNTS_BY_STATUS)
    async def counts_by_status(self) -> list[StatusCount]:
        return status_counts(await self.read_status_counts())
