"""SchedulerX GetJobInstanceList (seed 002): the latest 10, its envelope, JSON and XML, errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.importers.body import load
from tests.factories import BASE_TIME, Ref, make_instance, make_job, new_workspace
from tests.rest.conftest import RestClient
from tests.rest.support import import_example, without_request_id


async def get(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await client.get("/", params={"Action": "GetJobInstanceList", **params})


def details(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = without_request_id(response.json())
    assert body["Code"] == 200
    assert body["Success"] is True
    assert "Message" not in body
    found: list[dict[str, Any]] = body["Data"]["JobInstanceDetails"]
    return found


async def job_with_runs(engine: AsyncEngine, count: int, job_id: int = 92583) -> Ref:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, str(job_id), vendor_job_id=job_id)
    for n in range(1, count + 1):
        await make_instance(
            engine, job, vendor_instance_id=n, plan_time=BASE_TIME + timedelta(minutes=n)
        )
    return workspace


async def test_the_latest_ten_newest_first(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    workspace = await job_with_runs(engine, 12)
    found = details(await get(client, JobId=92583, Namespace=workspace.name))
    assert [item["InstanceId"] for item in found] == list(range(12, 2, -1))


async def test_fields_a_run_lacks_are_left_out_and_statuses_are_codes(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "7")
    statuses = ["WAITING", "RUNNING", "SUCCESS", "FAIL", "REJECTED", "RUNNING_EXCEPTION", "PAUSE"]
    for n, status in enumerate(statuses, 1):
        await make_instance(
            engine, job, vendor_instance_id=n, status=status, plan_time=BASE_TIME - timedelta(n)
        )
    found = details(await get(client, JobId="0007", Namespace=workspace.name))
    assert [item["Status"] for item in found] == [1, 3, 4, 5, 9, 3, 1]
    assert found[0] == {
        "Status": 1,
        "InstanceId": 1,
        "ScheduleTime": "2019-03-03 03:53:00",  # the plan time: no reported schedule time
        "JobId": 7,
    }


async def test_times_are_local_in_jobql_timezone(
    engine: AsyncEngine, rest_client: RestClient
) -> None:
    workspace = (await new_workspace(engine)).name
    await import_example(engine, "002_example.json", workspace, timezone="Asia/Shanghai")
    async with rest_client(timezone="Asia/Shanghai") as http:
        (item,) = details(await get(http, JobId=92583, Namespace=workspace))
    assert item["StartTime"] == item["ScheduleTime"] == "2020-07-27 11:52:10"
    async with rest_client() as http:  # the same instants, in UTC
        (item,) = details(await get(http, JobId=92583, Namespace=workspace))
    assert item["StartTime"] == item["EndTime"] == item["DataTime"] == "2020-07-27 03:52:10"


async def test_namespace_is_the_workspace_group_and_region_are_ignored(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await job_with_runs(engine, 1, job_id=123456789)
    found = details(
        await get(
            client, JobId=123456789, Namespace=workspace.name, GroupId="any", RegionId="anywhere"
        )
    )
    assert [item["InstanceId"] for item in found] == [1]
    # The job is not in another namespace; a workspace header cannot stand in for Namespace
    # (without Namespace the workspace is `default`, which the header contradicts).
    for params, headers, status in [
        ({}, {"workspace": workspace.name}, 400),
        ({"Namespace": "elsewhere"}, {}, 404),
    ]:
        response = await client.get(
            "/",
            params={"Action": "GetJobInstanceList", "JobId": 123456789, **params},
            headers=headers,
        )
        assert response.status_code == status
        assert response.json()["Success"] is False


async def test_a_job_without_runs_has_an_empty_list(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await job_with_runs(engine, 0)
    assert details(await get(client, JobId=92583, Namespace=workspace.name)) == []
    xml = await get(client, JobId=92583, Namespace=workspace.name, Format="XML")
    assert load(xml.text, "reply").data["Data"] == ""


async def test_xml_lists_one_element_per_instance(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await job_with_runs(engine, 3)
    response = await get(client, JobId=92583, Namespace=workspace.name, Format="xml")
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert root.tag == "GetJobInstanceListResponse"
    assert [e.findtext("InstanceId") for e in root.iter("JobInstanceDetails")] == ["3", "2", "1"]
    assert root.findtext("Success") == "true"
    assert root.findtext("Code") == "200"


async def test_xml_escapes_text_and_replaces_what_xml_cannot_carry(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "8")
    await make_instance(engine, job, dispatch_progress="a<b&c]]>\x01d", dispatch_result="ok")
    response = await get(client, JobId=8, Namespace=workspace.name, Format="XML")
    root = ET.fromstring(response.content)
    assert root.findtext("Data/JobInstanceDetails/Progress") == "a<b&c]]>\ufffdd"
    (item,) = details(await get(client, JobId=8, Namespace=workspace.name))
    assert item["Progress"] == "a<b&c]]>\x01d"  # JSON carries it as stored


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status
    body = without_request_id(response.json())
    assert body.keys() == {"Code", "Message", "Success"}
    assert body["Code"] == status
    assert body["Success"] is False
    message: str = body["Message"]
    assert message
    return message


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"JobId": ""},
        {"JobId": "abc"},
        {"JobId": "1.5"},
        {"JobId": "9223372036854775808"},
        {"JobId": "１"},  # a full-width digit
        {"JobId": ["1", "2"]},
        {"JobId": 1, "Format": "yaml"},
        {"JobId": 1, "Namespace": "a\x00b"},
    ],
)
async def test_invalid_parameters_are_400_in_the_envelope(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    error_of(await get(client, **params), 400)


async def test_action_is_required_and_must_be_get_job_instance_list(
    client: httpx.AsyncClient,
) -> None:
    assert "Action" in error_of(await client.get("/", params={"JobId": 1}), 400)
    assert "Action" in error_of(await client.get("/?Action=&JobId=1"), 400)
    other = await client.get("/", params={"Action": "GetJobInfo", "JobId": 1})
    assert "GetJobInfo" in error_of(other, 404)


async def test_unknown_job_is_404(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    workspace = await new_workspace(engine)
    message = error_of(await get(client, JobId=404, Namespace=workspace.name), 404)
    assert "404" in message


async def test_errors_answer_in_xml_when_asked(client: httpx.AsyncClient) -> None:
    response = await get(client, JobId="abc", Format="XML")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/xml")
    body = load(response.text, "reply")
    assert body.root_tag == "GetJobInstanceListResponse"
    assert without_request_id(body.data) == {
        "Code": "400",
        "Message": "JobId must be a 64-bit integer, got 'abc'.",
        "Success": "false",
    }
