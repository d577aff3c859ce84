"""DLF v1: the instance list (seed 000) and one instance's detail (seed 003), parameter by
parameter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import (
    BASE_TIME,
    Ref,
    data_of,
    make_instance,
    make_job,
    make_nodes,
    new_workspace,
)
from tests.rest.support import DLF_INSTANCE_MISSING, DLF_INVALID

LIST = "/v1/any-project/jobs/instances/detail"
BASE_MS = 1551671580000  # BASE_TIME in epoch ms


def ms(minutes: int) -> int:
    """BASE_TIME + `minutes`, in epoch ms."""
    return BASE_MS + minutes * 60_000


async def get(
    client: httpx.AsyncClient, path: str, workspace: Ref | None, **params: Any
) -> httpx.Response:
    headers = {"workspace": workspace.name} if workspace else {}
    return await client.get(path, params=params, headers=headers)


async def twelve_runs(engine: AsyncEngine) -> tuple[Ref, Ref]:
    """A workspace with one job planned every minute, instance ids 1..12 (12 the newest)."""
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "daily")
    for n in range(1, 13):
        await make_instance(
            engine, job, vendor_instance_id=n, plan_time=BASE_TIME + timedelta(minutes=n)
        )
    return workspace, job


def ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["instanceId"] for item in response.json()["instances"]]


async def test_list_defaults_to_the_newest_ten_with_the_total(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace, _job = await twelve_runs(engine)
    response = await get(client, LIST, workspace)
    assert ids(response) == list(range(12, 2, -1))
    assert response.json()["total"] == 12


async def test_list_pages_by_limit_and_offset(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace, _job = await twelve_runs(engine)
    assert ids(await get(client, LIST, workspace, limit=5, offset=3)) == [9, 8, 7, 6, 5]
    assert ids(await get(client, LIST, workspace, limit=1000, offset=10)) == [2, 1]
    beyond = await get(client, LIST, workspace, offset=12)
    assert beyond.json() == {"total": 12, "instances": []}
    assert ids(await get(client, LIST, workspace, limit=1)) == [12]


async def test_list_order_is_graphqls_order(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    """One query path: offset pages list exactly what GraphQL lists, ties broken the same way."""
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "tied")
    for n in range(1, 8):
        await make_instance(engine, job, vendor_instance_id=n, plan_time=BASE_TIME)
    data = await data_of(
        engine, "{ instances(first: 100) { nodes { instanceId } } }", workspace=workspace.name
    )
    graphql = [node["instanceId"] for node in data["instances"]["nodes"]]
    pages = [ids(await get(client, LIST, workspace, limit=3, offset=o)) for o in (0, 3, 6)]
    assert [key for page in pages for key in page] == graphql


async def test_list_filters_by_job_name_time_window_and_status(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace, job = await twelve_runs(engine)
    other = await make_job(engine, workspace, "job_sms_DLI_SMS_PROCESS")  # a sub-job's name
    await make_instance(engine, other, vendor_instance_id=99, status="FAIL")
    await make_instance(engine, job, vendor_instance_id=13, status="REJECTED")
    await make_instance(engine, job, vendor_instance_id=14, status="SKIP_BY_DEPEND")

    assert ids(await get(client, LIST, workspace, jobName="job_sms_DLI_SMS_PROCESS")) == [99]
    assert (await get(client, LIST, workspace, jobName="nobody")).json() == {
        "total": 0,
        "instances": [],
    }
    # Exclusive bounds, like the page's "greater than" and "less than".
    window = await get(
        client, LIST, workspace, jobName="daily", minPlanTime=ms(3), maxPlanTime=ms(6)
    )
    assert ids(window) == [5, 4]
    assert ids(await get(client, LIST, workspace, jobName="daily", maxPlanTime=ms(3))) == [2, 1]
    # SchedulerX's REJECTED reads as `fail` in DLF, in replies and in the filter alike.
    failed = await get(client, LIST, workspace, status="fail", limit=100)
    assert sorted(ids(failed)) == [13, 99]
    assert {item["status"] for item in failed.json()["instances"]} == {"fail"}
    assert ids(await get(client, LIST, workspace, status="skip-by-depend")) == [14]
    assert ids(await get(client, LIST, workspace, status="running")) == []


async def test_empty_parameters_count_as_absent(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    """The page's URI template, filled in with nothing for the parameters a script left unset."""
    workspace, _job = await twelve_runs(engine)
    template = f"{LIST}?jobName=daily&minPlanTime=&maxPlanTime=&limit=&offset=&status="
    response = await client.get(template, headers={"workspace": workspace.name})
    assert ids(response) == list(range(12, 2, -1))


