"""Mutations for schedulers that push: upsertJobs and recordInstances."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from typing import Annotated, Any

import strawberry

from jobql.resolvers import ingest as ingest_use_cases
from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers import jobs as job_use_cases
from jobql.schema.context import Info
from jobql.schema.enums import (
    InstanceStatus,
    InstanceType,
    JobType,
    NodeStatus,
    StreamApiType,
    StreamState,
    TimeType,
    TriggerType,
)
from jobql.schema.instances import Instance
from jobql.schema.jobs import Job
from jobql.schema.scalars import Long

NOT_REPORTED = " Null or absent: not reported (a stored value stays)."

UpsertOutcome = strawberry.enum(
    ingest_use_cases.Outcome,
    name="UpsertOutcome",
    description=(
        "What a write did: CREATED a new object, UPDATED a stored one, left it UNCHANGED (a "
        "replay), or ignored it as STALE (older than what is stored: by `reportedAt`, or a "
        "non-terminal status for a run that has finished)."
    ),
)


@strawberry.input(description="A job to create or update, by name within the workspace.")
class JobInput:
    name: str = strawberry.field(description="Job name (the key within the workspace).")
    job_id: Long | None = strawberry.field(
        default=None, description="The source's job id." + NOT_REPORTED
    )
    type: JobType | None = strawberry.field(
        default=None, description="BATCH or REALTIME; new jobs default to BATCH." + NOT_REPORTED
    )
    parent_name: str | None = strawberry.field(
        default=None,
        description=(
            "Make this a sub-job of the named job (which becomes REALTIME). Without it, a job "
            "named `<P>_<node>` is linked to the longest real-time job P that exists."
        ),
    )
    parent_node_name: str | None = strawberry.field(
        default=None,
        description="The parent's node that triggers this sub-job; default: the name's suffix.",
    )


@strawberry.input(description="How a SchedulerX run was dispatched." + NOT_REPORTED)
class DispatchInput:
    trigger_type: TriggerType | None = strawberry.field(default=None, description="Trigger.")
    time_type: TimeType | None = strawberry.field(default=None, description="Schedule kind.")
    worker_address: str | None = strawberry.field(default=None, description="Worker ip:port.")
    executor: str | None = strawberry.field(default=None, description="Who ran it.")
    progress: str | None = strawberry.field(default=None, description="Progress detail.")
    result: str | None = strawberry.field(default=None, description="Result text.")
    data_time: datetime | None = strawberry.field(default=None, description="Data time.")
    schedule_time: datetime | None = strawberry.field(default=None, description="Scheduled.")


@strawberry.input(description="The engine job of a Realtime Compute run." + NOT_REPORTED)
class StreamRuntimeInput:
    actual_state: StreamState | None = strawberry.field(default=None, description="State.")
    expect_state: StreamState | None = strawberry.field(default=None, description="Target.")
    api_type: StreamApiType | None = strawberry.field(default=None, description="SQL/DATASTREAM.")
    engine_version: str | None = strawberry.field(default=None, description="Engine version.")
    cluster_id: str | None = strawberry.field(default=None, description="Cluster id.")
    queue_name: str | None = strawberry.field(default=None, description="Queue name.")
    engine_job_handler: str | None = strawberry.field(default=None, description="YARN ids.")
    code: str | None = strawberry.field(default=None, description="SQL or configuration.")
    properties: str | None = strawberry.field(default=None, description="Run parameters.")
    plan_json: str | None = strawberry.field(default=None, description="Execution plan.")
    packages: list[str] | None = strawberry.field(default=None, description="Packages.")
    input_delay: Long | None = strawberry.field(default=None, description="Delay in ms.")
    auto_scale_params: str | None = strawberry.field(default=None, description="JSON text.")
    last_error_message: str | None = strawberry.field(default=None, description="Last error.")
    last_error_time: datetime | None = strawberry.field(default=None, description="Its time.")
    last_operator: str | None = strawberry.field(default=None, description="Last operator.")
    last_operate_time: datetime | None = strawberry.field(default=None, description="When.")
    starter: str | None = strawberry.field(default=None, description="Who started it.")


@strawberry.input(description="A node (step) of a run, by name within the run." + NOT_REPORTED)
class InstanceNodeInput:
    name: str = strawberry.field(description="Node name (the key within the run).")
    type: str | None = strawberry.field(default=None, description="Node type; new nodes need it.")
    status: NodeStatus | None = strawberry.field(
        default=None, description="Node status; new nodes need it."
    )
    plan_time: datetime | None = strawberry.field(default=None, description="Planned time.")
    start_time: datetime | None = strawberry.field(default=None, description="Start time.")
    end_time: datetime | None = strawberry.field(default=None, description="End time.")
    submit_time: datetime | None = strawberry.field(default=None, description="Submit time.")
    retry_times: int | None = strawberry.field(default=None, description="Retries.")
    input_row_count: Long | None = strawberry.field(default=None, description="Input rows.")
    speed: float | None = strawberry.field(default=None, description="Rows per second.")
    log_path: str | None = strawberry.field(default=None, description="Log location.")


@strawberry.input(
    description=(
        "A report about one run, keyed by job name + instance id within the workspace. Fields "
        "left null are not reported and keep their stored values."
    )
)
class InstanceInput:
    job_name: str = strawberry.field(description="The job's name; see `createJobs`.")
    instance_id: Long = strawberry.field(description="The source's instance id.")
    reported_at: datetime | None = strawberry.field(
        default=None,
        description=(
            "When the reporter observed this state. A report older than the stored one changes "
            "nothing (STALE); equal times: the further-along status wins. Without it, a finished "
            "run is never reopened by a non-terminal status."
        ),
    )
    job_instance_name: str | None = strawberry.field(default=None, description="Log name.")
    status: InstanceStatus | None = strawberry.field(
        default=None, description="Status; a new instance needs it."
    )
    instance_type: InstanceType | None = strawberry.field(
        default=None, description="Scheduling type; new instances default to GENERAL."
    )
    plan_time: datetime | None = strawberry.field(
        default=None, description="Planned time; a new instance needs it."
    )
    start_time: datetime | None = strawberry.field(default=None, description="Start time.")
    end_time: datetime | None = strawberry.field(
        default=None, description="End time; not before startTime."
    )
    submit_time: datetime | None = strawberry.field(default=None, description="Submit time.")
    execute_time: float | None = strawberry.field(
        default=None, description="Execution duration as the source reports it."
    )
    force_success: bool | None = strawberry.field(default=None, description="Forced success.")
    ignore_success: bool | None = strawberry.field(default=None, description="Ignored failure.")
    version: int | None = strawberry.field(default=None, description="Instance version.")
    dispatch: DispatchInput | None = strawberry.field(default=None, description="SchedulerX.")
    runtime: StreamRuntimeInput | None = strawberry.field(
        default=None, description="Realtime Compute."
    )
    nodes: list[InstanceNodeInput] | None = strawberry.field(
        default=None,
        description=(
            "The run's nodes in order. Given, it replaces the stored list (nodes not listed are "
            "removed); null keeps the stored nodes."
        ),
    )


@strawberry.type(description="Why one item of a batch was not written.")
class UserError:
    code: str = strawberry.field(
        description=(
            "INVALID_VALUE, MISSING_FIELD, DUPLICATE_KEY (the key repeats an earlier item of the "
            "batch), UNKNOWN_JOB (with createJobs: false), UNKNOWN_PARENT."
        )
    )
    field: list[str] | None = strawberry.field(
        description='Path to the input field, e.g. ["input", "3", "endTime"].'
    )
    message: str = strawberry.field(description="What is wrong, for people.")


def _user_errors(index: int, errors: list[ingest_use_cases.ItemError]) -> list[UserError]:
    return [
        UserError(
            code=error.code,
            field=["input", str(index), *_path(error.field)] if error.field else None,
            message=error.message,
        )
        for error in errors
    ]


def _path(field: str) -> list[str]:
    """`nodes[2].end_time` -> ["nodes", "2", "endTime"]."""
    parts: list[str] = []
    for segment in field.split("."):
        name, _, index = segment.partition("[")
        parts.append(re.sub(r"_(\w)", lambda m: m.group(1).upper(), name))
        if index:
            parts.append(index.rstrip("]"))
    return parts


@strawberry.type(description="What happened to one item of upsertJobs.")
class JobResult:
    index: int = strawberry.field(description="Position of the item in `input`.")
    outcome: UpsertOutcome | None = strawberry.field(  # type: ignore[valid-type]
        description="Null when the item was not written (see userErrors)."
    )
    user_errors: list[UserError] = strawberry.field(description="Why it was not written.")
    key: strawberry.Private[int | None]

    @strawberry.field(description="The job as stored now; null when not written.")
    async def job(self, info: Info) -> Job | None:
        if self.key is None:
            return None
        row = await job_use_cases.load_job(info.context, self.key)
        return Job.from_row(row, info.context.workspace)


@strawberry.type(description="What happened to one item of recordInstances.")
class InstanceResult:
    index: int = strawberry.field(description="Position of the item in `input`.")
    outcome: UpsertOutcome | None = strawberry.field(  # type: ignore[valid-type]
        description="Null when the item was not written (see userErrors)."
    )
    user_errors: list[UserError] = strawberry.field(description="Why it was not written.")
    key: strawberry.Private[int | None]

    @strawberry.field(description="The instance as stored now (also when STALE or UNCHANGED).")
    async def instance(self, info: Info) -> Instance | None:
        if self.key is None:
            return None
        row = await instance_use_cases.load_instance(info.context, self.key)
        return Instance.from_row(row)


@strawberry.type(description="Result of upsertJobs, one entry per input item, in order.")
class UpsertJobsPayload:
    results: list[JobResult] = strawberry.field(description="Per item, in input order.")


@strawberry.type(description="Result of recordInstances, one entry per input item, in order.")
class RecordInstancesPayload:
    results: list[InstanceResult] = strawberry.field(description="Per item, in input order.")


def _fields(item: Any, *, skip: tuple[str, ...]) -> dict[str, Any]:
    return {f.name: getattr(item, f.name) for f in dataclasses.fields(item) if f.name not in skip}


@strawberry.type(
    description=(
        "Write job data into the workspace of the `workspace` header. Each call is one "
        f"transaction of at most {ingest_use_cases.MAX_BATCH} items: the valid items land "
        "together, invalid ones are reported in `userErrors` and change nothing. Replaying a "
        "batch changes nothing."
    )
)
class Mutation:
    @strawberry.mutation(description="Create or update jobs by name.")
    async def upsert_jobs(
        self,
        info: Info,
        input: Annotated[
            list[JobInput], strawberry.argument(description="The jobs, at most 1000.")
        ],
    ) -> UpsertJobsPayload | None:
        workspace = info.context.workspace
        records = [
            ingest_use_cases.job_record(
                workspace,
                name=item.name,
                fields={
                    "vendor_job_id": item.job_id,
                    "type": item.type,
                    "parent_node_name": item.parent_node_name,
                },
                parent_name=item.parent_name,
            )
            for item in input
        ]
        results = await ingest_use_cases.upsert_jobs(info.context, records)
        return UpsertJobsPayload(
            results=[
                JobResult(
                    index=index,
                    outcome=result.outcome,
                    user_errors=_user_errors(index, result.errors),
                    key=None if result.errors else result.key,
                )
                for index, result in enumerate(results)
            ]
        )

    @strawberry.mutation(description="Record reports about runs, with their nodes.")
    async def record_instances(
        self,
        info: Info,
        input: Annotated[
            list[InstanceInput], strawberry.argument(description="The reports, at most 1000.")
        ],
        create_jobs: Annotated[
            bool,
            strawberry.argument(
                description="Create jobs that do not exist yet (else: UNKNOWN_JOB)."
            ),
        ] = True,
    ) -> RecordInstancesPayload | None:
        workspace = info.context.workspace
        records = [
            ingest_use_cases.instance_record(
                workspace,
                job_name=item.job_name,
                instance_id=item.instance_id,
                fields=_fields(
                    item,
                    skip=("job_name", "instance_id", "reported_at", "dispatch", "runtime", "nodes"),
                ),
                dispatch=_fields(item.dispatch, skip=()) if item.dispatch else None,
                runtime=_fields(item.runtime, skip=()) if item.runtime else None,
                nodes=None
                if item.nodes is None
                else [(node.name, _fields(node, skip=("name",))) for node in item.nodes],
                reported_at=item.reported_at,
                source=f"input[{index}]",
            )
            for index, item in enumerate(input)
        ]
        results = await ingest_use_cases.record_instances(
            info.context, records, create_jobs=create_jobs
        )
        return RecordInstancesPayload(
            results=[
                InstanceResult(
                    index=index,
                    outcome=result.outcome,
                    user_errors=_user_errors(index, result.errors),
                    key=None if result.errors else result.key,
                )
                for index, result in enumerate(results)
            ]
        )
