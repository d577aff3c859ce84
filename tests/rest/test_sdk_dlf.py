"""Huawei Cloud's own Python SDKs against a live jobql: the clients people use, unchanged.

`huaweicloudsdkdgc`'s `DgcClient` (DLF v1: ListJobInstances, ShowJobInstance) and
`huaweicloudsdkdataartsstudio`'s `DataArtsStudioClient` (v2: ListFactoryJobInstancesByName), at
the versions requirements-dev.lock pins, built with the SDKs' defaults and only what a user must
give: `BasicCredentials` with a dummy AK/SK and a project id, and the endpoint (jobql, over plain
http). jobql runs in uvicorn in a thread (`tests.rest.live`), on each backend.

What is checked is what the SDK makes of jobql's replies: every field of its response models that
jobql holds comes back filled and of the type the model declares, and every error is the SDK's
own typed exception with DLF's error code and the reply's request id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkdataartsstudio.v1 import (
    DataArtsStudioClient,
    ListFactoryJobInstancesByNameRequest,
    ListFactoryJobInstancesByNameResponse,
)
from huaweicloudsdkdataartsstudio.v1 import JobInstance as StudioJobInstance
from huaweicloudsdkdgc.v1 import (
    DgcClient,
    JobInstance,
    ListJobInstancesRequest,
    ListJobInstancesResponse,
    NodeInstance,
    ShowJobInstanceRequest,
    ShowJobInstanceResponse,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.rest.formats import epoch_ms
from tests.factories import BASE_TIME, Ref, make_instance, make_job, make_nodes, new_workspace
from tests.rest.live import live_app

PROJECT_ID = "b384b9e9ab9b4ee8994c8633aabc9505"
JOB_ID = 608627
# The Python types of the models' `openapi_types` names.
DECLARED = {"str": str, "int": int, "bool": bool, "float": float}
# Model fields jobql does not hold, so never sends: a node's DLI queue.
NOT_HELD = {NodeInstance: {"queue"}}

T = TypeVar("T")


def ms(seconds: int) -> int:
    """BASE_TIME + `seconds`, in epoch ms."""
    value = epoch_ms(BASE_TIME + timedelta(seconds=seconds))
    assert value is not None
    return value


@pytest.fixture(scope="module")
def endpoint(engine: AsyncEngine) -> Iterator[str]:
    with live_app(engine) as url:
        yield url


def credentials() -> BasicCredentials:
    return BasicCredentials("dummy-ak", "dummy-sk", PROJECT_ID)


def dgc(endpoint: str) -> DgcClient:
    return DgcClient.new_builder().with_credentials(credentials()).with_endpoint(endpoint).build()


def studio(endpoint: str) -> DataArtsStudioClient:
    builder = DataArtsStudioClient.new_builder()
    return builder.with_credentials(credentials()).with_endpoint(endpoint).build()


async def call(method: Callable[[Any], T], request: Any) -> T:
    """One SDK call (its client blocks: in a thread, so the test's loop stays free)."""
    return await asyncio.to_thread(method, request)


async def refused(method: Callable[[Any], Any], request: Any) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as raised:
        await call(method, request)
    return raised.value


def assert_filled_as_declared(model: Any) -> None:
    """Every field of an SDK model that jobql holds is set, with the type the model declares
    (exactly: a bool is no int)."""
    skip = NOT_HELD.get(type(model), set())
    for name, declared in model.openapi_types.items():
        if name in skip:
            assert getattr(model, name) is None, name
            continue
        value = getattr(model, name)
        assert value is not None, f"{type(model).__name__}.{name} is not filled"
        if declared.startswith("list["):
            assert isinstance(value, list), name
            continue
        assert type(value) is DECLARED[declared], (name, declared, value)


def fields_of(model: Any) -> dict[str, Any]:
    """The fields an SDK model declares, with their values (a response's `to_dict()` is
    deprecated)."""
    return {name: getattr(model, name) for name in model.openapi_types}


def assert_error(error: ClientRequestException, status: int, code: str, message: str) -> None:
    assert (error.status_code, error.error_code, error.error_msg) == (status, code, message)
    assert error.request_id, "the reply carried no X-Request-Id"
    uuid.UUID(error.request_id)


async def sdk_data(engine: AsyncEngine) -> tuple[Ref, Ref]:
    """A workspace whose job `sdk_job` (source id 608627) has two instances with every field DLF
    knows, and nodes with every node field jobql keeps."""
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "sdk_job", vendor_job_id=JOB_ID)
    newest = await make_instance(
        engine,
        job,
        vendor_instance_id=34765,
        job_instance_name="sdk_job_0304",
        status="SUCCESS",
        instance_type="PATCH_DATA",
        plan_time=BASE_TIME + timedelta(seconds=60),
        start_time=BASE_TIME + timedelta(seconds=61),
        end_time=BASE_TIME + timedelta(seconds=79),
        submit_time=BASE_TIME,
        execute_time=18000.0,
        version=2,
        force_success=True,
        ignore_success=False,
        runtime_last_error_message="node error failed, forced to success",
    )
    await make_nodes(
        engine,
        newest,
        2,
        type="DWS SQL",
        status="SUCCESS",
        plan_time=BASE_TIME + timedelta(seconds=60),
        start_time=BASE_TIME + timedelta(seconds=62),
        end_time=BASE_TIME + timedelta(seconds=70),
        submit_time=BASE_TIME,
        retry_times=1,
        input_row_count=1200,
        speed=150.5,
        log_path="obs://dlf-log/sdk_job/error.job",
    )
    await make_instance(
        engine,
        job,
        vendor_instance_id=34764,
        job_instance_name="sdk_job_0303",
        status="FAIL",
        instance_type="MANUAL",
        plan_time=BASE_TIME,
        start_time=BASE_TIME + timedelta(seconds=1),
        end_time=BASE_TIME + timedelta(seconds=2),
        submit_time=BASE_TIME - timedelta(seconds=1),
        execute_time=1000.0,
        version=1,
        force_success=False,
        ignore_success=True,
        runtime_last_error_message="DWS SQL failed",
    )
    return workspace, job


