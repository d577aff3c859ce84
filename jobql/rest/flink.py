"""Alibaba Realtime Compute (Flink/Blink) `GetInstance` (seed 004).

`GET /api/v2/projects/{projectName}/jobs/{jobName}/instances/{instanceId}[?RegionId]`:
`{RequestId, Instance{...}}` with every field of the page that the stored instance has (fields it
lacks are left out). `projectName` is the workspace (the `workspace` header plays no part);
`RegionId` is accepted and ignored. Times are epoch ms; `Packages` and `AutoScaleParams` are the
stored text as the source sent it; `ActualState` is the instance's status in Flink's terms (the
importer's one-to-one table reversed; statuses of other sources get the nearest state);
`JobType` is FLINK_STREAM for a REALTIME job, FLINK_BATCH for a BATCH one.

Errors are Alibaba's `{RequestId, Code, Message}`: HTTP 400 `InvalidParameter` (e.g. an
`instanceId` that is not a 64-bit integer), 404 `InvalidInstance.NotFound`, 500 `InternalError`
(masked). `RequestId` is the request's id, the one in the reply's `X-Request-Id`.

JSON, or XML when the `Accept` header prefers it (`application/xml` or `text/xml`; what the ROA
SDKs send after `set_accept_format('XML')`, where they send `application/json` for JSON and
`application/octet-stream` when no format is set). XML is Alibaba's: a root element named after
the action (`GetInstanceResponse`; seed 004 shows its children without one, but an XML document
has a root) holding `RequestId` and `Instance`, errors under `<Error>`; `jobql import` reads the
reply back as it reads the page's example.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers import jobs as job_use_cases
from jobql.rest.endpoint import (
    Backend,
    ErrorForms,
    ErrorReply,
    endpoint,
    json_response,
    present,
    request_id_of,
    xml_response,
)
from jobql.rest.formats import FLINK_JOB_TYPE, FLINK_STATE, epoch_ms
from jobql.rest.params import long

ROOT = "GetInstanceResponse"
ERROR_ROOT = "Error"
_JSON_TYPES = frozenset({"application/json"})
_XML_TYPES = frozenset({"application/xml", "text/xml"})


def instance_detail(row: Any, job: Any, project: str) -> dict[str, Any]:
    """The page's `Instance`, its fields in the page's (alphabetical) order."""
    return present(
        {
            "ActualState": FLINK_STATE[row.status],
            "ApiType": row.runtime_api_type,
            "AutoScaleParams": row.runtime_auto_scale_params,
            "ClusterId": row.runtime_cluster_id,
            "Code": row.runtime_code,
            "EndTime": epoch_ms(row.end_time),
            "EngineJobHandler": row.runtime_engine_job_handler,
            "EngineVersion": row.runtime_engine_version,
            "ExpectState": row.runtime_expect_state,
            "Id": row.vendor_instance_id,
            "InputDelay": row.runtime_input_delay,
            "JobName": row.job_name,
            "JobType": FLINK_JOB_TYPE[job.type],
            "LastErrorMessage": row.runtime_last_error_message,
            "LastErrorTime": epoch_ms(row.runtime_last_error_time),
            "LastOperateTime": epoch_ms(row.runtime_last_operate_time),
            "LastOperator": row.runtime_last_operator,
            "Packages": row.runtime_packages,
            "PlanJson": row.runtime_plan_json,
            "ProjectName": project,
            "Properties": row.runtime_properties,
            "QueueName": row.runtime_queue_name,
            "StartTime": epoch_ms(row.start_time),
            "Starter": row.runtime_starter,
        }
    )


async def get_instance(backend: Backend, request: Request) -> Response:
    project = request.path_params["projectName"]
    job_name = request.path_params["jobName"]
    instance_id = long("instanceId", request.path_params["instanceId"])
    async with backend.context(
        request, project, parameter="projectName", header=request.headers.get("workspace")
    ) as ctx:
        row = await instance_use_cases.get_instance(ctx, job_name, instance_id)
        job = await job_use_cases.load_job(ctx, row.job_id)
        instance = instance_detail(row, job, ctx.workspace)
    body = {"RequestId": request_id_of(request), "Instance": instance}
    return xml_response(ROOT, body) if wants_xml(request) else json_response(body)


def wants_xml(request: Request) -> bool:
    """Whether `Accept` prefers XML to JSON: the first of them by quality (then by position);
    neither named (`*/*`, `application/octet-stream`, no header): JSON."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(request.headers.get("accept", "").split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:  # NaN too
                    quality = 0.0
        ranked.append((-quality, position, media.lower()))
    for negative_quality, _position, media in sorted(ranked):
        if negative_quality >= 0:  # q=0 (or less, or unreadable) means "not this one"
            break
        if media in _XML_TYPES:
            return True
        if media in _JSON_TYPES:
            return False
    return False


def _render(request: Request, error: ErrorReply) -> Response:
    body = {"RequestId": request_id_of(request), "Code": error.code, "Message": error.message}
    if wants_xml(request):
        return xml_response(ERROR_ROOT, body, error.status)
    return json_response(body, error.status)


def _invalid(detail: str) -> ErrorReply:
    return ErrorReply(400, "InvalidParameter", detail)


ERRORS = ErrorForms(
    render=_render,
    invalid=_invalid,
    not_found=ErrorReply(404, "InvalidInstance.NotFound", "The specified instance does not exist."),
    internal=ErrorReply(
        500, "InternalError", "The request processing has failed due to some unknown error."
    ),
)


def routes(backend: Backend) -> list[Route]:
    return [
        Route(
            "/api/v2/projects/{projectName}/jobs/{jobName}/instances/{instanceId}",
            endpoint(backend, get_instance, ERRORS),
            methods=["GET"],
            name="flink_get_instance",
        ),
    ]
