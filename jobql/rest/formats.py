"""How the source APIs write the model's values: their codes for its enumerations, epoch
milliseconds, local times and numbers.

Rows carry enumerations by member name (`"SKIP_BY_DEPEND"`); the tables here give each source's
code for every member, including members that came from another source (a SchedulerX `REJECTED`
read through a DLF endpoint), so that a reply never carries a code its page does not list.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, tzinfo

from jobql.storage.enums import (
    InstanceStatus,
    InstanceType,
    JobType,
    NodeStatus,
    StreamState,
    TimeType,
    TriggerType,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

# DLF status strings (seed 000/001/003). The model's values are DLF's own strings; SchedulerX's
# REJECTED has none and reads as `fail` (it did not run to success).
DLF_STATUS = {s.name: s.value for s in InstanceStatus} | {
    InstanceStatus.REJECTED.name: InstanceStatus.FAIL.value
}
# A DLF `status` parameter -> the members it selects: exactly the instances a reply shows with
# that string.
DLF_STATUS_FILTER: dict[str, list[InstanceStatus]] = {}
for _member, _code in DLF_STATUS.items():
    DLF_STATUS_FILTER.setdefault(_code, []).append(InstanceStatus[_member])

NODE_STATUS = {s.name: s.value for s in NodeStatus}

# DLF v2 `instance_type` (0 general, 2 manual, 5 PatchData, 6 subjob, 7 one-off).
INSTANCE_TYPE = {t.name: t.value for t in InstanceType}
INSTANCE_TYPE_FILTER = {t.value: t for t in InstanceType}

# SchedulerX `Status` (seed 002 lists 1 waiting, 3 running, 4 success, 5 fail, 9 rejected). The
# model's other statuses come from DLF; each gets the nearest listed code.
SCHEDULERX_STATUS = {
    InstanceStatus.WAITING.name: 1,
    InstanceStatus.RUNNING.name: 3,
    InstanceStatus.SUCCESS.name: 4,
    InstanceStatus.FAIL.name: 5,
    InstanceStatus.REJECTED.name: 9,
    InstanceStatus.RUNNING_EXCEPTION.name: 3,  # still running, with an exception
    InstanceStatus.PAUSE.name: 1,  # not running; may go on
    InstanceStatus.FREEZE.name: 1,
    InstanceStatus.MANUAL_STOP.name: 5,  # ended without success
    InstanceStatus.SKIP_BY_DEPEND.name: 5,
}

TRIGGER_TYPE = {t.name: t.value for t in TriggerType}
TIME_TYPE = {t.name: t.value for t in TimeType}

# Realtime Compute `ActualState` from the model's status. Flink's six states map one to one onto
# statuses (the importer's table, reversed), so the status gives back the state the source
# reported, and a status reported later by another source is not contradicted by a stale state.
FLINK_STATE = {
    InstanceStatus.WAITING.name: StreamState.WAITING.value,
    InstanceStatus.RUNNING.name: StreamState.RUNNING.value,
    InstanceStatus.PAUSE.name: StreamState.PAUSED.value,
    InstanceStatus.MANUAL_STOP.name: StreamState.TERMINATED.value,
    InstanceStatus.SUCCESS.name: StreamState.SUCCESS.value,
    InstanceStatus.FAIL.name: StreamState.FAILED.value,
    InstanceStatus.RUNNING_EXCEPTION.name: StreamState.RUNNING.value,
    InstanceStatus.FREEZE.name: StreamState.PAUSED.value,
    InstanceStatus.SKIP_BY_DEPEND.name: StreamState.TERMINATED.value,
    InstanceStatus.REJECTED.name: StreamState.FAILED.value,
}
FLINK_JOB_TYPE = {JobType.REALTIME.name: "FLINK_STREAM", JobType.BATCH.name: "FLINK_BATCH"}

# The epoch-millisecond times a request may carry: 1970 up to the end of year 9999.
EPOCH_MS_MAX = 253402300799999


def epoch_ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    return (value - _EPOCH) // _MILLISECOND


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def local_text(value: datetime | None, zone: tzinfo) -> str | None:
    """SchedulerX's zone-less `YYYY-MM-DD HH:MM:SS` (seconds, as the page writes them)."""
    if value is None:
        return None
    t = value.astimezone(zone)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def number(value: float | None) -> float | int | None:
    """A stored float as the source writes it: a whole value as an integer (`executeTime` 1, not
    1.0: the pages type it Long), any other value unchanged (0.3 stays 0.3, never converted)."""
    if value is None:
        return None
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value
