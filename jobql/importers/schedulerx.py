"""Alibaba SchedulerX `GetJobInstanceList` (seed 002), JSON or XML.

`Data.JobInstanceDetails` is a list, or a single object as in the page's own examples (in XML: the
element repeated, or once). The job is named by its id (`JobId` as text; the page gives no job
name) and keeps the id as a job fact. The body has no `Namespace` (it is a request parameter), so
the workspace is the body's `Namespace` when present, else the caller's, else `default`. Times are
zone-less `YYYY-MM-DD HH:MM:SS`, read in the caller's time zone. A body with `Success: false` is
refused with its `Code` and `Message`; a successful body's `Message` is accepted and ignored.
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
    int64,
    local_time,
    put,
    record_object,
    required,
    show,
    text,
)
from jobql.storage.enums import InstanceStatus, TimeType, TriggerType
from jobql.storage.records import InstanceRecord

FORMAT = "schedulerx"

STATUS = code(
    {
        1: InstanceStatus.WAITING.name,
        3: InstanceStatus.RUNNING.name,
        4: InstanceStatus.SUCCESS.name,
        5: InstanceStatus.FAIL.name,
        9: InstanceStatus.REJECTED.name,
    }
)
TRIGGER_TYPE = code({t.value: t.name for t in TriggerType})
TIME_TYPE = code({t.value: t.name for t in TimeType})

_TEXT: tuple[Field, ...] = (
    ("TriggerType", "dispatch_trigger_type", TRIGGER_TYPE),
    ("TimeType", "dispatch_time_type", TIME_TYPE),
    ("WorkAddr", "dispatch_worker_address", text),
    ("Executor", "dispatch_executor", text),
    ("Progress", "dispatch_progress", text),
    ("Result", "dispatch_result", text),
)
_DETAILS = "Data.JobInstanceDetails"


def parse(
    body: str, *, source: str, workspace: str | None = None, timezone: tzinfo = UTC
) -> ParsedBody:
    return parse_document(load(body, source), workspace=workspace, timezone=timezone)


def parse_document(
    doc: Document, *, workspace: str | None = None, timezone: tzinfo = UTC
) -> ParsedBody:
    data = body_object(doc)
    top = Rec(doc.source, "body", doc.xml)
    if data.get("Success") is not None:
        boolean(data["Success"], top, "Success")  # false was refused above; this checks the type
    body_namespace = _namespace(data, top)
    if data.get("Data") is None:
        raise ImportFormatError(doc.source, "missing required field Data")
    container = data["Data"]
    items: list[tuple[str, Any]]
    if doc.xml and container == "":
        items = []
    elif not isinstance(container, dict):
        raise ImportFormatError(doc.source, f"Data {show(container)} is not an object")
    else:
        details = container.get("JobInstanceDetails")
        if details is None or (doc.xml and details == ""):
            items = []
        elif isinstance(details, dict):
            items = [(_DETAILS, details)]
        elif isinstance(details, list):
            items = [(f"{_DETAILS}[{index}]", item) for index, item in enumerate(details)]
        else:
            raise ImportFormatError(doc.source, f"{_DETAILS} {show(details)} is not a list")

    local = local_time(timezone)
    times: tuple[Field, ...] = (
        ("StartTime", "start_time", local),
        ("EndTime", "end_time", local),
        ("DataTime", "dispatch_data_time", local),
    )
    default_workspace = body_namespace or workspace or DEFAULT_WORKSPACE
    collector = Collector(FORMAT, doc.source)
    for path, raw in items:
        rec = Rec(doc.source, path, doc.xml)
        obj = record_object(raw, rec)
        job_id = required(obj, rec, "JobId", int64)
        instance_id = required(obj, rec, "InstanceId", int64)
        status = required(obj, rec, "Status", STATUS)
        scheduled = required(obj, rec, "ScheduleTime", local)
        values: dict[str, Any] = {
            "status": status,
            "plan_time": scheduled,
            "dispatch_schedule_time": scheduled,
        }
        put(values, obj, rec, times)
        put(values, obj, rec, _TEXT)
        record = InstanceRecord(
            workspace=_namespace(obj, rec) or default_workspace,
            job_name=str(job_id),
            instance_id=instance_id,
            values=values,
            job_values={"vendor_job_id": job_id},
            source=rec.label,
        )
        collector.add(record, rec)
    return collector.parsed


def _namespace(obj: dict[str, Any], rec: Rec) -> str | None:
    raw = obj.get("Namespace")
    if raw is None:
        return None
    value = text(raw, rec, "Namespace").strip()
    return value or None
