"""DLF v2: the instances of one job (seed 001): its window, its filters, its errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import BASE_TIME, Ref, make_instance, make_job, new_workspace
from tests.rest.conftest import RestClient
from tests.rest.support import DLF_INVALID, DLF_JOB_MISSING

BASE_MS = 1551671580000  # BASE_TIME (2019-03-04T03:53:00Z) in epoch ms
DAY_MS = 86_400_000
# A window around BASE_TIME, for tests about other things than the default window.
# Wide: the factories plan each instance a minute after the last one made in this process, so
# after 1,440 instances from earlier tests a day no longer covers them (at most 31 days: the
# API's one month).
AROUND = {"min_plan_time": BASE_MS - DAY_MS, "max_plan_time": BASE_MS + 30 * DAY_MS}
NOW = datetime(2026, 5, 17, 10, 30, 15, 250_000, tzinfo=UTC)


def path(job: str) -> str:
    return f"/v2/any-project/factory/jobs/{job}/instances/detail"


async def get(client: httpx.AsyncClient, job: str, workspace: Ref, **params: Any) -> httpx.Response:
    return await client.get(path(job), params=params, headers={"workspace": workspace.name})


def ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["instance_id"] for item in response.json()["instances"]]


async def test_items_in_snake_case_with_job_id_and_the_v2_fields(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "job_batch", vendor_job_id=608627)
    await make_instance(
        engine,
        job,
        vendor_instance_id=1,
        plan_time=BASE_TIME,
        instance_type="ONE_OFF",
        force_success=True,
        version=3,
        status="FREEZE",
    )
    response = await get(client, "job_batch", workspace, **AROUND)
    assert response.json() == {
        "total": 1,
        "instances": [
            {
                "force_success": True,
                "ignore_success": False,
                "instance_id": 1,
                "instance_type": 7,
                "job_id": 608627,
                "job_name": "job_batch",
                "job_instance_name": "job_batch",
                "plan_time": BASE_MS,
                "status": "freeze",
                "version": 3,
            }
        ],
    }


async def test_job_id_is_left_out_when_the_job_has_none(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await new_workspace(engine)
    await make_instance(engine, await make_job(engine, workspace, "plain"), plan_time=BASE_TIME)
    (item,) = (await get(client, "plain", workspace, **AROUND)).json()["instances"]
    assert "job_id" not in item
    assert item["instance_type"] == 0  # the documented default, GENERAL


async def test_unknown_job(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    workspace = await new_workspace(engine)
    await make_job(engine, workspace, "known")
    response = await get(client, "unknown", workspace, **AROUND)
    assert response.status_code == 400
    assert response.json() == DLF_JOB_MISSING
    known = await get(client, "known", workspace, **AROUND)
    assert known.json() == {"total": 0, "instances": []}


async def test_filters_by_instance_type_and_status(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "mixed")
    await make_instance(engine, job, vendor_instance_id=1, instance_type="PATCH_DATA")
    await make_instance(engine, job, vendor_instance_id=2, instance_type="MANUAL", status="FAIL")
    await make_instance(engine, job, vendor_instance_id=3, instance_type="SUBJOB")
    assert ids(await get(client, "mixed", workspace, instance_type=5, **AROUND)) == [1]
    assert ids(await get(client, "mixed", workspace, instance_type=6, **AROUND)) == [3]
    assert ids(await get(client, "mixed", workspace, status="fail", **AROUND)) == [2]
    assert ids(await get(client, "mixed", workspace, limit=1, offset=1, **AROUND)) == [2]


async def test_force_and_ignore_success_only_apply_to_status_success(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "forced")
    await make_instance(engine, job, vendor_instance_id=1)
    await make_instance(engine, job, vendor_instance_id=2, force_success=True)
    await make_instance(engine, job, vendor_instance_id=3, ignore_success=True)
    await make_instance(engine, job, vendor_instance_id=4, status="FAIL", force_success=True)

    async def listed(**params: Any) -> list[int]:
        return sorted(ids(await get(client, "forced", workspace, **params, **AROUND)))

    assert await listed(status="success") == [1, 2, 3]
    assert await listed(status="success", force_success="true") == [2]
    assert await listed(status="success", ignore_success="TRUE") == [3]
    assert await listed(status="success", force_success="false") == [1, 2, 3]
    assert await listed(status="success", force_success="true", ignore_success="true") == []
    # Without status=success they are read but set no condition.
    assert await listed(force_success="true") == [1, 2, 3, 4]
    assert await listed(status="fail", ignore_success="true") == [4]


async def test_default_window_is_today_from_midnight_to_now(
    engine: AsyncEngine, rest_client: RestClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "today")
    midnight = datetime(2026, 5, 17, tzinfo=UTC)
    millisecond = timedelta(milliseconds=1)
    for key, planned in [
        (1, midnight - millisecond),  # yesterday
        (2, midnight),  # today's first instant
        (3, NOW - millisecond),
        (4, NOW),  # the upper bound is exclusive
        (5, NOW + timedelta(hours=1)),
    ]:
        await make_instance(engine, job, vendor_instance_id=key, plan_time=planned)
    async with rest_client(now=NOW) as http:
        assert ids(await get(http, "today", workspace)) == [3, 2]
        # Each bound defaults on its own.
        since = int((midnight - timedelta(days=1)).timestamp() * 1000)
        assert ids(await get(http, "today", workspace, min_plan_time=since)) == [3, 2, 1]
        until = int((NOW + timedelta(days=1)).timestamp() * 1000)
        assert ids(await get(http, "today", workspace, max_plan_time=until)) == [5, 4, 3, 2]


async def test_today_is_the_day_in_jobql_timezone(
    engine: AsyncEngine, rest_client: RestClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "shanghai")
    # 2026-05-17 00:00 in Shanghai (+08:00) is 2026-05-16 16:00 UTC.
    local_midnight = datetime(2026, 5, 16, 16, tzinfo=UTC)
    await make_instance(engine, job, vendor_instance_id=1, plan_time=local_midnight)
    await make_instance(
        engine, job, vendor_instance_id=2, plan_time=local_midnight - timedelta(milliseconds=1)
    )
    async with rest_client(now=NOW, timezone="Asia/Shanghai") as http:
        assert ids(await get(http, "shanghai", workspace)) == [1]
    async with rest_client(now=NOW) as http:  # UTC: both are yesterday's
        assert ids(await get(http, "shanghai", workspace)) == []


async def test_window_of_at_most_one_month(engine: AsyncEngine, rest_client: RestClient) -> None:
    workspace = await new_workspace(engine)
    await make_job(engine, workspace, "month")
    month_ms = 31 * DAY_MS
    async with rest_client(now=NOW) as http:
        fits = await get(http, "month", workspace, min_plan_time=0, max_plan_time=month_ms)
        assert fits.status_code == 200
        for params in [
            {"min_plan_time": 0, "max_plan_time": month_ms + 1},
            # With max_plan_time defaulting to now, an old min_plan_time is too wide.
            {"min_plan_time": BASE_MS},
            # With min_plan_time defaulting to today, an old max_plan_time inverts the window.
            {"max_plan_time": BASE_MS},
        ]:
            response = await get(http, "month", workspace, **params)
            assert response.status_code == 400, params
            assert response.json() == DLF_INVALID


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "offset=-1",
        "offset=0.5",
        "min_plan_time=abc",
        "max_plan_time=1e12",
        "min_plan_time=1551671580000&max_plan_time=1551671520000",
        "status=done",
        "status=Success",
        "instance_type=1",
        "instance_type=x",
        "instance_type=00",
        "force_success=yes",
        "ignore_success=1",
        "status=success&force_success=t",
    ],
)
async def test_refuses_invalid_parameters(
    engine: AsyncEngine, client: httpx.AsyncClient, query: str
) -> None:
    workspace = await new_workspace(engine)
    await make_job(engine, workspace, "job_batch")
    response = await client.get(
        f"{path('job_batch')}?{query}", headers={"workspace": workspace.name}
    )
    assert response.status_code == 400
    assert response.json() == DLF_INVALID
