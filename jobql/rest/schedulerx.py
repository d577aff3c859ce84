"""Alibaba SchedulerX `GetJobInstanceList` (seed 002): a job's instances, by default the latest 10.

`GET /?Action=GetJobInstanceList&JobId&Namespace[&GroupId&RegionId&NamespaceSource]
[&Status&StartTimestamp&EndTimestamp&PageNum&PageSize][&Format=XML]`, as Alibaba's RPC-style
APIs are called, in either form their SDKs send:
- signature v2: `Action` (and `Version`, `Format=json`, the signature's own parameters) in the
  query string;
- signature v3 (ACS3-HMAC-SHA256, the SDKs' default): the action in the `x-acs-action` header and
  the version in `x-acs-version`, the API's parameters in the query string.
`POST /` takes the same, its parameters in the query string and/or an
`application/x-www-form-urlencoded` body (a parameter in both counts as given twice). Signatures
are not verified: any access key works (jobql's own tokens are what guards it). An `Action` and an
`x-acs-action` that disagree are refused, as is a version other than 2019-04-30.

The `Namespace` is the workspace (absent: `default`); `GroupId`, `RegionId` and `NamespaceSource`
are accepted and ignored (a job is its id within the namespace). The job is the one named by the
id (`str(JobId)`, as the importer names it). The list is GraphQL's `instances(filter: {jobName})`,
newest schedule (plan) time first: page `PageNum` (from 1, default 1) of `PageSize` (1..1000,
default 10) instances; `Status` (1, 3, 4, 5, 9) keeps the instances a reply shows with that code;
`StartTimestamp` / `EndTimestamp` (epoch ms) bound the schedule time, both included. The API
documents no largest `PageSize`; 1000 is jobql's largest page everywhere.

The reply is the page's envelope: `RequestId`, `Data.JobInstanceDetails`, `Code` 200 and
`Success: true`. `JobInstanceDetails` is always a list (the documented "Array of
JobInstanceDetails"; the page's example shows one object). A successful reply has no `Message`
(the example's "jobid: ... not match groupId" is an error text on a success; jobql has none to
give). Codes are integers, times local `YYYY-MM-DD HH:MM:SS` in JOBQL_TIMEZONE. `ScheduleTime` is
the reported schedule time, else the plan time (the model's schedule time). Every reply, errors
included, carries its `RequestId` in the `X-Request-Id` header too.

`Format=XML` (any case) answers XML: root `GetJobInstanceListResponse`, `JobInstanceDetails`
repeated per instance. Errors come in the same envelope (and format) with `Success: false`, an
integer `Code` that is also the HTTP status, and a `Message`: 400 for a missing or invalid
parameter, 404 for an `Action` other than GetJobInstanceList and for a `JobId` without a job in
the namespace, 413 for a form body over 64 KiB, 500 (masked) for an unexpected failure.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobql.errors import BadUserInput, NotFound
from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers import jobs as job_use_cases
from jobql.resolvers.context import RequestContext
from jobql.resolvers.pagination import MAX_PAGE_SIZE, PageArgs
from jobql.rest.endpoint import (
    REQUEST_ID_HEADER,
    ApiError,
    Backend,
    ErrorForms,
    ErrorReply,
    endpoint,
    json_response,
    present,
    request_id_of,
    xml_response,
)
from jobql.rest.formats import (
    EPOCH_MS_MAX,
    SCHEDULERX_STATUS,
    TIME_TYPE,
    TRIGGER_TYPE,
    from_epoch_ms,
    local_text,
)
from jobql.rest.params import Query
from jobql.storage.enums import InstanceStatus

ACTION = "GetJobInstanceList"
VERSION = "2019-04-30"
ROOT = "GetJobInstanceListResponse"
LATEST = 10
INT32_MAX = 2**31 - 1  # PageNum, PageSize and Status are the API's Integer
FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024
_FORMATS = ("json", "xml")
_MILLISECOND = timedelta(milliseconds=1)
_LAST_TIME = from_epoch_ms(EPOCH_MS_MAX)

# A `Status` code -> the members it selects: exactly the instances a reply shows with that code.
STATUS_FILTER: dict[int, list[InstanceStatus]] = {}
for _member, _code in SCHEDULERX_STATUS.items():
    STATUS_FILTER.setdefault(_code, []).append(InstanceStatus[_member])


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
    params = await _parameters(request)
    request.state.schedulerx_params = params  # errors answer in the Format asked for, too
    query = Query(params)
    answer_format = query.text("Format")
    if answer_format is not None and answer_format.lower() not in _FORMATS:
        raise BadUserInput(f"Format must be JSON or XML, got {answer_format!r}.")
    action = _common(query, request, "Action", "x-acs-action")
    if action is None:
        raise ApiError(ErrorReply(400, 400, "Action is mandatory for this request."))
    if action != ACTION:
        raise ApiError(
            ErrorReply(404, 404, f"Action {action!r} is not supported here; use {ACTION}.")
        )
    version = _common(query, request, "Version", "x-acs-version")
    if version is not None and version != VERSION:
        raise BadUserInput(f"Version {version!r} is not supported; {ACTION} is {VERSION}.")
    job_id = query.long("JobId")
    if job_id is None:
        raise BadUserInput("JobId is mandatory for this action.")
    after, before = _window(query)
    spec = instance_use_cases.build_filter(
        job_name=str(job_id),
        statuses=_statuses(query),
        plan_time_after=after,
        plan_time_before=before,
    )
    page_num = query.integer("PageNum", 1, INT32_MAX) or 1
    page_size = query.integer("PageSize", 1, MAX_PAGE_SIZE) or LATEST
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
        rows = await _page(ctx, spec, page_num, page_size)
    body = {
        "RequestId": request_id_of(request),
        "Data": {"JobInstanceDetails": [instance_detail(row, job_id, backend) for row in rows]},
        "Code": 200,
        "Success": True,
    }
    return _reply(request, body, 200)


async def _parameters(request: Request) -> QueryParams:
    """The query string's parameters, and a POST's form body's after them. A body of another
    type is refused unread."""
    if request.method != "POST":
        return request.query_params
    content_type = request.headers.get("content-type")
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if content_type is not None and media_type != FORM:
        raise BadUserInput(f"A request body must be {FORM}, got {media_type!r}.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise ApiError(_TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise ApiError(_TOO_LARGE)
        chunks.append(chunk)
    if not size:
        return request.query_params
    if content_type is None:
        raise BadUserInput(f"A request body must be {FORM}; it has no Content-Type.")
    # Decoded as the query string is (Latin-1 bytes, then UTF-8 percent escapes).
    form = QueryParams(b"".join(chunks))
    return QueryParams([*request.query_params.multi_items(), *form.multi_items()])


def _common(query: Query, request: Request, name: str, header: str) -> str | None:
    """A common parameter of Alibaba's RPC APIs, which signature v2 sends as a parameter and v3
    as an `x-acs-*` header; given both ways, they must agree."""
    given = query.text(name)
    values = [value for value in request.headers.getlist(header) if value != ""]
    if len(values) > 1:
        raise BadUserInput(f"The {header} header is given {len(values)} times; give it once.")
    sent = values[0] if values else None
    if given is not None and sent is not None and given != sent:
        raise BadUserInput(f"{name} {given!r} and the {header} header {sent!r} disagree.")
    return given if given is not None else sent


def _statuses(query: Query) -> list[InstanceStatus] | None:
    code = query.integer("Status", 0, INT32_MAX)
    if code is None:
        return None
    if code not in STATUS_FILTER:
        codes = ", ".join(str(known) for known in sorted(STATUS_FILTER))
        raise BadUserInput(f"Status must be one of {codes}, got {code}.")
    return STATUS_FILTER[code]


def _window(query: Query) -> tuple[datetime | None, datetime | None]:
    """`StartTimestamp` .. `EndTimestamp`, both included, as the filter's exclusive plan time
    bounds (times are stored to the millisecond, so one millisecond out is exact)."""
    start = query.epoch_ms("StartTimestamp")
    end = query.epoch_ms("EndTimestamp")
    if start is not None and end is not None and start > end:
        raise BadUserInput("StartTimestamp must not be later than EndTimestamp.")
    return (
        None if start is None else start - _MILLISECOND,
        None if end is None or end >= _LAST_TIME else end + _MILLISECOND,
    )


async def _page(
    ctx: RequestContext, spec: instance_use_cases.InstanceFilter, number: int, size: int
) -> list[Any]:
    """Page `number` of `size` instances, newest schedule time first. The first page is a
    keyset page (no count); a later one is an offset page of the same query."""
    order = instance_use_cases.build_order()
    if number == 1:
        page = await instance_use_cases.list_instances(ctx, spec, order, PageArgs(first=size))
        return page.items
    rows, _total = await instance_use_cases.list_instances_offset(
        ctx, spec, order, size, (number - 1) * size
    )
    return rows


def _wants_xml(request: Request) -> bool:
    params = getattr(request.state, "schedulerx_params", request.query_params)
    formats = params.getlist("Format")
    return len(formats) == 1 and formats[0].lower() == "xml"


def _reply(request: Request, body: dict[str, Any], status: int) -> Response:
    if _wants_xml(request):
        response = xml_response(ROOT, body, status)
    else:
        response = json_response(body, status)
    # The header names the body's id (request_id_of is the id SourceRoute puts in the header;
    # said here too, so that the two agree wherever these routes are mounted).
    response.headers[REQUEST_ID_HEADER] = body["RequestId"]
    return response


def _render_error(request: Request, error: ErrorReply) -> Response:
    body = {
        "RequestId": request_id_of(request),
        "Code": error.code,
        "Message": error.message,
        "Success": False,
    }
    return _reply(request, body, error.status)


def _invalid(detail: str) -> ErrorReply:
    return ErrorReply(400, 400, detail)


_TOO_LARGE = ErrorReply(413, 413, f"The request body is larger than {MAX_FORM_BYTES} bytes.")

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
            methods=["GET", "POST"],
            name="schedulerx_get_job_instance_list",
        ),
    ]
