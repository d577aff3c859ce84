"""Alibaba SchedulerX `GetJobInstanceList` (seed 002): the latest 10 instances of a job id.

`GET /?Action=GetJobInstanceList&JobId&Namespace[&GroupId&RegionId&NamespaceSource][&Format=XML]`:
the `Namespace` is the workspace (absent: `default`); `GroupId`, `RegionId` and `NamespaceSource`
are accepted and ignored (a job is its id within the namespace). The job is the one named by the
id (`str(JobId)`, as the importer names it). The latest 10 are the first page of GraphQL's
`instances(first: 10, filter: {jobName})`: newest schedule (plan) time first.

The reply is the page's envelope: `RequestId`, `Data.JobInstanceDetails`, `Code` 200 and
`Success: true`. `JobInstanceDetails` is always a list (the documented "Array of
JobInstanceDetails"; the page's example shows one object). A successful reply has no `Message`
(the example's "jobid: ... not match groupId" is an error text on a success; jobql has none to
give). Codes are integers, times local `YYYY-MM-DD HH:MM:SS` in JOBQL_TIMEZONE. `ScheduleTime` is
the reported schedule time, else the plan time (the model's schedule time).

`Format=XML` (any case) answers XML: root `GetJobInstanceListResponse`, `JobInstanceDetails`
repeated per instance. Errors come in the same envelope (and format) with `Success: false`, an
integer `Code` that is also the HTTP status, and a `Message`: 400 for a missing or invalid
parameter (`Action`, `JobId`, `Format`), 404 for an `Action` other than GetJobInstanceList and
for a `JobId` without a job in the namespace, 500 (masked) for an unexpected failure.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobql.errors import BadUserInput, NotFound
from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers import jobs as job_use_cases
from jobql.resolvers.pagination import PageArgs
from jobql.rest.endpoint import (
    ApiError,
    Backend,
    ErrorForms,
    ErrorReply,
    endpoint,
    json_response,
    present,
    request_id,
)
from jobql.rest.formats import SCHEDULERX_STATUS, TIME_TYPE, TRIGGER_TYPE, local_text
from jobql.rest.params import Query

ACTION = "GetJobInstanceList"
ROOT = "GetJobInstanceListResponse"
LATEST = 10
XML = "application/xml"
_FORMATS = ("json", "xml")
# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def instance_detail(row: Any, job_id: int, backend: Backend) -> dict[str, Any]:
    """One `JobInstanceDetails`, its fields in the order of the page's example."""
    zone = backend.zone
    trigger, timing = row.dispatch_trigger_type, row.dispatch_time_type
    return present(
        {
            "Status": SCHEDULERX_STATUS[row.status],
            "TriggerType": None if trigger is None else TRIGGER_TYPE[trigger],
            "Progress": row.dispatch_progress,
            "EndTime": local_text(row.end_time, zone),
            "InstanceId": row.vendor_instance_id,
            "WorkAddr": row.dispatch_worker_address,
            "StartTime": local_text(row.start_time, zone),
            "DataTime": local_text(row.dispatch_data_time, zone),
            "Result": row.dispatch_result,
            "TimeType": None if timing is None else TIME_TYPE[timing],
            "Executor": row.dispatch_executor,
            "ScheduleTime": local_text(row.dispatch_schedule_time or row.plan_time, zone),
            "JobId": job_id,
        }
    )


async def get_job_instance_list(backend: Backend, request: Request) -> Response:
    query = Query(request.query_params)
    answer_format = query.text("Format")
    if answer_format is not None and answer_format.lower() not in _FORMATS:
        raise BadUserInput(f"Format must be JSON or XML, got {answer_format!r}.")
    action = query.text("Action")
    if action is None:
        raise ApiError(ErrorReply(400, 400, "Action is mandatory for this request."))
    if action != ACTION:
        raise ApiError(
            ErrorReply(404, 404, f"Action {action!r} is not supported here; use {ACTION}.")
        )
    job_id = query.long("JobId")
    if job_id is None:
        raise BadUserInput("JobId is mandatory for this action.")
    async with backend.context(
        request,
        query.text("Namespace"),
        parameter="Namespace",
        header=request.headers.get("workspace"),
    ) as ctx:
        try:
            await job_use_cases.get_job(ctx, str(job_id))
        except NotFound:
            raise ApiError(
                ErrorReply(404, 404, f"jobid: {job_id} does not exist in this namespace.")
            ) from None
        page = await instance_use_cases.list_instances(
            ctx,
            instance_use_cases.build_filter(job_name=str(job_id)),
            instance_use_cases.build_order(),
            PageArgs(first=LATEST),
        )
    details = [instance_detail(row, job_id, backend) for row in page.items]
    body = {
        "RequestId": request_id(),
        "Data": {"JobInstanceDetails": details},
        "Code": 200,
        "Success": True,
    }
    return _reply(request, body, 200)


def _wants_xml(request: Request) -> bool:
    formats = request.query_params.getlist("Format")
    return len(formats) == 1 and formats[0].lower() == "xml"


def _reply(request: Request, body: dict[str, Any], status: int) -> Response:
    if _wants_xml(request):
        return Response(to_xml(ROOT, body), status_code=status, media_type=XML)
    return json_response(body, status)


def to_xml(root: str, body: dict[str, Any]) -> bytes:
    element = ET.Element(root)
    _fill(element, body)
    ET.indent(element)
    text = ET.tostring(element, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode()


def _fill(element: ET.Element, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            child = ET.SubElement(element, key)
            if isinstance(item, dict):
                _fill(child, item)
            elif isinstance(item, bool):
                child.text = "true" if item else "false"
            else:
                child.text = _NOT_XML.sub("\ufffd", str(item))


def _render_error(request: Request, error: ErrorReply) -> Response:
    body = {
        "RequestId": request_id(),
        "Code": error.code,
        "Message": error.message,
        "Success": False,
    }
    return _reply(request, body, error.status)


def _invalid(detail: str) -> ErrorReply:
    return ErrorReply(400, 400, detail)


ERRORS = ErrorForms(
    render=_render_error,
    invalid=_invalid,
    not_found=ErrorReply(404, 404, "The job does not exist in this namespace."),
    internal=ErrorReply(500, 500, "Internal error."),
    forbidden_code=403,
)


def routes(backend: Backend) -> list[Route]:
    return [
        Route(
            "/",
            endpoint(backend, get_job_instance_list, ERRORS),
            methods=["GET"],
            name="schedulerx_get_job_instance_list",
        ),
    ]