async def test_list_items_leave_out_what_the_instance_lacks(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "sparse")
    await make_instance(
        engine, job, vendor_instance_id=7, job_instance_name=None, status="RUNNING_EXCEPTION"
    )
    await make_instance(
        engine,
        job,
        vendor_instance_id=8,
        plan_time=BASE_TIME,
        start_time=BASE_TIME + timedelta(seconds=1),
        end_time=BASE_TIME + timedelta(seconds=19),
        submit_time=BASE_TIME - timedelta(seconds=1),
        execute_time=0.3,
    )
    response = await get(client, LIST, workspace, jobName="sparse")
    first, second = response.json()["instances"]
    # instanceType, forceSuccess and ignoreSuccess are always held (general, false, false).
    assert first == {
        "instanceId": 7,
        "jobName": "sparse",
        "planTime": first["planTime"],
        "status": "running-exception",
        "instanceType": 0,
        "forceSuccess": False,
        "ignoreSuccess": False,
    }
    assert second == {
        "endTime": BASE_MS + 19_000,
        "executeTime": 0.3,  # as stored, never converted
        "instanceId": 8,
        "jobName": "sparse",
        "jobInstanceName": "sparse",
        "planTime": BASE_MS,
        "startTime": BASE_MS + 1_000,
        "status": "success",
        "submitTime": BASE_MS - 1_000,
        "instanceType": 0,
        "forceSuccess": False,
        "ignoreSuccess": False,
    }


async def test_list_items_carry_every_field_of_the_sdks_model_that_jobql_holds(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    """What the pages' examples leave out and the DLF SDK's `JobInstance` declares: `jobId`,
    `instanceType`, `version`, `forceSuccess`, `ignoreSuccess`, `errorMessage`."""
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "full", vendor_job_id=608627)
    await make_instance(
        engine,
        job,
        vendor_instance_id=1,
        instance_type="PATCH_DATA",
        version=3,
        force_success=True,
        ignore_success=True,
        runtime_last_error_message="boom",
    )
    other = await make_job(engine, workspace, "no_id")  # a job without a source id
    await make_instance(engine, other, vendor_instance_id=2, instance_type="ONE_OFF")
    response = await get(client, LIST, workspace, limit=10)
    items = {item["instanceId"]: item for item in response.json()["instances"]}
    extras = ("jobId", "instanceType", "version", "forceSuccess", "ignoreSuccess", "errorMessage")
    assert {key: items[1].get(key) for key in extras} == {
        "jobId": 608627,
        "instanceType": 5,
        "version": 3,
        "forceSuccess": True,
        "ignoreSuccess": True,
        "errorMessage": "boom",
    }
    assert {key: items[2].get(key) for key in extras} == {
        "jobId": None,  # left out: not held
        "instanceType": 7,
        "version": None,
        "forceSuccess": False,
        "ignoreSuccess": False,
        "errorMessage": None,
    }
    assert "jobId" not in items[2]
    assert "version" not in items[2]


async def test_list_filters_by_instance_type(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    """`instanceType`, as the DLF SDK sends it: v2's `instance_type` codes."""
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "typed")
    for n, kind in enumerate(["GENERAL", "MANUAL", "PATCH_DATA", "SUBJOB", "ONE_OFF"], 1):
        await make_instance(engine, job, vendor_instance_id=n, instance_type=kind)
    assert ids(await get(client, LIST, workspace, instanceType="0")) == [1]
    assert ids(await get(client, LIST, workspace, instanceType="2")) == [2]
    assert ids(await get(client, LIST, workspace, instanceType="5")) == [3]
    patch = await get(client, LIST, workspace, jobName="typed", instanceType="6", status="success")
    assert ids(patch) == [4]
    assert ids(await get(client, LIST, workspace, instanceType="7")) == [5]
    assert ids(await get(client, LIST, workspace, instanceType="")) == [5, 4, 3, 2, 1]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "limit=1.5",
        "limit=-1",
        "limit=%2B5",
        "limit=%205",
        "limit=1_0",
        "limit=%D9%A3",  # an Arabic-Indic digit three
        "limit=1&limit=2",
        "offset=-1",
        "offset=x",
        "offset=99999999999999999999",
        "minPlanTime=abc",
        "minPlanTime=1e3",
        "maxPlanTime=1.5",
        "minPlanTime=-1",
        "maxPlanTime=253402300800000",  # past the year 9999
        "minPlanTime=2000&maxPlanTime=1000",  # inverted
        "minPlanTime=1000&maxPlanTime=1000",  # empty
        "status=done",
        "status=SUCCESS",
        "status=rejected",
        "jobName=a%00b",
        "instanceType=1",
        "instanceType=x",
        "instanceType=00",
        "instanceType=%2B2",
        "instanceType=0&instanceType=2",
    ],
)
async def test_list_refuses_invalid_parameters(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"{LIST}?{query}")
    assert response.status_code == 400
    assert response.json() == DLF_INVALID


