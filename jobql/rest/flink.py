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
(masked). JSON only.
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
    request_id,
)
from jobql.rest.formats import FLINK_JOB_TYPE, FLINK_STATE, epoch_ms
from jobql.rest.params import long


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
    return json_response({"RequestId": request_id(), "Instance": instance})


def _render(_request: Request, error: ErrorReply) -> Response:
    body = {"RequestId": request_id(), "Code": error.code, "Message": error.message}
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