# --- DLF v1 ListJobInstances (huaweicloudsdkdgc) ---


async def test_list_job_instances_fills_every_field(engine: AsyncEngine, endpoint: str) -> None:
    workspace, _job = await sdk_data(engine)
    request = ListJobInstancesRequest(workspace=workspace.name, job_name="sdk_job")
    response = await call(dgc(endpoint).list_job_instances, request)
    assert isinstance(response, ListJobInstancesResponse)
    assert response.status_code == 200
    assert response.total == 2
    newest, oldest = response.instances
    for item in response.instances:
        assert isinstance(item, JobInstance)
        assert_filled_as_declared(item)
    assert fields_of(newest) == {
        "job_name": "sdk_job",
        "status": "success",
        "plan_time": ms(60),
        "start_time": ms(61),
        "end_time": ms(79),
        "execute_time": 18000,
        "submit_time": ms(0),
        "instance_id": 34765,
        "job_id": JOB_ID,
        "job_instance_name": "sdk_job_0304",
        "instance_type": 5,
        "version": 2,
        "ignore_success": False,
        "force_success": True,
        "error_message": "node error failed, forced to success",
    }
    assert (oldest.instance_id, oldest.status, oldest.instance_type) == (34764, "fail", 2)
    assert (oldest.force_success, oldest.ignore_success, oldest.version) == (False, True, 1)


async def test_list_job_instances_filters_as_the_sdk_sends_them(
    engine: AsyncEngine, endpoint: str
) -> None:
    workspace, _job = await sdk_data(engine)
    client = dgc(endpoint)

    async def listed(**fields: Any) -> list[int]:
        request = ListJobInstancesRequest(workspace=workspace.name, **fields)
        response = await call(client.list_job_instances, request)
        return [item.instance_id for item in response.instances]

    assert await listed(instance_type="5") == [34765]
    assert await listed(instance_type="2") == [34764]
    assert await listed(instance_type="0") == []
    assert await listed(status="fail") == [34764]
    assert await listed(min_plan_time=ms(0), max_plan_time=ms(61)) == [34765]
    assert await listed(limit=1, offset=1) == [34764]
    assert await listed(job_name="sdk_job", precise_query=True) == [34765, 34764]


@pytest.mark.parametrize(
    "fields",
    [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"status": "done"}, {"instance_type": "1"}],
)
async def test_list_job_instances_refuses_a_bad_parameter(
    endpoint: str, fields: dict[str, Any]
) -> None:
    error = await refused(dgc(endpoint).list_job_instances, ListJobInstancesRequest(**fields))
    assert_error(error, 400, "DLF.3051", "The request parameter is invalid.")


# --- DLF v1 ShowJobInstance (huaweicloudsdkdgc) ---


