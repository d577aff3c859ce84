"""Alibaba Cloud's own Python SDK for Realtime Compute against a live jobql, unchanged.

`aliyun-python-sdk-foas`'s `GetInstanceRequest` (2018-11-11) on `aliyun-python-sdk-core`'s
`AcsClient`, at the versions requirements-dev.lock pins, with the SDK's defaults and only what a
user must give: dummy keys, the endpoint (jobql) and plain http. jobql runs in uvicorn in a
thread (`tests.rest.live`), on each backend.

The SDK has no response models (it returns the body), so the model is the page's (seed 004):
every field it documents that jobql holds is in the reply with the page's type, in JSON and, with
`set_accept_format('XML')`, in XML. `do_action_with_exception` always asks for JSON (it sets the
format itself), so XML is what `do_action` / `get_response` get; the SDK marks both deprecated.
"""

from __future__ import annotations

import asyncio
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkfoas.request.v20181111.GetInstanceRequest import GetInstanceRequest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.importers import parse_body
from jobql.rest.formats import epoch_ms
from tests.factories import BASE_TIME, Ref, make_instance, make_job, new_workspace
from tests.rest.live import live_app

# Seed 004's `Instance` fields and the types it gives them (String, Long).
PAGE_FIELDS: dict[str, type] = {
    "ActualState": str,
    "ApiType": str,
    "AutoScaleParams": str,
    "ClusterId": str,
    "Code": str,
    "EndTime": int,
    "EngineJobHandler": str,
    "EngineVersion": str,
    "ExpectState": str,
    "Id": int,
    "InputDelay": int,
    "JobName": str,
    "JobType": str,
    "LastErrorMessage": str,
    "LastErrorTime": int,
    "LastOperateTime": int,
    "LastOperator": str,
    "Packages": str,
    "PlanJson": str,
    "ProjectName": str,
    "Properties": str,
    "QueueName": str,
    "StartTime": int,
    "Starter": str,
}
DEPRECATED_XML_CALLS = pytest.mark.filterwarnings(
    r"ignore:(do_action|implementation_of_do_action)\(\) method is deprecated:DeprecationWarning"
)

T = TypeVar("T")


def ms(seconds: int) -> int:
    value = epoch_ms(BASE_TIME + timedelta(seconds=seconds))
    assert value is not None
    return value


@pytest.fixture(scope="module")
def endpoint(engine: AsyncEngine) -> Iterator[str]:
    """`host:port`, as an Alibaba endpoint is given."""
    with live_app(engine) as url:
        yield urlsplit(url).netloc


def client() -> AcsClient:
    return AcsClient("dummy-access-key-id", "dummy-access-key-secret", "cn-hangzhou")


def get_instance(endpoint: str, project: str, job: str, instance: str) -> GetInstanceRequest:
    request = GetInstanceRequest()
    request.set_endpoint(endpoint)
    request.set_protocol_type("http")
    request.set_projectName(project)
    request.set_jobName(job)
    request.set_instanceId(instance)
    return request


async def call(method: Callable[[Any], T], request: Any) -> T:
    """One SDK call (its client blocks: in a thread, so the test's loop stays free)."""
    return await asyncio.to_thread(method, request)


async def stream_instance(engine: AsyncEngine) -> Ref:
    """A workspace whose streaming job `job1` has instance 412536 with every field of the page."""
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "job1", type="REALTIME")
    await make_instance(
        engine,
        job,
        vendor_instance_id=412536,
        status="FAIL",
        plan_time=BASE_TIME,
        start_time=BASE_TIME,
        end_time=BASE_TIME + timedelta(seconds=90),
        runtime_actual_state="FAILED",
        runtime_expect_state="RUNNING",
        runtime_api_type="DATASTREAM",
        runtime_engine_version="blink-3.4.4",
        runtime_cluster_id="rcmp9x37ztfb63g1x7lt****",
        runtime_queue_name="root.project1",
        runtime_engine_job_handler="application_1597654819348_0011|405a6d40d7f4f2618ed532359887d344",
        runtime_code="blink.main.class=Hbase_Demo.HbaseDemo\n--a <comment> & more",
        runtime_properties="blink.job.timeZone=Asia/Shanghai",
        runtime_plan_json="",
        runtime_packages="hbase_demo-1.0-snapshot-shaded.jar,other.jar",
        runtime_input_delay=-99999999,
        runtime_auto_scale_params='{"isOnOff":false,"strategyConfigure":null,"maxCU":null}',
        runtime_last_error_message="TaskManager lost",
        runtime_last_error_time=BASE_TIME + timedelta(seconds=80),
        runtime_last_operator="239960377092765296",
        runtime_last_operate_time=BASE_TIME - timedelta(seconds=1),
        runtime_starter="239960377092765296",
    )
    return workspace


