"""Every example response of the seed pages imports unchanged, and GraphQL gives its values back.

Expected values are read from the example bodies themselves (not from the importer), field by
field: ids, statuses, times, node lists and facets.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.importers import parse_body
from jobql.resolvers.ingest import import_instances
from tests.factories import data_of, new_workspace
from tests.importers.support import example

INSTANCE_TYPES = {0: "GENERAL", 2: "MANUAL", 5: "PATCH_DATA", 6: "SUBJOB", 7: "ONE_OFF"}

DLF_FIELDS = """
  jobName jobInstanceName instanceId status planTime startTime endTime submitTime executeTime
  instanceType forceSuccess ignoreSuccess version job { name jobId workspace type }
"""
INSTANCE = f"""
query($job: String!, $id: Long!) {{
  instance(jobName: $job, instanceId: $id) {{
    {DLF_FIELDS}
    dispatch {{ triggerType timeType workerAddress executor progress result dataTime scheduleTime }}
    runtime {{
      actualState expectState apiType engineVersion clusterId queueName engineJobHandler code
      properties planJson packages inputDelay autoScaleParams lastErrorMessage lastErrorTime
      lastOperator lastOperateTime starter
    }}
    nodes {{ totalCount nodes {{ name type status planTime startTime endTime submitTime
      retryTimes inputRowCount speed logPath }} }}
  }}
}}
"""
LIST = """
query($job: String!) { instances(first: 1000, filter: {jobName: $job}) { nodes { instanceId } } }
"""


def ms(value: int | None) -> str | None:
    if value is None:
        return None
    moment = datetime.fromtimestamp(value / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value % 1000:03d}Z"


def dlf_status(text: str) -> str:
    return text.upper().replace("-", "_")


async def load(engine: AsyncEngine, name: str, workspace: str | None) -> str:
    body = parse_body(example(name), source=name, workspace=workspace)
    summary = await import_instances(engine, body.instances)
    assert summary.counts["rejected"] == 0, summary.rejected
    return body.instances[0].workspace


async def instance(engine: AsyncEngine, workspace: str, job: str, key: int) -> dict[str, Any]:
    data = await data_of(engine, INSTANCE, {"job": job, "id": key}, workspace=workspace)
    found: dict[str, Any] = data["instance"]
    return found


@pytest.mark.parametrize("name", ["000_example1.json", "000_example3.json", "001_example.json"])
async def test_dlf_instance_lists(engine: AsyncEngine, name: str) -> None:
    workspace = (await new_workspace(engine)).name
    await load(engine, name, workspace)
    raw = json.loads(example(name))
    snake = name.startswith("001")

    def get(item: dict[str, Any], camel: str, snake_name: str) -> Any:
        return item.get(snake_name if snake else camel)

    for item in raw["instances"]:
        job, key = get(item, "jobName", "job_name"), get(item, "instanceId", "instance_id")
        found = await instance(engine, workspace, job, key)
        expected_execute = get(item, "executeTime", "execute_time")
        if expected_execute is None:
            expected_execute = item.get("exeTime")
        assert found["jobName"] == job
        assert found["instanceId"] == key
        assert found["jobInstanceName"] == get(item, "jobInstanceName", "job_instance_name")
        assert found["status"] == dlf_status(item["status"])
        assert found["planTime"] == ms(get(item, "planTime", "plan_time"))
        assert found["startTime"] == ms(get(item, "startTime", "start_time"))
        assert found["endTime"] == ms(get(item, "endTime", "end_time"))
        assert found["submitTime"] == ms(get(item, "submitTime", "submit_time"))
        assert found["executeTime"] == expected_execute
        assert found["job"]["workspace"] == workspace
        if snake:
            assert found["instanceType"] == INSTANCE_TYPES[item["instance_type"]]
            assert found["forceSuccess"] is item["force_success"]
            assert found["ignoreSuccess"] is item["ignore_success"]
            assert found["version"] == item["version"]
            assert found["job"]["jobId"] == item["job_id"]
        else:
            assert found["instanceType"] == "GENERAL"  # the documented default
        assert found["dispatch"] is None
        assert found["runtime"] is None
    # The list comes back in the example's order (newest planned first).
    job = get(raw["instances"][0], "jobName", "job_name")
    listed = await data_of(engine, LIST, {"job": job}, workspace=workspace)
    assert [n["instanceId"] for n in listed["instances"]["nodes"]] == [
        get(item, "instanceId", "instance_id") for item in raw["instances"]
    ]


async def test_dlf_real_time_sub_job_example_links_once_the_parent_is_known(
    engine: AsyncEngine,
) -> None:
    workspace = (await new_workspace(engine)).name
    await load(engine, "000_example3.json", workspace)
    await data_of(
        engine,
        'mutation { upsertJobs(input: [{name: "job_sms", type: REALTIME}]) '
        "{ results { outcome } } }",
        workspace=workspace,
    )
    data = await data_of(
        engine,
        '{ job(name: "job_sms_DLI_SMS_PROCESS") { parent { name } parentNodeName } }',
        workspace=workspace,
    )
    assert data == {"job": {"parent": {"name": "job_sms"}, "parentNodeName": "DLI_SMS_PROCESS"}}


async def test_dlf_instance_detail_with_nodes(engine: AsyncEngine) -> None:
    workspace = (await new_workspace(engine)).name
    await load(engine, "003_example.json", workspace)
    raw = json.loads(example("003_example.json"))
    found = await instance(engine, workspace, raw["jobName"], raw["instanceId"])
    assert found["status"] == dlf_status(raw["status"])
    assert found["planTime"] == ms(raw["planTime"])
    assert found["startTime"] == ms(raw["startTime"])
    assert found["endTime"] == ms(raw["endTime"])
    assert found["executeTime"] == raw["executeTime"]
    assert found["nodes"]["totalCount"] == raw["total"]
    assert found["nodes"]["nodes"] == [
        {
            "name": node["nodeName"],
            "type": node["type"],
            "status": dlf_status(node["status"]),
            "planTime": ms(node.get("planTime")),
            "startTime": ms(node.get("startTime")),
            "endTime": ms(node.get("endTime")),
            "submitTime": ms(node.get("submitTime")),
            "retryTimes": node.get("retryTimes"),
            "inputRowCount": node.get("inputRowCount"),
            "speed": node.get("speed"),
            "logPath": node.get("logPath"),
        }
        for node in raw["nodes"]
    ]


@pytest.mark.parametrize("name", ["002_example.json", "002_example.xml"])
async def test_schedulerx_instance_list(engine: AsyncEngine, name: str) -> None:
    workspace = (await new_workspace(engine)).name
    await load(engine, name, workspace)
    detail = json.loads(example("002_example.json"))["Data"]["JobInstanceDetails"]
    found = await instance(engine, workspace, str(detail["JobId"]), detail["InstanceId"])
    local = "2020-07-27T11:52:10.000Z"  # the example's local times, read as UTC (the default)
    assert found["status"] == "SUCCESS"  # Status 4
    assert found["planTime"] == local  # ScheduleTime
    assert found["startTime"] == local
    assert found["endTime"] == local
    assert found["job"]["jobId"] == detail["JobId"]
    assert found["dispatch"] == {
        "triggerType": "API",  # 3
        "timeType": "CRON",  # 1
        "workerAddress": detail["WorkAddr"],
        "executor": detail["Executor"],
        "progress": detail["Progress"],
        "result": detail["Result"],
        "dataTime": local,
        "scheduleTime": local,
    }
    assert found["nodes"]["nodes"] == []


@pytest.mark.parametrize("name", ["004_example.json", "004_example.xml"])
async def test_realtime_compute_instance(engine: AsyncEngine, name: str) -> None:
    workspace = await load(engine, name, None)
    body = json.loads(example("004_example.json"))["Instance"]
    assert workspace == body["ProjectName"]
    found = await instance(engine, workspace, body["JobName"], body["Id"])
    assert found["status"] == "RUNNING"
    assert found["planTime"] == ms(body["StartTime"])
    assert found["startTime"] == ms(body["StartTime"])
    assert found["endTime"] is None
    assert found["job"]["type"] == "REALTIME"  # FLINK_STREAM
    runtime = found["runtime"]
    assert runtime == {
        "actualState": body["ActualState"],
        "expectState": body["ExpectState"],
        "apiType": body["ApiType"],
        "engineVersion": body["EngineVersion"],
        "clusterId": body["ClusterId"],
        "queueName": body["QueueName"],
        "engineJobHandler": body["EngineJobHandler"],
        "code": body["Code"],
        "properties": body["Properties"],
        "planJson": body["PlanJson"],
        "packages": body["Packages"].split(","),
        "inputDelay": body["InputDelay"],
        "autoScaleParams": body["AutoScaleParams"],
        "lastErrorMessage": None,
        "lastErrorTime": None,
        "lastOperator": body["LastOperator"],
        "lastOperateTime": ms(body["LastOperateTime"]),
        "starter": body["Starter"],
    }