async def test_show_job_instance_fills_every_field(engine: AsyncEngine, endpoint: str) -> None:
    workspace, _job = await sdk_data(engine)
    request = ShowJobInstanceRequest(
        workspace=workspace.name, job_name="sdk_job", instance_id="34765"
    )
    response = await call(dgc(endpoint).show_job_instance, request)
    assert isinstance(response, ShowJobInstanceResponse)
    assert_filled_as_declared(response)
    assert fields_of(response) | {"nodes": None} == {
        "job_name": "sdk_job",
        "instance_id": 34765,
        "status": "success",
        "plan_time": ms(60),
        "start_time": ms(61),
        "end_time": ms(79),
        "execute_time": 18000,
        "total": 2,
        "nodes": None,
        "instance_type": 5,
        "force_success": True,
        "ignore_success": False,
    }
    assert [node.node_name for node in response.nodes] == ["node_0", "node_1"]
    for node in response.nodes:
        assert isinstance(node, NodeInstance)
        assert_filled_as_declared(node)
    assert fields_of(response.nodes[0]) == {
        "node_name": "node_0",
        "status": "success",
        "queue": None,
        "plan_time": ms(60),
        "start_time": ms(62),
        "end_time": ms(70),
        "type": "DWS SQL",
        "retry_times": 1,
        "instance_id": 34765,
        "input_row_count": 1200,
        "speed": 150.5,
        "log_path": "obs://dlf-log/sdk_job/error.job",
    }


@pytest.mark.parametrize(
    ("job", "instance", "code", "message"),
    [
        ("sdk_job", "1", "DLF.0137", "Job instance does not exist."),
        ("nobody", "34765", "DLF.0137", "Job instance does not exist."),
        ("sdk_job", "abc", "DLF.3051", "The request parameter is invalid."),
    ],
)
async def test_show_job_instance_errors(
    engine: AsyncEngine, endpoint: str, job: str, instance: str, code: str, message: str
) -> None:
    workspace, _job = await sdk_data(engine)
    request = ShowJobInstanceRequest(workspace=workspace.name, job_name=job, instance_id=instance)
    error = await refused(dgc(endpoint).show_job_instance, request)
    assert_error(error, 400, code, message)


# --- DataArts Studio v2 ListFactoryJobInstancesByName (huaweicloudsdkdataartsstudio) ---

WINDOW = {"min_plan_time": ms(-3600), "max_plan_time": ms(3600)}


async def test_list_factory_job_instances_by_name_fills_every_field(
    engine: AsyncEngine, endpoint: str
) -> None:
    workspace, _job = await sdk_data(engine)
    request = ListFactoryJobInstancesByNameRequest(
        workspace=workspace.name, job_name="sdk_job", **WINDOW
    )
    response = await call(studio(endpoint).list_factory_job_instances_by_name, request)
    assert isinstance(response, ListFactoryJobInstancesByNameResponse)
    assert response.total == 2
    for item in response.instances:
        assert isinstance(item, StudioJobInstance)
        assert_filled_as_declared(item)
    assert fields_of(response.instances[0]) == {
        "job_name": "sdk_job",
        "status": "success",
        "job_instance_name": "sdk_job_0304",
        "plan_time": ms(60),
        "start_time": ms(61),
        "end_time": ms(79),
        "execute_time": 18000,
        "instance_id": 34765,
        "instance_type": 5,
        "submit_time": ms(0),
        "job_id": JOB_ID,
        "version": 2,
        "force_success": True,
        "ignore_success": False,
    }


async def test_list_factory_job_instances_by_name_filters(
    engine: AsyncEngine, endpoint: str
) -> None:
    workspace, _job = await sdk_data(engine)
    client = studio(endpoint)

    async def listed(**fields: Any) -> list[int]:
        request = ListFactoryJobInstancesByNameRequest(
            workspace=workspace.name, job_name="sdk_job", **WINDOW, **fields
        )
        response = await call(client.list_factory_job_instances_by_name, request)
        return [item.instance_id for item in response.instances]

    assert await listed(status="success", force_success=True) == [34765]
    assert await listed(status="success", ignore_success=True) == []
    assert await listed(instance_type="2") == [34764]
    assert await listed(limit=1, offset=1) == [34764]


@pytest.mark.parametrize(
    ("job", "fields", "code", "message"),
    [
        ("nobody", {}, "DLF.0100", "The job does not exists."),
        ("sdk_job", {"limit": 0}, "DLF.3051", "The request parameter is invalid."),
        ("sdk_job", {"instance_type": "3"}, "DLF.3051", "The request parameter is invalid."),
        (
            "sdk_job",
            {"min_plan_time": ms(0), "max_plan_time": ms(32 * 86400)},  # over one month
            "DLF.3051",
            "The request parameter is invalid.",
        ),
    ],
)
async def test_list_factory_job_instances_by_name_errors(
    engine: AsyncEngine,
    endpoint: str,
    job: str,
    fields: dict[str, Any],
    code: str,
    message: str,
) -> None:
    workspace, _job = await sdk_data(engine)
    request = ListFactoryJobInstancesByNameRequest(
        workspace=workspace.name, job_name=job, **{**WINDOW, **fields}
    )
    error = await refused(studio(endpoint).list_factory_job_instances_by_name, request)
    assert_error(error, 400, code, message)
