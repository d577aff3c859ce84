"""Every example of the seed pages: import its data, send its request, get its response back.

Values are compared whole (key order free; `RequestId` any id). Deliberate differences, each
documented in jobql/rest and the README:
- seed 000 example 3 spells `exeTime`; jobql answers the documented `executeTime`;
- the DLF v1 list and detail answer every field of the DLF SDK's models that jobql holds, and
  the pages' examples show a subset: their replies are compared on the example's fields, and the
  fields beyond them must be exactly the SDK's that the example leaves out, with the values the
  imported data gives them (`instanceType` 0, i.e. general, and `forceSuccess`/`ignoreSuccess`
  false: the columns' defaults, as DLF's own are);
- seed 002's `JobInstanceDetails` is one object in the page and a list (of one) here, and its
  successful reply's `Message` (an error text) is not repeated;
- seed 004 requests instance 123 but answers `Id` 412536: the request asks for 412536; its XML
  example has no root element, jobql's XML has one (`GetInstanceResponse`, unwrapped on reading);
- seed 001's request has no window and so means "today": it is sent with the clock fixed on the
  example's day, and once with an explicit window through the whole app.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.importers.body import load
from tests.factories import new_workspace
from tests.importers.support import example
from tests.rest.conftest import RestClient
from tests.rest.support import example_json, import_example, without_request_id

PROJECT = "b384b9e9ab9b4ee8994c8633aabc9505"
V1_LIST = f"/v1/{PROJECT}/jobs/instances/detail"
SCHEDULERX = (
    "/?Action=GetJobInstanceList&GroupId=testSchedulerx.defaultGroup&JobId=92583"
    "&Namespace=adcfc35d-e2fe-4fe9-bbaa-20e90ffc****&RegionId=cn-hangzhou"
)
SCHEDULERX_NAMESPACE = "adcfc35d-e2fe-4fe9-bbaa-20e90ffc****"


# The fields of the DLF SDK's `JobInstance` / `ShowJobInstanceResponse` that the examples leave
# out, as jobql answers them for the examples' data.
V1_BEYOND_THE_EXAMPLE = {"instanceType": 0, "forceSuccess": False, "ignoreSuccess": False}


def beyond_the_example(got: dict[str, Any], page: dict[str, Any]) -> dict[str, Any]:
    """`got`'s fields that `page` lacks; `got` must agree with `page` on all of `page`'s."""
    assert {key: got.get(key) for key in page} == page
    return {key: value for key, value in got.items() if key not in page}


def spelled_execute_time(body: dict[str, Any]) -> dict[str, Any]:
    """Seed 000 example 3 with the documented field name."""
    for item in body["instances"]:
        if "exeTime" in item:
            item["executeTime"] = item.pop("exeTime")
    return body


@pytest.mark.parametrize(
    ("name", "job"),
    [("000_example1.json", "job_batch"), ("000_example3.json", "job_sms_DLI_SMS_PROCESS")],
)
async def test_dlf_v1_list_examples(
    engine: AsyncEngine, client: httpx.AsyncClient, name: str, job: str
) -> None:
    workspace = (await new_workspace(engine)).name
    await import_example(engine, name, workspace)
    response = await client.get(f"{V1_LIST}?jobName={job}", headers={"workspace": workspace})
    assert response.status_code == 200
    got, page = response.json(), spelled_execute_time(example_json(name))
    assert got["total"] == page["total"]
    assert len(got["instances"]) == len(page["instances"])
    for item, example_item in zip(got["instances"], page["instances"], strict=True):
        assert beyond_the_example(item, example_item) == V1_BEYOND_THE_EXAMPLE


async def test_dlf_v1_list_failure_example(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{V1_LIST}?jobName=job_batch&limit=0")
    assert response.status_code == 400
    assert response.json() == example_json("000_example3_failure.json")


async def test_dlf_v2_example_with_an_explicit_window(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = (await new_workspace(engine)).name
    await import_example(engine, "001_example.json", workspace)
    day = "min_plan_time=1551657600000&max_plan_time=1551744000000"  # 2019-03-04 UTC
    response = await client.get(
        f"/v2/{PROJECT}/factory/jobs/job_batch/instances/detail?{day}",
        headers={"workspace": workspace},
    )
    assert response.status_code == 200
    assert response.json() == example_json("001_example.json")


async def test_dlf_v2_example_request_on_the_examples_day(
    engine: AsyncEngine, rest_client: RestClient
) -> None:
    workspace = (await new_workspace(engine)).name
    await import_example(engine, "001_example.json", workspace)
    async with rest_client(now=datetime(2019, 3, 4, 12, 0, tzinfo=UTC)) as http:
        response = await http.get(
            f"/v2/{PROJECT}/factory/jobs/job_batch/instances/detail",
            headers={"workspace": workspace},
        )
    assert response.status_code == 200
    assert response.json() == example_json("001_example.json")


async def test_dlf_v2_failure_example(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    workspace = (await new_workspace(engine)).name
    response = await client.get(
        f"/v2/{PROJECT}/factory/jobs/job_batch/instances/detail",
        headers={"workspace": workspace},
    )
    assert response.status_code == 400
    assert response.json() == example_json("001_failure.json")


async def test_dlf_v1_detail_example(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    workspace = (await new_workspace(engine)).name
    await import_example(engine, "003_example.json", workspace)
    response = await client.get(
        f"/v1/{PROJECT}/jobs/job_batch/instances/34765", headers={"workspace": workspace}
    )
    assert response.status_code == 200
    got = response.json()
    assert beyond_the_example(got, example_json("003_example.json")) == V1_BEYOND_THE_EXAMPLE


async def test_dlf_v1_detail_failure_example(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = (await new_workspace(engine)).name
    response = await client.get(
        f"/v1/{PROJECT}/jobs/job_batch/instances/34765", headers={"workspace": workspace}
    )
    assert response.status_code == 400
    assert response.json() == example_json("003_failure.json")


def schedulerx_expected(body: dict[str, Any]) -> dict[str, Any]:
    """The page's JSON reply as jobql gives it: the details as a list, no success Message."""
    expected = without_request_id(body)
    del expected["Message"]
    expected["Data"]["JobInstanceDetails"] = [expected["Data"]["JobInstanceDetails"]]
    return expected