def expected_instance(project: str) -> dict[str, Any]:
    return {
        "ActualState": "FAILED",
        "ApiType": "DATASTREAM",
        "AutoScaleParams": '{"isOnOff":false,"strategyConfigure":null,"maxCU":null}',
        "ClusterId": "rcmp9x37ztfb63g1x7lt****",
        "Code": "blink.main.class=Hbase_Demo.HbaseDemo\n--a <comment> & more",
        "EndTime": ms(90),
        "EngineJobHandler": "application_1597654819348_0011|405a6d40d7f4f2618ed532359887d344",
        "EngineVersion": "blink-3.4.4",
        "ExpectState": "RUNNING",
        "Id": 412536,
        "InputDelay": -99999999,
        "JobName": "job1",
        "JobType": "FLINK_STREAM",
        "LastErrorMessage": "TaskManager lost",
        "LastErrorTime": ms(80),
        "LastOperateTime": ms(-1),
        "LastOperator": "239960377092765296",
        "Packages": "hbase_demo-1.0-snapshot-shaded.jar,other.jar",
        "PlanJson": "",
        "ProjectName": project,
        "Properties": "blink.job.timeZone=Asia/Shanghai",
        "QueueName": "root.project1",
        "StartTime": ms(0),
        "Starter": "239960377092765296",
    }


async def test_get_instance_json_fills_every_field(engine: AsyncEngine, endpoint: str) -> None:
    workspace = await stream_instance(engine)
    request = get_instance(endpoint, workspace.name, "job1", "412536")
    body = json.loads(await call(client().do_action_with_exception, request))
    assert set(body) == {"RequestId", "Instance"}
    uuid.UUID(body["RequestId"])
    instance = body["Instance"]
    assert set(instance) == set(PAGE_FIELDS)
    for name, declared in PAGE_FIELDS.items():
        assert type(instance[name]) is declared, (name, instance[name])
    assert instance == expected_instance(workspace.name)


@DEPRECATED_XML_CALLS
async def test_get_instance_xml_fills_every_field(engine: AsyncEngine, endpoint: str) -> None:
    workspace = await stream_instance(engine)
    request = get_instance(endpoint, workspace.name, "job1", "412536")
    request.set_accept_format("XML")
    status, headers, body = await call(client().get_response, request)
    assert status == 200
    assert headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(body)
    assert root.tag == "GetInstanceResponse"
    assert [child.tag for child in root] == ["RequestId", "Instance"]
    assert root.findtext("RequestId") == headers["X-Request-Id"]
    instance = root.find("Instance")
    assert instance is not None
    got = {child.tag: child.text or "" for child in instance}
    assert set(got) == set(PAGE_FIELDS)
    for name, declared in PAGE_FIELDS.items():
        declared(got[name])  # a Long is digits
    assert got == {key: str(value) for key, value in expected_instance(workspace.name).items()}
    # What the SDK's do_action hands back is the same XML, and `jobql import` reads it as the
    # JSON reply.
    as_xml = await call(client().do_action, request)
    assert as_xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<GetInstanceResponse>')
    json_request = get_instance(endpoint, workspace.name, "job1", "412536")
    as_json = await call(client().do_action_with_exception, json_request)
    from_xml = parse_body(as_xml.decode(), source="xml").instances
    from_json = parse_body(as_json.decode(), source="json").instances
    assert [(r.values, r.job_values) for r in from_xml] == [
        (r.values, r.job_values) for r in from_json
    ]


@pytest.mark.parametrize(
    ("job", "instance", "status", "code"),
    [
        ("job1", "1", 404, "InvalidInstance.NotFound"),
        ("nobody", "412536", 404, "InvalidInstance.NotFound"),
        ("job1", "abc", 400, "InvalidParameter"),
    ],
)
async def test_get_instance_errors_are_server_exceptions(
    engine: AsyncEngine, endpoint: str, job: str, instance: str, status: int, code: str
) -> None:
    workspace = await stream_instance(engine)
    request = get_instance(endpoint, workspace.name, job, instance)
    with pytest.raises(ServerException) as raised:
        await call(client().do_action_with_exception, request)
    error = raised.value
    assert (error.get_http_status(), error.get_error_code()) == (status, code)
    assert error.get_error_msg()
    assert error.get_request_id()
    uuid.UUID(error.get_request_id())


@DEPRECATED_XML_CALLS
@pytest.mark.parametrize(
    ("instance", "status", "code"),
    [("1", 404, "InvalidInstance.NotFound"), ("abc", 400, "InvalidParameter")],
)
async def test_get_instance_errors_in_xml(
    engine: AsyncEngine, endpoint: str, instance: str, status: int, code: str
) -> None:
    workspace = await stream_instance(engine)
    request = get_instance(endpoint, workspace.name, "job1", instance)
    request.set_accept_format("XML")
    got_status, headers, body = await call(client().get_response, request)
    assert got_status == status
    assert headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(body)
    assert root.tag == "Error"
    assert root.findtext("Code") == code
    assert root.findtext("Message")
    assert root.findtext("RequestId") == headers["X-Request-Id"]
