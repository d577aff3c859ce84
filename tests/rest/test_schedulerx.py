"""SchedulerX GetJobInstanceList (seed 002): the latest 10, its envelope, JSON and XML, errors;
signature v3's headers, POST forms, paging, status and time filters, request ids."""

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

ACTION = "GetJobInstanceList"


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


# What the SDK's default client (signature v3) sends: the action and version as headers.
V3_HEADERS = {
    "x-acs-action": "GetJobInstanceList",
    "x-acs-version": "2019-04-30",
    "x-acs-date": "2026-01-01T00:00:00Z",
    "x-acs-signature-nonce": "3dcf8d8b625f2a11a47df115852b7cba",
    "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "accept": "application/json",
    "authorization": "ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=accept;host,Signature=00",
}
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def test_signature_v3_names_the_action_in_headers(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await job_with_runs(engine, 3)
    params: dict[str, Any] = {
        "JobId": 92583,
        "Namespace": workspace.name,
        "RegionId": "cn-hangzhou",
    }
    found = details(await client.get("/", params=params, headers=V3_HEADERS))
    assert [item["InstanceId"] for item in found] == [3, 2, 1]
    # Both ways at once (signature v2 sends the header too) must agree.
    both = await client.get("/", params={"Action": ACTION, **params}, headers=V3_HEADERS)
    assert both.status_code == 200
    cases: list[tuple[dict[str, str], dict[str, str], int]] = [
        ({"Action": "GetJobInfo"}, V3_HEADERS, 400),  # the two disagree
        ({}, {**V3_HEADERS, "x-acs-action": "GetJobInfo"}, 404),
        ({}, {**V3_HEADERS, "x-acs-version": "2020-01-01"}, 400),
        ({"Action": ACTION, "Version": "2020-01-01"}, {}, 400),
        ({"Version": "2020-01-01"}, V3_HEADERS, 400),  # disagrees with x-acs-version
    ]
    for query, headers, status in cases:
        response = await client.get("/", params={**params, **query}, headers=headers)
        error_of(response, status)


async def test_post_takes_a_form_body(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    workspace = await job_with_runs(engine, 3)
    form = f"Action={ACTION}&JobId=92583&Namespace={workspace.name}&PageSize=2"
    found = details(await client.post("/", content=form, headers=FORM))
    assert [item["InstanceId"] for item in found] == [3, 2]
    # Parameters may sit in the query string and the body; the v3 headers work the same way.
    split = await client.post(
        "/?PageNum=2&PageSize=2",
        content=f"JobId=92583&Namespace={workspace.name}",
        headers={**V3_HEADERS, **FORM, "content-type": FORM["content-type"] + "; charset=UTF-8"},
    )
    assert [item["InstanceId"] for item in details(split)] == [1]
    empty = await client.post(f"/?Action={ACTION}&JobId=92583&Namespace={workspace.name}")
    assert len(details(empty)) == 3
    xml = await client.post("/", content=form + "&Format=XML", headers=FORM)
    assert ET.fromstring(xml.content).findtext("Code") == "200"
    error = await client.post("/", content=f"Action={ACTION}&JobId=x&Format=xml", headers=FORM)
    assert error.status_code == 400
    assert load(error.text, "reply").data["Success"] == "false"


@pytest.mark.parametrize(
    ("query", "content", "content_type", "status"),
    [
        ({"JobId": 1}, "JobId=1", FORM["content-type"], 400),  # given twice
        ({}, '{"JobId": 1}', "application/json", 400),
        ({}, "JobId=1", "", 400),
        ({}, "JobId=1&x=" + "a" * 70_000, FORM["content-type"], 413),
    ],
)
async def test_bodies_it_refuses(
    client: httpx.AsyncClient, query: dict[str, Any], content: str, content_type: str, status: int
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(
        "/", params={"Action": ACTION, **query}, content=content, headers=headers
    )
    error_of(response, status)


@pytest.mark.parametrize(
    "params",
    [
        {"PageNum": "0"},
        {"PageNum": "-1"},
        {"PageNum": "2147483648"},
        {"PageNum": "x"},
        {"PageSize": "0"},
        {"PageSize": "1001"},
        {"PageSize": "1.5"},
        {"Status": "2"},
        {"Status": "four"},
        {"Status": ["4", "5"]},
        {"StartTimestamp": "-1"},
        {"EndTimestamp": "253402300800000"},
        {"StartTimestamp": "1684202400001", "EndTimestamp": "1684202400000"},
    ],
)
async def test_bad_paging_status_and_window_are_400(
    engine: AsyncEngine, client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    workspace = await job_with_runs(engine, 1)
    error_of(await get(client, JobId=92583, Namespace=workspace.name, **params), 400)


async def test_paging_status_and_window(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "92583")
    statuses = ["SUCCESS", "FAIL", "PAUSE", "SKIP_BY_DEPEND", "REJECTED", "SUCCESS"]
    for n, status in enumerate(statuses, 1):
        await make_instance(
            engine, job, vendor_instance_id=n, status=status, plan_time=BASE_TIME + timedelta(n)
        )

    async def ids(**params: Any) -> list[int]:
        found = details(await get(client, JobId=92583, Namespace=workspace.name, **params))
        return [item["InstanceId"] for item in found]

    day = 86_400_000
    base = int(BASE_TIME.timestamp() * 1000)
    assert await ids() == [6, 5, 4, 3, 2, 1]
    assert await ids(Status=5) == [4, 2]  # SKIP_BY_DEPEND shows as 5
    assert await ids(Status=1) == [3]  # PAUSE shows as 1
    assert await ids(Status=9) == [5]
    assert await ids(PageSize=4, PageNum=2) == [2, 1]
    assert await ids(PageSize=4, PageNum=3) == []
    assert await ids(PageNum=2147483647, PageSize=1000) == []
    assert await ids(StartTimestamp=base + 2 * day, EndTimestamp=base + 4 * day) == [4, 3, 2]
    assert await ids(StartTimestamp=base + 2 * day + 1) == [6, 5, 4, 3]
    assert await ids(EndTimestamp=base + 2 * day - 1) == [1]
    assert await ids(StartTimestamp=0, EndTimestamp=253402300799999) == [6, 5, 4, 3, 2, 1]
    assert await ids(Status=4, EndTimestamp=base + 5 * day, PageSize=1) == [1]


async def test_every_reply_names_its_request_id_in_the_header(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await job_with_runs(engine, 1)
    replies = [
        await get(client, JobId=92583, Namespace=workspace.name),
        await get(client, JobId=92583, Namespace=workspace.name, Format="XML"),
        await get(client, JobId="x"),
        await get(client, JobId="x", Format="XML"),
        await get(client, JobId=1, Namespace=workspace.name),  # 404
        await client.get("/"),
    ]
    ids = set()
    for response in replies:
        if response.headers["content-type"].startswith("application/xml"):
            body_id = ET.fromstring(response.content).findtext("RequestId")
        else:
            body_id = response.json()["RequestId"]
        assert response.headers["x-request-id"] == body_id
        ids.add(body_id)
    assert len(ids) == len(replies)