@pytest.mark.parametrize("name", ["002_example.json", "002_example.xml"])
async def test_schedulerx_json_example(
    engine: AsyncEngine, client: httpx.AsyncClient, name: str
) -> None:
    await import_example(engine, name, SCHEDULERX_NAMESPACE)
    response = await client.get(SCHEDULERX)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    expected = schedulerx_expected(example_json("002_example.json"))
    assert without_request_id(response.json()) == expected


@pytest.mark.parametrize("name", ["002_example.json", "002_example.xml"])
async def test_schedulerx_xml_example(
    engine: AsyncEngine, client: httpx.AsyncClient, name: str
) -> None:
    await import_example(engine, name, SCHEDULERX_NAMESPACE)
    response = await client.get(f"{SCHEDULERX}&Format=XML")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    # Both read into the JSON shape (one JobInstanceDetails element reads as one object).
    got = load(response.text, "reply")
    page = load(example("002_example.xml"), "page")
    assert got.root_tag == page.root_tag == "GetJobInstanceListResponse"
    expected = without_request_id(page.data)
    del expected["Message"]
    assert without_request_id(got.data) == expected


@pytest.mark.parametrize("name", ["004_example.json", "004_example.xml"])
async def test_realtime_compute_example(
    engine: AsyncEngine, client: httpx.AsyncClient, name: str
) -> None:
    workspace = await import_example(engine, name)
    assert workspace == "project1"  # the body's ProjectName
    response = await client.get("/api/v2/projects/project1/jobs/job1/instances/412536")
    assert response.status_code == 200
    expected = without_request_id(example_json("004_example.json"))
    assert without_request_id(response.json()) == expected


@pytest.mark.parametrize("name", ["004_example.json", "004_example.xml"])
async def test_realtime_compute_xml_example(
    engine: AsyncEngine, client: httpx.AsyncClient, name: str
) -> None:
    """`Accept: application/xml` (the SDK's `set_accept_format('XML')`) gets the page's XML."""
    await import_example(engine, name)
    response = await client.get(
        "/api/v2/projects/project1/jobs/job1/instances/412536",
        headers={"Accept": "application/xml"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    got = load(response.text, "reply")
    page = load(example("004_example.xml"), "page")
    assert got.root_tag == "GetInstanceResponse"
    assert page.root_tag is None  # the page's XML shows the children of the response only
    assert without_request_id(got.data) == without_request_id(page.data)
    assert got.data["RequestId"] == response.headers["x-request-id"]
