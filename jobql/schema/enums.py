"""GraphQL enums over the model's enumerations (GraphQL value = member name = stored text)."""

from __future__ import annotations

import strawberry

from jobql.storage.enums import (
    InstanceOrderField,
    InstanceStatus,
    InstanceType,
    JobType,
    NodeStatsOrder,
    NodeStatus,
    OrderDirection,
    StatsGroup,
    StreamApiType,
    StreamState,
    TimeBucket,
    TimeType,
    TriggerType,
)

__all__ = [
    "InstanceOrderField",
    "InstanceStatus",
    "InstanceType",
    "JobType",
    "NodeStatsOrder",
    "NodeStatus",
    "OrderDirection",
    "StatsGroup",
    "StreamApiType",
    "StreamState",
    "TimeBucket",
    "TimeType",
    "TriggerType",
]

# strawberry.enum registers the GraphQL definition on the model's own enum classes.

strawberry.enum(
    InstanceStatus,
    description=(
        "Status of a job instance. DLF reports the lower-case strings (`waiting` .. "
        "`manual-stop`); SchedulerX 1/3/4/5/9 are WAITING/RUNNING/SUCCESS/FAIL/REJECTED; Flink "
        "WAITING/RUNNING/PAUSED/TERMINATED/SUCCESS/FAILED are "
        "WAITING/RUNNING/PAUSE/MANUAL_STOP/SUCCESS/FAIL."
    ),
)
strawberry.enum(
    NodeStatus,
    description="Status of one node (step) of an instance, as DLF reports it (`skip` = SKIP).",
)
strawberry.enum(
    InstanceType,
    description=(
        "How an instance was scheduled (DLF v2 `instance_type`): GENERAL 0, MANUAL 2, "
        "PATCH_DATA 5, SUBJOB 6, ONE_OFF 7. Sources that do not say get GENERAL."
    ),
)
strawberry.enum(
    TriggerType,
    description=(
        "What triggered a SchedulerX run: SCHEDULE 1, DATA_REFRESH 2, API 3, MANUAL_RERUN 4, "
        "SYSTEM_RETRY 5."
    ),
)
strawberry.enum(
    TimeType,
    description="SchedulerX schedule kind: CRON 1, FIX_RATE 3, SECOND_DELAY 4, API 100.",
)
strawberry.enum(
    JobType,
    description=(
        "BATCH runs on a schedule or trigger; REALTIME runs continuously (Flink FLINK_STREAM, and "
        "every job that has sub-jobs). Sources that do not say get BATCH."
    ),
)
strawberry.enum(
    StreamState,
    description="State of a Realtime Compute (Flink) instance, exactly as the source reports it.",
)
strawberry.enum(
    StreamApiType, description="How a Realtime Compute job is written: SQL or DATASTREAM."
)
strawberry.enum(
    InstanceOrderField,
    description=(
        "What instances are sorted by. INSTANCE_ID is the vendor instance id. Ties are broken by "
        "the stored row, in the same direction; instances without the time come last."
    ),
)
strawberry.enum(OrderDirection, description="Sort direction.")
strawberry.enum(
    StatsGroup,
    description=(
        "What `instanceStats` groups instances by: STATUS, JOB, INSTANCE_TYPE. Several keys make "
        "one group per combination that has instances."
    ),
)
strawberry.enum(
    TimeBucket,
    description=(
        "The width of a timeline's buckets, by plan time in UTC: HOUR, DAY (from midnight), WEEK "
        "(from Monday midnight)."
    ),
)
strawberry.enum(
    NodeStatsOrder,
    description=(
        "Order of `Instance.nodeStats`: SLOWEST (p95 duration, longest first; nodes without "
        "durations last), MOST_FAILING (failures, then failure rate, most first), NAME. Ties by "
        "name."
    ),
)
