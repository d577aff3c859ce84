"""The root Query type."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers import jobs as job_use_cases
from jobql.resolvers import objects as object_use_cases
from jobql.resolvers import stats as stats_use_cases
from jobql.schema import pagination
from jobql.schema.catalogue import known_resolver
from jobql.schema.context import Info
from jobql.schema.enums import StatsGroup, TimeBucket
from jobql.schema.execution import asks_for, serve
from jobql.schema.instances import (
    Instance,
    InstanceConnection,
    InstanceFilter,
    InstanceOrder,
    instance_arguments,
)
from jobql.schema.jobs import Job, JobFilter
from jobql.schema.nodes import InstanceNode
from jobql.schema.pagination import AFTER, BEFORE, FIRST, LAST, Connection
from jobql.schema.relay import Node
from jobql.schema.scalars import Long
from jobql.schema.stats import InstanceStatsGroup

WORKSPACE_NOTE = (
    " Everything is confined to the workspace named by the `workspace` HTTP header "
    "(absent: `default`)."
)


def _to_node(found: tuple[str, Any] | None, workspace: str) -> Node | None:
    if found is None:
        return None
    type_name, row = found
    if type_name == "Job":
        return Job.from_row(row, workspace)
    if type_name == "Instance":
        return Instance.from_row(row)
    return InstanceNode.from_row(row)


@strawberry.type(description="Read job instance data." + WORKSPACE_NOTE)
class Query:
    @strawberry.field(
        description=(
            "The object with this global id, or null when it does not exist in this workspace. "
            "A text that is not a global id at all is a BAD_USER_INPUT error."
        )
    )
    @known_resolver
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        if (served := await serve(info, "node")) is not None:
            return served  # type: ignore[return-value]
        return _to_node(await object_use_cases.get_object(info.context, id), info.context.workspace)

    @strawberry.field(
        description=(
            "The objects with these global ids, in the same order; null for each id that names "
            "nothing in this workspace."
        )
    )
    @known_resolver
    async def nodes(
        self,
        info: Info,
        ids: Annotated[
            list[strawberry.ID], strawberry.argument(description="Global ids (at most 1000).")
        ],
    ) -> list[Node | None]:
        if (served := await serve(info, "nodes")) is not None:
            return served  # type: ignore[return-value]
        found = await object_use_cases.get_objects(info.context, list(ids))
        return [_to_node(item, info.context.workspace) for item in found]

    @strawberry.field(
        description="The job with this name; null with a NOT_FOUND error when there is none."
    )
    @known_resolver
    async def job(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="Exact job name.")],
    ) -> Job | None:
        if (served := await serve(info, "job")) is not None:
            return served  # type: ignore[return-value]
        return Job.from_row(await job_use_cases.get_job(info.context, name), info.context.workspace)

    @strawberry.field(description="Jobs ordered by name.")
    @known_resolver
    async def jobs(
        self,
        info: Info,
        filter: Annotated[JobFilter | None, strawberry.argument(description="Conditions.")] = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
        last: Annotated[int | None, strawberry.argument(description=LAST)] = None,
        before: Annotated[str | None, strawberry.argument(description=BEFORE)] = None,
    ) -> Connection[Job]:
        if (served := await serve(info, "jobs")) is not None:
            return served  # type: ignore[return-value]
        spec = filter.to_spec() if filter is not None else job_use_cases.build_filter()
        result = await job_use_cases.list_jobs(
            info.context, spec, pagination.page_args(first, after, last, before)
        )
        workspace = info.context.workspace
        return pagination.to_graphql(result, lambda row: Job.from_row(row, workspace))

    @strawberry.field(
        description=(
            "One instance by job name and the source's instance id; null with a NOT_FOUND error "
            "when there is none."
        )
    )
    @known_resolver
    async def instance(
        self,
        info: Info,
        job_name: Annotated[str, strawberry.argument(description="Exact job name.")],
        instance_id: Annotated[Long, strawberry.argument(description="The source's instance id.")],
    ) -> Instance | None:
        if (served := await serve(info, "instance")) is not None:
            return served  # type: ignore[return-value]
        row = await instance_use_cases.get_instance(info.context, job_name, instance_id)
        return Instance.from_row(row)

    @strawberry.field(
        description=(
            "Instances of all jobs, newest planned first unless `orderBy` says. Paging is by "
            "keyset cursor: every page costs the same, and paging forwards with `after` returns "
            "each instance once even while new ones arrive."
        )
    )
    @known_resolver
    async def instances(
        self,
        info: Info,
        filter: Annotated[
            InstanceFilter | None, strawberry.argument(description="Conditions.")
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
        if (served := await serve(info, "instances")) is not None:
            return served  # type: ignore[return-value]
        spec, order = instance_arguments(filter, order_by)
        result = await instance_use_cases.list_instances(
            info.context, spec, order, pagination.page_args(first, after, last, before)
        )
        return InstanceConnection.of(
            result, lambda: stats_use_cases.instance_status_counts(info.context, spec)
        )

    @strawberry.field(
        description=(
            "Statistics of the instances `filter` matches, in groups: count, success rate, "
            "duration (min, avg, p50, p90, p95, p99, max) and lateness (p50, p95), and with "
            "`bucket` a timeline per group. Without `groupBy` there is exactly one group (also "
            "when nothing matches); with it, one per combination of the keys that has instances, "
            "ordered by the keys in `groupBy`'s order (statuses and instance types in their "
            "enum's order, jobs by name). At most "
            f"{stats_use_cases.MAX_GROUPS} groups, else BAD_USER_INPUT. Percentiles are exact "
            "(PostgreSQL's `percentile_cont`). One statement, plus one for the timelines of all "
            "groups when selected. Cost: a group per status, per instance type, and per job "
            f"counted as {stats_use_cases.MAX_GROUPS} unless `filter.jobName` names one; for "
            "timelines of many jobs, select `stats(bucket:)` under `jobs(first:)` instead."
        )
    )
    async def instance_stats(
        self,
        info: Info,
        filter: Annotated[
            InstanceFilter | None,
            strawberry.argument(description="Conditions, as for `instances`."),
        ] = None,
        group_by: Annotated[
            list[StatsGroup] | None,
            strawberry.argument(description="The keys to group by; none or `[]`: one group."),
        ] = None,
        bucket: Annotated[
            TimeBucket | None,
            strawberry.argument(
                description=(
                    "Add a timeline to each group, with buckets of this width by plan time in "
                    "UTC, covering the range `filter.planTimeAfter` .. `filter.planTimeBefore` "
                    f"(both required; at most {stats_use_cases.MAX_BUCKETS} buckets, else "
                    "BAD_USER_INPUT)."
                )
            ),
        ] = None,
    ) -> list[InstanceStatsGroup]:
        spec, _ = instance_arguments(filter, None)
        found = await stats_use_cases.instance_stats(
            info.context,
            spec,
            group_by,
            bucket,
            lateness=asks_for(info, "InstanceStatsGroup", "latenessMs"),
        )
        return [InstanceStatsGroup.from_stats(group) for group in found]
