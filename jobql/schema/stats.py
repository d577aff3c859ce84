"""Statistics: counts by status, instance statistics per group with timelines, node statistics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from jobql.resolvers import jobs as job_use_cases
from jobql.resolvers import stats as stats_use_cases
from jobql.schema.context import Info
from jobql.schema.enums import InstanceStatus, InstanceType, NodeStatus
from jobql.schema.scalars import Long

if TYPE_CHECKING:
    from jobql.schema.jobs import Job

MILLISECONDS = "In milliseconds; null when there is no value."


def _percentile(name: str) -> str:
    return (
        f"{name}, exact: interpolated linearly between the two nearest values, as PostgreSQL's "
        f"`percentile_cont`. {MILLISECONDS}"
    )


P50 = _percentile("Median (50th percentile)")
P90 = _percentile("90th percentile")
P95 = _percentile("95th percentile")
P99 = _percentile("99th percentile")

COUNTS_BY_STATUS = (
    "How many of all the items the connection's filter matches (ignoring paging) are in each "
    "status: every status of the enum, in its order, zero included. One statement, run only when "
    "selected."
)


@strawberry.type(description="How many instances are in one status.")
class StatusCount:
    status: InstanceStatus = strawberry.field(description="The status.")
    count: int = strawberry.field(description="How many instances are in it (0 when none).")


@strawberry.type(description="How many nodes (steps) are in one status.")
class NodeStatusCount:
    status: NodeStatus = strawberry.field(description="The node status.")
    count: int = strawberry.field(description="How many nodes are in it (0 when none).")


def status_counts(found: list[tuple[str, int]]) -> list[StatusCount]:
    return [StatusCount(status=InstanceStatus[name], count=count) for name, count in found]


def node_status_counts(found: list[tuple[str, int]]) -> list[NodeStatusCount]:
    return [NodeStatusCount(status=NodeStatus[name], count=count) for name, count in found]


@strawberry.input(
    description=(
        "A range of plan times for statistics; both bounds are exclusive, as in `InstanceFilter`."
    )
)
class StatsWindow:
    plan_time_after: datetime | None = strawberry.field(
        default=None, description="Only instances planned strictly after this time."
    )
    plan_time_before: datetime | None = strawberry.field(
        default=None,
        description=(
            "Only instances planned strictly before this time. Must be later than `planTimeAfter`."
        ),
    )

    def to_spec(self) -> stats_use_cases.InstanceFilter:
        return stats_use_cases.build_window(self.plan_time_after, self.plan_time_before)


def window_spec(window: StatsWindow | None) -> stats_use_cases.InstanceFilter:
    return window.to_spec() if window is not None else stats_use_cases.build_window(None, None)


@strawberry.type(
    description=(
        "Statistics of the instances' durations (`Instance.durationMs`: `endTime - startTime`), "
        "over the instances that have both times."
    )
)
class DurationStats:
    count: int = strawberry.field(description="How many instances have a duration.")
    min: Long | None = strawberry.field(description="Shortest duration. " + MILLISECONDS)
    avg: float | None = strawberry.field(description="Mean duration. " + MILLISECONDS)
    p50: float | None = strawberry.field(description=P50)
    p90: float | None = strawberry.field(description=P90)
    p95: float | None = strawberry.field(description=P95)
    p99: float | None = strawberry.field(description=P99)
    max: Long | None = strawberry.field(description="Longest duration. " + MILLISECONDS)


@strawberry.type(
    description=(
        "How late instances started: `startTime - planTime`, over the instances that have "
        "started (negative: started before the plan time)."
    )
)
class LatenessStats:
    count: int = strawberry.field(description="How many instances have a start time.")
    p50: float | None = strawberry.field(description=P50)
    p95: float | None = strawberry.field(description=P95)


@strawberry.type(
    description=(
        "Median and 95th percentile of durations (`endTime - startTime`), over the runs that have "
        "both times."
    )
)
class DurationPercentiles:
    count: int = strawberry.field(description="How many runs have a duration.")
    p50: float | None = strawberry.field(description=P50)
    p95: float | None = strawberry.field(description=P95)


def _lateness(found: stats_use_cases.Percentiles) -> LatenessStats:
    count, p50, p95 = _short(found)
    return LatenessStats(count=count, p50=p50, p95=p95)


def _short(found: stats_use_cases.Percentiles) -> tuple[int, float | None, float | None]:
    p50, p95 = found.values
    return found.count, p50, p95


@strawberry.type(
    description=(
        "One bucket of a timeline: the instances planned in [start, start + bucket width), UTC."
    )
)
class StatsBucket:
    start: datetime = strawberry.field(
        description=(
            "Start of the bucket (UTC): the hour, the midnight, or the Monday midnight of a week."
        )
    )
    count: int = strawberry.field(description="How many instances the bucket holds.")
    counts_by_status: list[StatusCount] = strawberry.field(
        description="The bucket's instances per status: every status, in order, zero included."
    )
    duration_ms: DurationPercentiles = strawberry.field(
        description="Durations of the bucket's instances, in milliseconds."
    )

    @classmethod
    def from_stats(cls, found: stats_use_cases.BucketStats) -> StatsBucket:
        count, p50, p95 = _short(found.duration)
        return cls(
            start=found.start,
            count=sum(found.counts.values()),
            counts_by_status=status_counts(list(found.counts.items())),
            duration_ms=DurationPercentiles(count=count, p50=p50, p95=p95),
        )


@strawberry.type(
    description=(
        "Statistics of one group of instances. The key fields (`status`, `jobName`/`job`, "
        "`instanceType`) are set for the keys the statistics are grouped by and null for the "
        "others; `Job.stats` sets `jobName` and `job`."
    )
)
class InstanceStatsGroup:
    job_key: strawberry.Private[int | None]
    read_timeline: strawberry.Private[
        Callable[[], Awaitable[list[stats_use_cases.BucketStats]]] | None
    ]
    status: InstanceStatus | None = strawberry.field(
        description="The status of the group's instances (grouped by STATUS), else null."
    )
    job_name: str | None = strawberry.field(
        description="The job of the group's instances (grouped by JOB), else null."
    )
    instance_type: InstanceType | None = strawberry.field(
        description="The scheduling type of the group's instances (grouped by INSTANCE_TYPE)."
    )
    count: int = strawberry.field(description="How many instances the group holds.")
    success_rate: float | None = strawberry.field(
        description=(
            "The share (0..1) of the group's instances in status SUCCESS, among all of them "
            "whatever their status (running and waiting ones included); null when the group "
            "is empty."
        )
    )
    duration_ms: DurationStats = strawberry.field(
        description="Durations (`endTime - startTime`) in milliseconds."
    )
    lateness: strawberry.Private[LatenessStats | None]

    @strawberry.field(description="Lateness (`startTime - planTime`) in milliseconds.")
    def lateness_ms(self) -> LatenessStats:
        if self.lateness is None:  # read only where the selection asks for it
            raise RuntimeError("latenessMs was not read for this selection")
        return self.lateness

    @strawberry.field(
        description="The job of the group's instances (grouped by JOB, or `Job.stats`), else null."
    )
    async def job(self, info: Info) -> Annotated[Job, strawberry.lazy("jobql.schema.jobs")] | None:
        from jobql.schema.jobs import Job

        if self.job_key is None:
            return None
        row = await job_use_cases.load_job(info.context, self.job_key)
        return Job.from_row(row, info.context.workspace)

    @strawberry.field(
        description=(
            "With `bucket`, the group's instances per bucket of plan time (UTC; weeks start on "
            "Monday), oldest first: every bucket of the plan time range, empty ones included "
            "(count 0). Null without `bucket`. The timelines of all groups are read by one "
            "statement, only when selected."
        )
    )
    async def timeline(self) -> list[StatsBucket] | None:
        if self.read_timeline is None:
            return None
        return [StatsBucket.from_stats(found) for found in await self.read_timeline()]

    @classmethod
    def from_stats(
        cls,
        found: stats_use_cases.Stats,
        *,
        job_key: int | None = None,
        job_name: str | None = None,
    ) -> InstanceStatsGroup:
        group = found.group
        status, group_job, instance_type = group.key
        duration = group.duration
        p50, p90, p95, p99 = duration.percentiles.values
        return cls(
            job_key=group_job if job_key is None else job_key,
            read_timeline=found.timeline,
            status=None if status is None else InstanceStatus[status],
            job_name=group.job_name if job_name is None else job_name,
            instance_type=None if instance_type is None else InstanceType[instance_type],
            count=group.count,
            success_rate=found.success_rate,
            duration_ms=DurationStats(
                count=duration.percentiles.count,
                min=None if duration.min is None else Long(duration.min),
                avg=duration.avg,
                p50=p50,
                p90=p90,
                p95=p95,
                p99=p99,
                max=None if duration.max is None else Long(duration.max),
            ),
            lateness=None if group.lateness is None else _lateness(group.lateness),
        )


@strawberry.type(
    description=(
        "Statistics of one node (step) name across a job's runs: how often it ran and failed, "
        "how long it took, how often it was retried."
    )
)
class NodeStats:
    name: str = strawberry.field(description="The node name (`InstanceNode.name`).")
    runs: int = strawberry.field(description="How many of the runs have a node of this name.")
    failures: int = strawberry.field(description="How many of those nodes are in status FAIL.")
    failure_rate: float = strawberry.field(description="`failures / runs` (0..1).")
    retries: int = strawberry.field(
        description=(
            "Retry attempts in all: the sum of the nodes' `retryTimes` (attempts after a failure, "
            "as the source reports them; a node without it counts 0)."
        )
    )
    retried_runs: int = strawberry.field(
        description="How many of the nodes were retried (`retryTimes` above 0)."
    )
    duration_ms: DurationPercentiles = strawberry.field(
        description="The nodes' durations (`InstanceNode.durationMs`), in milliseconds."
    )

    @classmethod
    def from_stats(cls, found: stats_use_cases.NodeStats) -> NodeStats:
        count, p50, p95 = _short(found.duration)
        return cls(
            name=found.name,
            runs=found.runs,
            failures=found.failures,
            failure_rate=found.failures / found.runs,
            retries=found.retries,
            retried_runs=found.retried_runs,
            duration_ms=DurationPercentiles(count=count, p50=p50, p95=p95),
        )
