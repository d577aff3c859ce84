"""Job: a scheduled or streaming job definition, with its runs."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers import jobs as job_use_cases
from jobql.resolvers import stats as stats_use_cases
from jobql.resolvers.objects import global_id
from jobql.schema import pagination
from jobql.schema.catalogue import known_resolver
from jobql.schema.context import Info
from jobql.schema.enums import JobType, TimeBucket
from jobql.schema.execution import asks_for
from jobql.schema.instances import (
    InstanceConnection,
    InstanceFilter,
    InstanceOrder,
    instance_arguments,
)
from jobql.schema.pagination import AFTER, BEFORE, FIRST, LAST
from jobql.schema.relay import Node
from jobql.schema.scalars import Long
from jobql.schema.stats import InstanceStatsGroup, StatsWindow, window_spec


@strawberry.input(description="Conditions on jobs; all given conditions must hold.")
class JobFilter:
    name_starts_with: str | None = strawberry.field(
        default=None, description="Only jobs whose name starts with this text (case-sensitive)."
    )
    types: list[JobType] | None = strawberry.field(
        default=None, description="Only jobs of one of these types. `[]` matches nothing."
    )
    parent_name: str | None = strawberry.field(
        default=None, description="Only sub-jobs of the real-time job with this name."
    )

    def to_spec(self) -> job_use_cases.JobFilter:
        return job_use_cases.build_filter(
            name_starts_with=self.name_starts_with, types=self.types, parent_name=self.parent_name
        )


@strawberry.type(
    description=(
        "A job of a workspace. A real-time job's event-triggered node runs a sub-job named "
        "`<realtime job>_<node>`: a Job whose `parent` is the real-time job."
    )
)
class Job(Node):
    key: strawberry.Private[int]
    parent_key: strawberry.Private[int | None]
    job_id: Long | None = strawberry.field(
        description="The source's job id (DLF v2 `job_id`, SchedulerX `JobId`), when it has one."
    )
    name: str = strawberry.field(description="Job name, unique within the workspace.")
    workspace: str = strawberry.field(
        description="The workspace (DLF workspace, SchedulerX namespace, Flink project)."
    )
    type: JobType = strawberry.field(description="BATCH or REALTIME.")
    parent_node_name: str | None = strawberry.field(
        description="For a sub-job: the node of the parent real-time job that triggers it."
    )
    namespace: str | None = strawberry.field(
        description=(
            "The OpenLineage job namespace of a job reported to `POST /api/v1/lineage` (its "
            "runs' newest `job.namespace`); null for jobs of other sources."
        )
    )

    @strawberry.field(description="Global id of the job.")
    @known_resolver
    def id(self) -> strawberry.ID:
        return strawberry.ID(global_id("Job", self.key))

    @strawberry.field(description="For a sub-job: the real-time job it belongs to.")
    @known_resolver
    async def parent(self, info: Info) -> Job | None:
        if self.parent_key is None:
            return None
        row = await job_use_cases.load_job(info.context, self.parent_key)
        return Job.from_row(row, self.workspace)

    @strawberry.field(description="Runs of this job, newest planned first unless `orderBy` says.")
    @known_resolver
    async def instances(
        self,
        info: Info,
        filter: Annotated[
            InstanceFilter | None,
            strawberry.argument(
                description="Conditions on the runs (`jobName` must be this job's)."
            ),
        ] = None,
        order_by: Annotated[
            InstanceOrder | None,
            strawberry.argument(description="Sort order; default PLAN_TIME DESC."),
        ] = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
        last: Annotated[int | None, strawberry.argument(description=LAST)] = None,
        before: Annotated[str | None, strawberry.argument(description=BEFORE)] = None,
    ) -> InstanceConnection:
        spec, order = instance_arguments(filter, order_by)
        result = await instance_use_cases.list_job_instances(
            info.context, self.key, spec, order, pagination.page_args(first, after, last, before)
        )
        return InstanceConnection.of(
            result, lambda: stats_use_cases.job_status_counts(info.context, self.key, spec)
        )

    @strawberry.field(
        description=(
            "Statistics of this job's runs planned in `window` (all its runs without one): "
            "count, success rate, duration and lateness, and with `bucket` a timeline. The same "
            "numbers as `instanceStats(filter: {jobName: ...})`; one statement for all the jobs "
            "of a request that ask with the same arguments."
        )
    )
    async def stats(
        self,
        info: Info,
        window: Annotated[
            StatsWindow | None,
            strawberry.argument(
                description=(
                    "The runs' plan time range (both bounds exclusive). A timeline needs both "
                    "bounds."
                )
            ),
        ] = None,
        bucket: Annotated[
            TimeBucket | None,
            strawberry.argument(
                description=(
                    "Add a timeline with buckets of this width, by plan time in UTC, covering "
                    "`window` (both bounds required; at most "
                    f"{stats_use_cases.MAX_BUCKETS} buckets, else BAD_USER_INPUT)."
                )
            ),
        ] = None,
    ) -> InstanceStatsGroup:
        found = await stats_use_cases.job_stats(
            info.context,
            self.key,
            window_spec(window),
            bucket,
            lateness=asks_for(info, "InstanceStatsGroup", "latenessMs"),
        )
        return InstanceStatsGroup.from_stats(found, job_key=self.key, job_name=self.name)

    @classmethod
    def from_row(cls, row: Any, workspace: str) -> Job:
        return cls(
            key=row.id,
            parent_key=row.parent_id,
            job_id=row.vendor_job_id,
            name=row.name,
            workspace=workspace,
            type=JobType[row.type],
            parent_node_name=row.parent_node_name,
            namespace=row.namespace,
        )
