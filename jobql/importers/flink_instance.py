"""Alibaba Realtime Compute (Flink/Blink) `GetInstance` (seed 004), JSON or XML.

The instance is `Instance`; its id is `Id` (the page's request asks for 123 and answers 412536: the
answer wins). The workspace is `ProjectName`, else the caller's, else `default`. The instance
status is `ActualState` mapped onto the model (PAUSED -> PAUSE, TERMINATED -> MANUAL_STOP,
FAILED -> FAIL); the raw states are kept in the runtime facet. `StartTime` is both the plan time
(the model's required sort key: Flink has no schedule) and the start time. `JobType` is a job fact:
FLINK_STREAM -> REALTIME, FLINK_BATCH -> BATCH. Text fields are kept verbatim: an empty `PlanJson`
stays "", `Packages` and `AutoScaleParams` stay the text as sent. Times are epoch milliseconds.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import Any

from jobql.importers.body import (
    DEFAULT_WORKSPACE,
    Collector,
    Document,
    ParsedBody,
    body_object,
    load,
)
from jobql.importers.errors import ImportFormatError
from jobql.importers.fields import (
    Field,
    Rec,
    code,
    epoch_ms,
    int64,
    name,
    put,
    record_object,
    required,
    text,
)
from jobql.storage.enums import InstanceStatus, JobType, StreamApiType, StreamState
from jobql.storage.records import InstanceRecord

FORMAT = "flink-instance"

STATUS = code(
    {
        StreamState.WAITING.value: InstanceStatus.WAITING.name,
        StreamState.RUNNING.value: InstanceStatus.RUNNING.name,
        StreamState.PAUSED.value: InstanceStatus.PAUSE.name,
        StreamState.TERMINATED.value: InstanceStatus.MANUAL_STOP.name,
        StreamState.SUCCESS.value: InstanceStatus.SUCCESS.name,
        StreamState.FAILED.value: InstanceStatus.FAIL.name,
    }
)
STREAM_STATE = code({s.value: s.name for s in StreamState})
API_TYPE = code({t.value: t.name for t in StreamApiType})
JOB_TYPE = code({"FLINK_STREAM": JobType.REALTIME.name, "FLINK_BATCH": JobType.BATCH.name})

_OPTIONAL: tuple[Field, ...] = (
    ("EndTime", "end_time", epoch_ms),
    ("ActualState", "runtime_actual_state", STREAM_STATE),
    ("ExpectState", "runtime_expect_state", STREAM_STATE),
    ("ApiType", "runtime_api_type", API_TYPE),
    ("EngineVersion", "runtime_engine_version", text),
    ("ClusterId", "runtime_cluster_id", text),
    ("QueueName", "runtime_queue_name", text),
    ("EngineJobHandler", "runtime_engine_job_handler", text),
    ("Code", "runtime_code", text),
    ("Properties", "runtime_properties", text),
    ("PlanJson", "runtime_plan_json", text),
    ("Packages", "runtime_packages", text),
    ("InputDelay", "runtime_input_delay", int64),
    ("AutoScaleParams", "runtime_auto_scale_params", text),
    ("LastErrorMessage", "runtime_last_error_message", text),
    ("LastErrorTime", "runtime_last_error_time", epoch_ms),
    ("LastOperator", "runtime_last_operator", text),
    ("LastOperateTime", "runtime_last_operate_time", epoch_ms),
    ("Starter", "runtime_starter", text),
)
_JOB: tuple[Field, ...] = (("JobType", "type", JOB_TYPE),)


def parse(
    body: str, *, source: str, workspace: str | None = None, timezone: tzinfo = UTC
) -> ParsedBody:
    return parse_document(load(body, source), workspace=workspace, timezone=timezone)


def parse_document(
    doc: Document, *, workspace: str | None = None, timezone: tzinfo = UTC
) -> ParsedBody:
    data = body_object(doc)
    if data.get("Instance") is None:
        raise ImportFormatError(doc.source, "missing required field Instance")
    rec = Rec(doc.source, "Instance", doc.xml)
    obj = record_object(data["Instance"], rec)
    job_name = required(obj, rec, "JobName", name)
    instance_id = required(obj, rec, "Id", int64)
    status = required(obj, rec, "ActualState", STATUS)
    started = required(obj, rec, "StartTime", epoch_ms)
    values: dict[str, Any] = {"status": status, "plan_time": started, "start_time": started}
    put(values, obj, rec, _OPTIONAL)
    job_values: dict[str, Any] = {}
    put(job_values, obj, rec, _JOB)
    project = obj.get("ProjectName")
    project_name = text(project, rec, "ProjectName").strip() if project is not None else ""
    record = InstanceRecord(
        workspace=project_name or workspace or DEFAULT_WORKSPACE,
        job_name=job_name,
        instance_id=instance_id,
        values=values,
        job_values=job_values,
        source=rec.label,
    )
    collector = Collector(FORMAT, doc.source)
    collector.add(record, rec)
    return collector.parsed
