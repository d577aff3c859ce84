"""DataArts Studio / DLF v1 instance list (seed 000): camelCase `{total, instances: [...]}`.

The body carries no workspace (DLF takes it from the `workspace` request header), so it comes
from the caller, else `default`. Times are epoch milliseconds. `executeTime` is kept exactly as
reported; the page's example 3 spells it `exeTime`, which is read the same way. `total` counts the
instances on every page, so it is not compared with the list.

Beside the page's fields, an item may carry those of the DLF SDK's `JobInstance` model (what DLF
and jobql's own endpoint answer; `jobql collect` reads them): `jobId` (a job fact, the job's
vendor id), `instanceType` (v2's codes 0, 2, 5, 6, 7), `version`, `forceSuccess`,
`ignoreSuccess` and `errorMessage` (the instance's last error message). The detail body
(`dlf_v1_detail`) reads the same way.
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
    boolean,
    code,
    epoch_ms,
    int32,
    int64,
    name,
    number,
    put,
    record_object,
    required,
    show,
    text,
)
from jobql.storage.enums import InstanceStatus, InstanceType
from jobql.storage.records import InstanceRecord

FORMAT = "dlf-v1-list"

# Every DLF status string (v2 adds skip-by-depend and freeze; v1 pages list seven of them).
DLF_STATUS = code({s.value: s.name for s in InstanceStatus if s is not InstanceStatus.REJECTED})
INSTANCE_TYPE = code({t.value: t.name for t in InstanceType})

_OPTIONAL: tuple[Field, ...] = (
    ("jobInstanceName", "job_instance_name", text),
    ("startTime", "start_time", epoch_ms),
    ("endTime", "end_time", epoch_ms),
    ("submitTime", "submit_time", epoch_ms),
    # The SDK model's fields beyond the page's.
    ("instanceType", "instance_type", INSTANCE_TYPE),
    ("version", "version", int32),
    ("forceSuccess", "force_success", boolean),
    ("ignoreSuccess", "ignore_success", boolean),
    ("errorMessage", "runtime_last_error_message", text),
)
_JOB: tuple[Field, ...] = (("jobId", "vendor_job_id", int64),)


def parse(
    body: str, *, source: str, workspace: str | None = None, timezone: tzinfo = UTC
) -> ParsedBody:
    return parse_document(load(body, source), workspace=workspace, timezone=timezone)


def parse_document(
    doc: Document, *, workspace: str | None = None, timezone: tzinfo = UTC
) -> ParsedBody:
    items = instance_list(doc)
    collector = Collector(FORMAT, doc.source)
    workspace = workspace or DEFAULT_WORKSPACE
    for index, raw in enumerate(items):
        rec = Rec(doc.source, f"instances[{index}]", False)
        collector.add(camel_instance(record_object(raw, rec), rec, workspace), rec)
    return collector.parsed


def instance_list(doc: Document) -> list[Any]:
    data = body_object(doc, json_only=True)
    items = data.get("instances")
    if items is None:
        raise ImportFormatError(doc.source, "missing required field instances")
    if not isinstance(items, list):
        raise ImportFormatError(doc.source, f"instances {show(items)} is not a list")
    return items


def camel_instance(obj: dict[str, Any], rec: Rec, workspace: str) -> InstanceRecord:
    """One instance in DLF v1's camelCase (the list's items and the detail body alike)."""
    job_name = required(obj, rec, "jobName", name)
    instance_id = required(obj, rec, "instanceId", int64)
    values: dict[str, Any] = {
        "status": required(obj, rec, "status", DLF_STATUS),
        "plan_time": required(obj, rec, "planTime", epoch_ms),
    }
    put(values, obj, rec, _OPTIONAL)
    execute_time = obj.get("executeTime")
    if execute_time is not None:
        values["execute_time"] = number(execute_time, rec, "executeTime")
    spelled = obj.get("exeTime")
    if spelled is not None:
        value = number(spelled, rec, "exeTime")
        if execute_time is not None and value != values["execute_time"]:
            rec.fail(f"executeTime {show(execute_time)} and exeTime {show(spelled)} disagree")
        values["execute_time"] = value
    job_values: dict[str, Any] = {}
    put(job_values, obj, rec, _JOB)
    return InstanceRecord(
        workspace=workspace,
        job_name=job_name,
        instance_id=instance_id,
        values=values,
        job_values=job_values,
        source=rec.label,
    )
