"""Realtime Compute GetInstance (seed 004): fields, states, errors."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

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
