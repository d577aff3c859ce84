"""DataArts Studio / DLF API v2: the instances of one job (seed 001).

`GET /v2/{project_id}/factory/jobs/{job_name}/instances/detail?min_plan_time&max_plan_time&limit
&offset&status&instance_type&force_success&ignore_success`: `{total, instances}` in snake_case
with `job_id`, `instance_type`, `force_success`, `ignore_success` and `version`, newest planned
first. Unknown job: HTTP 400 `DLF.0100`.

The window: `min_plan_time` and `max_plan_time` are exclusive bounds in epoch ms. Left out, the
window is today's instances, from 00:00:00.000 (included) in JOBQL_TIMEZONE to now (excluded);
each bound defaults on its own. The window may span at most one month, read as 31 days (so any
window a client computes as "one month" fits); longer, empty or inverted windows are `DLF.3051`.

`force_success=true` (`ignore_success=true`) keeps only the instances whose success was forced
(whose failure was ignored), and only with `status=success`, as the page says; `false` (the
default) sets no condition, and with any other status both are read (and must be booleans) but
set none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobql.errors import BadUserInput, NotFound
from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers import jobs as job_use_cases
from jobql.resolvers.pagination import MAX_PAGE_SIZE
from jobql.rest import dlf
from jobql.rest.endpoint import ApiError, Backend, endpoint, json_response, present
from jobql.rest.formats import DLF_STATUS, INSTANCE_TYPE, epoch_ms, number
from jobql.rest.params import INT64_MAX, Query
from jobql.storage.enums import InstanceStatus

DEFAULT_LIMIT = 10
ONE_MONTH = timedelta(days=31)
_MILLISECOND = timedelta(milliseconds=1)


def instance_item(row: Any, job_id: int | None) -> dict[str, Any]:
    return present(
        {
            "end_time": epoch_ms(row.end_time),
            "execute_time": number(row.execute_time),
            "force_success": bool(row.force_success),
            "ignore_success": bool(row.ignore_success),
            "instance_id": row.vendor_instance_id,
            "instance_type": INSTANCE_TYPE[row.instance_type],
            "job_id": job_id,
            "job_name": row.job_name,
            "job_instance_name": row.job_instance_name,
            "plan_time": epoch_ms(row.plan_time),
            "start_time": epoch_ms(row.start_time),
            "status": DLF_STATUS[row.status],
            "submit_time": epoch_ms(row.submit_time),
            "version": row.version,
        }
    )


def plan_window(query: Query, backend: Backend) -> tuple[datetime, datetime]:
    """The exclusive plan time bounds of a request, with the page's defaults."""
    after = query.epoch_ms("min_plan_time")
    before = query.epoch_ms("max_plan_time")
    now = backend.now().astimezone(UTC)
    if before is None:
        before = now
    if after is None:
        local = now.astimezone(backend.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
        after = midnight - _MILLISECOND  # exclusive bound: 00:00:00.000 itself is today's
    if before - after > ONE_MONTH:
        raise BadUserInput("The plan time window spans more than one month.")
    return after, before


async def list_job_instances(backend: Backend, request: Request) -> Response:
    job_name = request.path_params["job_name"]
    query = Query(request.query_params)
    limit = query.integer("limit", 1, MAX_PAGE_SIZE)
    offset = query.integer("offset", 0, INT64_MAX)
    statuses = dlf.statuses(query)
    instance_types = dlf.instance_types(query, "instance_type")
    force_success = query.boolean("force_success")
    ignore_success = query.boolean("ignore_success")
    after, before = plan_window(query, backend)
    success_only = statuses == [InstanceStatus.SUCCESS]
    spec = instance_use_cases.build_filter(
        job_name=job_name,
        statuses=statuses,
        instance_types=instance_types,
        plan_time_after=after,
        plan_time_before=before,
        force_success=True if success_only and force_success else None,
        ignore_success=True if success_only and ignore_success else None,
    )
    async with backend.context(request, dlf.workspace(request)) as ctx:
        try:
            job = await job_use_cases.get_job(ctx, job_name)
        except NotFound:
            raise ApiError(dlf.JOB_MISSING) from None
        rows, total = await instance_use_cases.list_instances_offset(
            ctx,
            spec,
            instance_use_cases.build_order(),
            DEFAULT_LIMIT if limit is None else limit,
            offset or 0,
        )
    instances = [instance_item(row, job.vendor_job_id) for row in rows]
    return json_response({"total": total, "instances": instances})


def routes(backend: Backend) -> list[Route]:
    return [
        Route(
            "/v2/{project_id}/factory/jobs/{job_name}/instances/detail",
            endpoint(backend, list_job_instances, dlf.errors(not_found=dlf.JOB_MISSING)),
            methods=["GET"],
            name="dlf_v2_list_job_instances",
        ),
    ]
