"""Realtime Compute GetInstance (seed 004): fields, states, errors, JSON or XML."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.importers.body import load
from tests.factories import BASE_TIME, make_instance, make_job, new_workspace
from tests.rest.support import without_request_id

BASE_MS = 1551671580000


def path(project: str, job: str, instance: int | str) -> str:
    return f"/api/v2/projects/{project}/jobs/{job}/instances/{instance}"


async def test_fields_the_instance_lacks_are_left_out(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "batch")
    await make_instance(engine, job, vendor_instance_id=3, status="MANUAL_STOP")
    response = await client.get(path(workspace.name, "batch", 3), params={"RegionId": "x"})
    assert response.status_code == 200
    assert without_request_id(response.json()) == {
        "Instance": {
            "ActualState": "TERMINATED",
            "Id": 3,
            "JobName": "batch",
            "JobType": "FLINK_BATCH",
            "ProjectName": workspace.name,
        }
    }


async def test_every_runtime_field_as_stored(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "stream", type="REALTIME")
    await make_instance(
        engine,
        job,
        vendor_instance_id=9,
        status="FAIL",
        plan_time=BASE_TIME,
        start_time=BASE_TIME,
        end_time=BASE_TIME + timedelta(seconds=5),
        runtime_actual_state="FAILED",
        runtime_expect_state="RUNNING",
        runtime_api_type="SQL",
        runtime_engine_version="blink-3.4.4",
        runtime_cluster_id="c",
        runtime_queue_name="q",
        runtime_engine_job_handler="h|j",
        runtime_code="select 1",
        runtime_properties="a=b",
        runtime_plan_json="",
        runtime_packages="a.jar,b.jar",
        runtime_input_delay=-1,
        runtime_auto_scale_params='{"isOnOff":true}',
        runtime_last_error_message="boom",
        runtime_last_error_time=BASE_TIME + timedelta(seconds=4),
        runtime_last_operator="me",
        runtime_last_operate_time=BASE_TIME - timedelta(seconds=1),
        runtime_starter="you",
    )
    response = await client.get(path(workspace.name, "stream", 9))
    assert without_request_id(response.json())["Instance"] == {
        "ActualState": "FAILED",
        "ApiType": "SQL",
        "AutoScaleParams": '{"isOnOff":true}',
        "ClusterId": "c",
        "Code": "select 1",
        "EndTime": BASE_MS + 5_000,
        "EngineJobHandler": "h|j",
        "EngineVersion": "blink-3.4.4",
        "ExpectState": "RUNNING",
        "Id": 9,
        "InputDelay": -1,
        "JobName": "stream",
        "JobType": "FLINK_STREAM",
        "LastErrorMessage": "boom",
        "LastErrorTime": BASE_MS + 4_000,
        "LastOperateTime": BASE_MS - 1_000,
        "LastOperator": "me",
        "Packages": "a.jar,b.jar",
        "PlanJson": "",
        "ProjectName": workspace.name,
        "Properties": "a=b",
        "QueueName": "q",
        "StartTime": BASE_MS,
        "Starter": "you",
    }


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("WAITING", "WAITING"),
        ("RUNNING", "RUNNING"),
        ("PAUSE", "PAUSED"),
        ("MANUAL_STOP", "TERMINATED"),
        ("SUCCESS", "SUCCESS"),
        ("FAIL", "FAILED"),
        ("RUNNING_EXCEPTION", "RUNNING"),
        ("REJECTED", "FAILED"),
    ],
)
async def test_actual_state_is_the_status_in_flinks_terms(
    engine: AsyncEngine, client: httpx.AsyncClient, status: str, state: str
) -> None:
    workspace = await new_workspace(engine)
    await make_instance(
        engine, await make_job(engine, workspace, "j"), vendor_instance_id=1, status=status
    )
    response = await client.get(path(workspace.name, "j", 1))
    assert response.json()["Instance"]["ActualState"] == state


@pytest.mark.parametrize(("job", "instance"), [("j", 2), ("other", 1)])
async def test_unknown_instance_is_404(
    engine: AsyncEngine, client: httpx.AsyncClient, job: str, instance: int
) -> None:
    workspace = await new_workspace(engine)
    await make_instance(engine, await make_job(engine, workspace, "j"), vendor_instance_id=1)
    response = await client.get(path(workspace.name, job, instance))
    assert response.status_code == 404
    assert without_request_id(response.json()) == {
        "Code": "InvalidInstance.NotFound",
        "Message": "The specified instance does not exist.",
    }


@pytest.mark.parametrize(
    ("project", "job", "instance"),
    [
        ("p", "j", "abc"),
        ("p", "j", "123x"),
        ("p", "j", "-9223372036854775809"),
        ("p", "j", "%00"),
        ("p", "a%00b", "1"),
        ("a%00b", "j", "1"),
    ],
)
async def test_invalid_parameters_are_400(
    client: httpx.AsyncClient, project: str, job: str, instance: str
) -> None:
    response = await client.get(path(project, job, instance))
    assert response.status_code == 400
    body = without_request_id(response.json())
    assert body["Code"] == "InvalidParameter"
    assert body["Message"]


def as_xml_text(value: object) -> str:
    """A JSON value as XML carries it: text."""
    return str(value)


@pytest.mark.parametrize(
    ("accept", "xml"),
    [
        ("application/xml", True),  # the ROA SDKs' set_accept_format('XML')
        ("text/xml", True),
        ("application/json", False),  # set_accept_format('JSON'), do_action_with_exception
        ("application/octet-stream", False),  # no format set
        (None, False),
        ("*/*", False),
        ("application/xml, application/json", True),
        ("application/json, application/xml", False),
        ("application/json;q=0.5, application/xml", True),
        ("application/xml;q=0, application/json", False),
        ("application/xml;q=nan", False),
        ("application/xml;q=x, text/html", False),
        ("Application/XML; charset=utf-8", True),
    ],
)
async def test_the_accept_header_picks_json_or_xml(
    engine: AsyncEngine, client: httpx.AsyncClient, accept: str | None, xml: bool
) -> None:
    workspace = await new_workspace(engine)
    await make_instance(
        engine, await make_job(engine, workspace, "j"), vendor_instance_id=1, status="RUNNING"
    )
    headers = {} if accept is None else {"Accept": accept}
    response = await client.get(path(workspace.name, "j", 1), headers=headers)
    assert response.status_code == 200
    media = "application/xml" if xml else "application/json"
    assert response.headers["content-type"].startswith(media)
    body = load(response.text, "reply")
    assert body.xml is xml
    assert body.data["RequestId"] == response.headers["x-request-id"]


async def test_xml_carries_every_field_the_json_does(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "stream", type="REALTIME")
    await make_instance(
        engine,
        job,
        vendor_instance_id=9,
        status="RUNNING",
        plan_time=BASE_TIME,
        start_time=BASE_TIME,
        runtime_api_type="SQL",
        runtime_code="select '<&>'\nfrom t",
        runtime_plan_json="",
        runtime_packages="a.jar,b.jar",
        runtime_input_delay=-1,
        runtime_auto_scale_params='{"isOnOff":true}',
        runtime_last_error_message="bad \x0b byte",  # no XML 1.0 character: U+FFFD
    )
    url = path(workspace.name, "stream", 9)
    as_json = (await client.get(url)).json()["Instance"]
    response = await client.get(url, headers={"Accept": "application/xml"})
    got = load(response.text, "reply")
    assert got.root_tag == "GetInstanceResponse"
    expected = {key: as_xml_text(value) for key, value in as_json.items()}
    expected["LastErrorMessage"] = "bad \ufffd byte"
    assert got.data["Instance"] == expected


@pytest.mark.parametrize(
    ("instance", "status", "code"),
    [("2", 404, "InvalidInstance.NotFound"), ("abc", 400, "InvalidParameter")],
)
async def test_errors_answer_in_xml_when_asked(
    engine: AsyncEngine, client: httpx.AsyncClient, instance: str, status: int, code: str
) -> None:
    workspace = await new_workspace(engine)
    await make_instance(engine, await make_job(engine, workspace, "j"), vendor_instance_id=1)
    url = path(workspace.name, "j", instance)
    response = await client.get(url, headers={"Accept": "application/xml"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/xml")
    got = load(response.text, "reply")
    assert got.root_tag == "Error"  # Alibaba's XML error element
    assert set(got.data) == {"RequestId", "Code", "Message"}
    assert got.data["Code"] == code
    assert got.data["RequestId"] == response.headers["x-request-id"]
    as_json = await client.get(url)
    assert as_json.status_code == status
    assert as_json.json()["Code"] == code
    assert as_json.json()["RequestId"] == as_json.headers["x-request-id"]