async def test_workspace_header_picks_the_workspace_absent_means_default(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    mine = await new_workspace(engine)
    name = f"only_in_{mine.name}"
    await make_instance(engine, await make_job(engine, mine, name), vendor_instance_id=1)
    default = await new_workspace(engine, "default")
    in_default = f"default_{mine.name}"
    await make_instance(engine, await make_job(engine, default, in_default), vendor_instance_id=2)

    assert ids(await get(client, LIST, mine, jobName=name)) == [1]
    assert ids(await get(client, LIST, None, jobName=name)) == []
    assert ids(await get(client, LIST, None, jobName=in_default)) == [2]
    empty_header = await client.get(LIST, params={"jobName": in_default}, headers={"workspace": ""})
    assert ids(empty_header) == [2]
    assert ids(await get(client, LIST, mine, jobName=in_default)) == []


# --- detail (seed 003) ---


def detail_path(job: str, instance: int | str) -> str:
    return f"/v1/any-project/jobs/{job}/instances/{instance}"


async def test_detail_lists_every_node_in_source_order(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "big")
    instance = await make_instance(engine, job, vendor_instance_id=5, status="FAIL")
    await make_nodes(engine, instance, 1003, status="SKIP")  # more than one page of the loader
    response = await client.get(detail_path("big", 5), headers={"workspace": workspace.name})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "fail"
    assert body["total"] == 1003
    assert [node["nodeName"] for node in body["nodes"]] == [f"node_{i}" for i in range(1003)]
    assert body["nodes"][0] == {
        "instanceId": 5,
        "nodeName": "node_0",
        "status": "skip",
        "type": "Dummy",
    }


async def test_detail_without_nodes(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "job_sms_DLI_SMS_PROCESS")
    await make_instance(engine, job, vendor_instance_id=6, plan_time=BASE_TIME, execute_time=2.0)
    response = await client.get(
        detail_path("job_sms_DLI_SMS_PROCESS", 6), headers={"workspace": workspace.name}
    )
    assert response.json() == {
        "jobName": "job_sms_DLI_SMS_PROCESS",
        "instanceId": 6,
        "status": "success",
        "planTime": BASE_MS,
        "executeTime": 2,
        "instanceType": 0,
        "forceSuccess": False,
        "ignoreSuccess": False,
        "total": 0,
        "nodes": [],
    }
    assert '"executeTime":2,' in response.text  # a whole number is written as the Long it is


async def test_detail_carries_the_instance_type_and_success_flags(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    """The fields of the DLF SDK's `ShowJobInstanceResponse` that the page's example lacks."""
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "forced")
    await make_instance(
        engine, job, vendor_instance_id=4, instance_type="MANUAL", force_success=True
    )
    response = await client.get(detail_path("forced", 4), headers={"workspace": workspace.name})
    body = response.json()
    assert (body["instanceType"], body["forceSuccess"], body["ignoreSuccess"]) == (2, True, False)


@pytest.mark.parametrize(
    ("job", "instance"),
    [("big", 6), ("nobody", 5), ("big", -5)],
)
async def test_detail_of_an_unknown_instance(
    engine: AsyncEngine, client: httpx.AsyncClient, job: str, instance: int
) -> None:
    workspace = await new_workspace(engine)
    await make_instance(engine, await make_job(engine, workspace, "big"), vendor_instance_id=5)
    response = await client.get(detail_path(job, instance), headers={"workspace": workspace.name})
    assert response.status_code == 400
    assert response.json() == DLF_INSTANCE_MISSING


@pytest.mark.parametrize(
    "instance", ["abc", "1.5", "9223372036854775808", "%2B1", "1e3", "%00", "%EF%BC%99"]
)
async def test_detail_refuses_an_instance_id_that_is_no_long(
    client: httpx.AsyncClient, instance: str
) -> None:
    response = await client.get(detail_path("big", instance))
    assert response.status_code == 400
    assert response.json() == DLF_INVALID


async def test_detail_refuses_a_job_name_with_nul(client: httpx.AsyncClient) -> None:
    response = await client.get(detail_path("a%00b", 1))
    assert response.status_code == 400
    assert response.json() == DLF_INVALID
