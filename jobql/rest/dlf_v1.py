"""DataArts Studio / DLF API v1: the instance list (seed 000) and one instance's detail (003).

`GET /v1/{project_id}/jobs/instances/detail?jobName&minPlanTime&maxPlanTime&limit&offset&status
&instanceType`: `{total, instances}` newest planned first (then newest stored), `limit` 1..1000
(default 10), `offset` >= 0 (default 0), plan time bounds exclusive in epoch ms, no default
window. A real-time job's sub-job is the job named `<realtime job>_<node>`. `instanceType` is
the one the DLF SDK (`ListJobInstancesRequest.instance_type`) sends: v2's `instance_type` codes,
read the same way.

`GET /v1/{project_id}/jobs/{job_name}/instances/{instance_id}`: the instance with all its nodes in
the order the source listed them, and `total`, their number. Unknown: HTTP 400 `DLF.0137`.

Replies carry every field of the DLF SDK's models (`JobInstance`, `ShowJobInstanceResponse`,
`NodeInstance`) that jobql holds, a superset of the pages' examples: the list adds `jobId`,
`instanceType`, `version`, `forceSuccess`, `ignoreSuccess` and `errorMessage` (the instance's
last error message, as Realtime Compute reports it), the detail `instanceType`, `forceSuccess`
and `ignoreSuccess`. A node's DLI `queue` is not held, so never sent. They spell the documented
`executeTime` (seed 000's example 3 spells it `exeTime`; the importer reads both) and carry it
exactly as stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobql.errors import NotFound
from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers import jobs as job_use_cases
from jobql.resolvers import nodes as node_use_cases
from jobql.resolvers.context import RequestContext
from jobql.resolvers.pagination import MAX_PAGE_SIZE, PageArgs
from jobql.rest import dlf
from jobql.rest.endpoint import ApiError, Backend, endpoint, json_response, present
from jobql.rest.formats import DLF_STATUS, INSTANCE_TYPE, NODE_STATUS, epoch_ms, number
from jobql.rest.params import INT64_MAX, Query, long

DEFAULT_LIMIT = 10


def instance_item(row: Any, job_id: int | None) -> dict[str, Any]:
    """An instance in DLF v1's camelCase (the list's items): the page's fields, then the ones
    its examples leave out."""
    return present(
        {
            "endTime": epoch_ms(row.end_time),
            "executeTime": number(row.execute_time),
            "instanceId": row.vendor_instance_id,
            "jobName": row.job_name,
            "jobInstanceName": row.job_instance_name,
            "planTime": epoch_ms(row.plan_time),
            "startTime": epoch_ms(row.start_time),
            "status": DLF_STATUS[row.status],
            "submitTime": epoch_ms(row.submit_time),
            "jobId": job_id,
            "instanceType": INSTANCE_TYPE[row.instance_type],
            "version": row.version,
            "forceSuccess": bool(row.force_success),
            "ignoreSuccess": bool(row.ignore_success),
            "errorMessage": row.runtime_last_error_message,
        }
    )


def node_item(row: Any, instance_id: int) -> dict[str, Any]:
    return present(
        {
            "endTime": epoch_ms(row.end_time),
            "inputRowCount": row.input_row_count,
            "instanceId": instance_id,
            "logPath": row.log_path,
            "nodeName": row.name,
            "planTime": epoch_ms(row.plan_time),
            "retryTimes": row.retry_times,
            "speed": row.speed,
            "startTime": epoch_ms(row.start_time),
            "status": NODE_STATUS[row.status],
            "submitTime": epoch_ms(row.submit_time),
            "type": row.type,
        }
    )


async def list_instances(backend: Backend, request: Request) -> Response:
    query = Query(request.query_params)
    limit = query.integer("limit", 1, MAX_PAGE_SIZE)
    offset = query.integer("offset", 0, INT64_MAX)
    spec = instance_use_cases.build_filter(
        job_name=query.text("jobName"),
        statuses=dlf.statuses(query),
        instance_types=dlf.instance_types(query, "instanceType"),
        plan_time_after=query.epoch_ms("minPlanTime"),
        plan_time_before=query.epoch_ms("maxPlanTime"),
    )
    async with backend.context(request, dlf.workspace(request)) as ctx:
        rows, total = await instance_use_cases.list_instances_offset(
            ctx,
            spec,
            instance_use_cases.build_order(),
            DEFAULT_LIMIT if limit is None else limit,
            offset or 0,
        )
        job_ids = await vendor_job_ids(ctx, rows)
    instances = [instance_item(row, job_ids[row.job_id]) for row in rows]
    return json_response({"total": total, "instances": instances})


async def vendor_job_ids(ctx: RequestContext, rows: list[Any]) -> dict[int, int | None]:
    """The source's id (`jobId`) of each listed instance's job, by job key: the job loader's
    one statement for the page, however many jobs it lists."""
    keys = list(dict.fromkeys(row.job_id for row in rows))
    jobs = await asyncio.gather(*(job_use_cases.load_job(ctx, key) for key in keys))
    return {job.id: job.vendor_job_id for job in jobs}


async def all_nodes(ctx: RequestContext, instance: Any) -> list[Any]:
    """Every node of an instance (its row), a page of the nodes loader at a time."""
    found: list[Any] = []
    after: str | None = None
    while True:
        page = await node_use_cases.list_instance_nodes(
            ctx, (instance.id, instance.plan_time), None, PageArgs(first=MAX_PAGE_SIZE, after=after)
        )
        found.extend(page.items)
        if not page.has_next:
            return found
        after = page.end_cursor


async def get_instance(backend: Backend, request: Request) -> Response:
    job_name = request.path_params["job_name"]
    instance_id = long("instance_id", request.path_params["instance_id"])
    async with backend.context(request, dlf.workspace(request)) as ctx:
        try:
            row = await instance_use_cases.get_instance(ctx, job_name, instance_id)
        except NotFound:
            raise ApiError(dlf.INSTANCE_MISSING) from None
        nodes = await all_nodes(ctx, row)
    body = present(
        {
            "jobName": row.job_name,
            "instanceId": row.vendor_instance_id,
            "status": DLF_STATUS[row.status],
            "planTime": epoch_ms(row.plan_time),
            "startTime": epoch_ms(row.start_time),
            "endTime": epoch_ms(row.end_time),
            "executeTime": number(row.execute_time),
            "instanceType": INSTANCE_TYPE[row.instance_type],
            "forceSuccess": bool(row.force_success),
            "ignoreSuccess": bool(row.ignore_success),
        }
    )
    body["total"] = len(nodes)
    body["nodes"] = [node_item(node, row.vendor_instance_id) for node in nodes]
    return json_response(body)


def routes(backend: Backend) -> list[Route]:
    return [
        Route(
            "/v1/{project_id}/jobs/instances/detail",
            endpoint(backend, list_instances, dlf.errors()),
            methods=["GET"],
            name="dlf_v1_list_instances",
        ),
        Route(
            "/v1/{project_id}/jobs/{job_name}/instances/{instance_id}",
            endpoint(backend, get_instance, dlf.errors(not_found=dlf.INSTANCE_MISSING)),
            methods=["GET"],
            name="dlf_v1_get_instance",
        ),
    ]
