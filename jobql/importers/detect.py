"""Which of the five formats a body is, from its content (never the file name), and parsing it.

JSON: `instances` items in camelCase are `dlf-v1-list`, in snake_case `dlf-v2-list` (an empty list
could be either; both give nothing); an object with `nodes`, or with `jobName` and `instanceId` at
the top, is `dlf-v1-detail`; `Instance` is `flink-instance`; `Data` or `Success` is `schedulerx`.
XML: `Instance` is `flink-instance`; `Data` or `Success` is `schedulerx`.
Error replies (DLF `error_code`, Alibaba `Success: false` or `Code` + `Message` without data) are
refused with what the service said, whatever `format` asks for. A `format` the body plainly is
not is refused too; `format` decides only where the content cannot.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import Any, Protocol

from jobql.importers import (
    dlf_v1_detail,
    dlf_v1_list,
    dlf_v2_list,
    flink_instance,
    schedulerx,
)
from jobql.importers.body import Document, ParsedBody, describe, load, refuse_error_response
from jobql.importers.errors import ImportFormatError


class _ParseDocument(Protocol):
    def __call__(
        self, doc: Document, *, workspace: str | None = ..., timezone: tzinfo = ...
    ) -> ParsedBody: ...


PARSERS: dict[str, _ParseDocument] = {
    dlf_v1_list.FORMAT: dlf_v1_list.parse_document,
    dlf_v2_list.FORMAT: dlf_v2_list.parse_document,
    dlf_v1_detail.FORMAT: dlf_v1_detail.parse_document,
    schedulerx.FORMAT: schedulerx.parse_document,
    flink_instance.FORMAT: flink_instance.parse_document,
}
FORMATS: tuple[str, ...] = tuple(PARSERS)

_V1_KEYS = frozenset(
    {
        "jobName",
        "jobInstanceName",
        "instanceId",
        "planTime",
        "startTime",
        "endTime",
        "submitTime",
        "executeTime",
        "exeTime",
    }
)
_V2_KEYS = frozenset(
    {
        "job_name",
        "job_instance_name",
        "instance_id",
        "plan_time",
        "start_time",
        "end_time",
        "submit_time",
        "execute_time",
        "job_id",
        "instance_type",
        "force_success",
        "ignore_success",
    }
)


def detect_format(body: str, *, source: str = "<body>") -> str:
    """The format name of a body, or ImportFormatError saying why it cannot tell."""
    return _detect(load(body, source))


def parse_body(
    body: str,
    *,
    source: str,
    format: str | None = None,
    workspace: str | None = None,
    timezone: tzinfo = UTC,
) -> ParsedBody:
    """Parse a body of any of the five formats (`format` None: detected from the content)."""
    if format is not None and format not in PARSERS:
        raise ImportFormatError(
            source, f"unknown format {format!r}; the formats are {', '.join(FORMATS)}"
        )
    doc = load(body, source)
    if format is None:
        format = _detect(doc)
    else:
        refuse_error_response(doc)
        found = _candidates(doc)
        if found and format not in found:
            raise ImportFormatError(
                source, f"the body is {found[0]}, not {format} as --format says"
            )
    return PARSERS[format](doc, workspace=workspace, timezone=timezone)


def _detect(doc: Document) -> str:
    refuse_error_response(doc)
    found = _candidates(doc)
    if not found:
        raise ImportFormatError(
            doc.source,
            f"cannot tell the format: {describe(doc)}; give --format (one of {', '.join(FORMATS)})",
        )
    return found[0]


def _candidates(doc: Document) -> tuple[str, ...]:
    """The formats the body's shape fits, most likely first; () when it fits none."""
    data: Any = doc.data
    if not isinstance(data, dict):
        return ()
    if doc.xml:
        if "Instance" in data:
            return (flink_instance.FORMAT,)
        if "Data" in data or "Success" in data:
            return (schedulerx.FORMAT,)
        return ()
    if "instances" in data:
        items = data["instances"]
        first = None
        if isinstance(items, list):
            first = next((item for item in items if isinstance(item, dict)), None)
        if first is None:  # nothing to tell v1 from v2 by: either gives the same
            return (dlf_v1_list.FORMAT, dlf_v2_list.FORMAT)
        camel, snake = len(_V1_KEYS & first.keys()), len(_V2_KEYS & first.keys())
        if camel > snake:
            return (dlf_v1_list.FORMAT,)
        if snake > camel:
            return (dlf_v2_list.FORMAT,)
        return ()
    if "nodes" in data or ("jobName" in data and "instanceId" in data):
        return (dlf_v1_detail.FORMAT,)
    if "Instance" in data:
        return (flink_instance.FORMAT,)
    if "Data" in data or "Success" in data:
        return (schedulerx.FORMAT,)
    return ()
