"""DataArts Studio / DLF v2 instance list (seed 001): snake_case `{total, instances: [...]}`.

Like v1 (see `dlf_v1_list`), plus `job_id` (a job fact: the job's vendor id), `instance_type`
(0, 2, 5, 6, 7), `force_success`, `ignore_success` and `version`.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import Any

from jobql.importers.body import DEFAULT_WORKSPACE, Collector, Document, ParsedBody, load
from jobql.importers.dlf_v1_list import DLF_STATUS, INSTANCE_TYPE, instance_list
from jobql.importers.fields import (
    Field,
    Rec,
    boolean,
    epoch_ms,
    int32,
    int64,
    name,
    number,
    put,
    record_object,
    required,
    text,
)
from jobql.storage.records import InstanceRecord

FORMAT = "dlf-v2-list"

_OPTIONAL: tuple[Field, ...] = (
    ("job_instance_name", "job_instance_name", text),
    ("start_time", "start_time", epoch_ms),
    ("end_time", "end_time", epoch_ms),
    ("submit_time", "submit_time", epoch_ms),
    ("execute_time", "execute_time", number),
    ("instance_type", "instance_type", INSTANCE_TYPE),
    ("force_success", "force_success", boolean),
    ("ignore_success", "ignore_success", boolean),
    ("version", "version", int32),
)
_JOB: tuple[Field, ...] = (("job_id", "vendor_job_id", int64),)


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
        collector.add(_instance(record_object(raw, rec), rec, workspace), rec)
    return collector.parsed


def _instance(obj: dict[str, Any], rec: Rec, workspace: str) -> InstanceRecord:
    job_name = required(obj, rec, "job_name", name)
    instance_id = required(obj, rec, "instance_id", int64)
    values: dict[str, Any] = {
        "status": required(obj, rec, "status", DLF_STATUS),
        "plan_time": required(obj, rec, "plan_time", epoch_ms),
    }
    put(values, obj, rec, _OPTIONAL)
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
