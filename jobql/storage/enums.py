"""The model's enumerations. Members are stored by name; values are the sources' own codes."""

from __future__ import annotations

from enum import Enum


class InstanceStatus(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    SUCCESS = "success"
    FAIL = "fail"
    RUNNING_EXCEPTION = "running-exception"
    SKIP_BY_DEPEND = "skip-by-depend"
    FREEZE = "freeze"
    PAUSE = "pause"
    MANUAL_STOP = "manual-stop"
    REJECTED = "rejected"


TERMINAL_INSTANCE_STATUSES = frozenset(
    {
        InstanceStatus.SUCCESS,
        InstanceStatus.FAIL,
        InstanceStatus.SKIP_BY_DEPEND,
        InstanceStatus.MANUAL_STOP,
        InstanceStatus.REJECTED,
    }
)


class NodeStatus(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    SUCCESS = "success"
    FAIL = "fail"
    SKIP = "skip"
    PAUSE = "pause"
    MANUAL_STOP = "manual-stop"


class InstanceType(Enum):
    GENERAL = 0
    MANUAL = 2
    PATCH_DATA = 5
    SUBJOB = 6
    ONE_OFF = 7


class TriggerType(Enum):
    SCHEDULE = 1
    DATA_REFRESH = 2
    API = 3
    MANUAL_RERUN = 4
    SYSTEM_RETRY = 5


class TimeType(Enum):
    CRON = 1
    FIX_RATE = 3
    SECOND_DELAY = 4
    API = 100


class JobType(Enum):
    BATCH = "BATCH"
    REALTIME = "REALTIME"


class StreamState(Enum):
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


class StreamApiType(Enum):
    SQL = "SQL"
    DATASTREAM = "DATASTREAM"


class InstanceOrderField(Enum):
    PLAN_TIME = "PLAN_TIME"
    START_TIME = "START_TIME"
    END_TIME = "END_TIME"
    INSTANCE_ID = "INSTANCE_ID"


class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


class InstanceEventKind(Enum):
    """What a change did to an instance (the event log's `kind`)."""

    CREATED = "CREATED"
    STATUS_CHANGED = "STATUS_CHANGED"
    UPDATED = "UPDATED"


class StatsGroup(Enum):
    """What `instanceStats` groups instances by."""

    STATUS = "STATUS"
    JOB = "JOB"
    INSTANCE_TYPE = "INSTANCE_TYPE"


class TimeBucket(Enum):
    """The width of a timeline bucket (UTC; weeks start on Monday)."""

    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"


class NodeStatsOrder(Enum):
    """The order of `Instance.nodeStats`."""

    SLOWEST = "SLOWEST"
    MOST_FAILING = "MOST_FAILING"
    NAME = "NAME"
