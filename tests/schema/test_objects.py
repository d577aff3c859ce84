"""Reading jobs, instances, nodes and facets, global ids and workspace confinement."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.storage.identifiers import encode_global_id
from tests.factories import (
    BASE_TIME,
    data_of,
    error_codes,
    execute,
    make_instance,
    make_job,
    make_nodes,
    new_workspace,
)

INSTANCE_DETAIL = """
query($job: String!, $id: Long!) {
  instance(jobName: $job, instanceId: $id) {
    id instanceId jobName jobInstanceName status instanceType planTime startTime endTime
    submitTime executeTime forceSuccess ignoreSuccess version durationMs
    job { id name jobId workspace type parent { name } parentNodeName }
    dispatch { triggerType timeType workerAddress executor progress result dataTime scheduleTime }
    runtime {
      actualState expectState apiType engineVersion clusterId queueName engineJobHandler code
      properties planJson packages inputDelay autoScaleParams lastErrorMessage lastErrorTime
      lastOperator lastOperateTime starter
    }
    nodes { totalCount nodes { id name type status planTime startTime endTime submitTime
      retryTimes inputRowCount speed logPath durationMs instance { instanceId } } }
  }
}
"""


@pytest.fixture(scope="module")
async def detail(engine: AsyncEngine) -> dict[str, Any]:
    workspace = await new_workspace(engine)
    parent = await make_job(engine, workspace, "job_sms", type="REALTIME")
    sub = await make_job(
        engine,
        workspace,
        "job_sms_DLI_SMS_PROCESS",
        parent_id=parent.id,
        parent_node_name="DLI_SMS_PROCESS",
        vendor_job_id=608627,
    )
    instance = await make_instance(
        engine,
        sub,
        vendor_instance_id=30654,
        status="FAIL",
        instance_type="SUBJOB",
        plan_time=BASE_TIME,
        start_time=BASE_TIME + timedelta(seconds=1),
        end_time=BASE_TIME + timedelta(seconds=61, milliseconds=500),
        submit_time=BASE_TIME - timedelta(hours=4),
        execute_time=1.0,
        version=3,
        dispatch_trigger_type="API",
        dispatch_time_type="CRON",
        dispatch_worker_address="192.168.0.0:16",
        dispatch_data_time=BASE_TIME,
        runtime_actual_state="FAILED",
        runtime_api_type="DATASTREAM",
        runtime_packages="a.jar, b.jar",
        runtime_input_delay=-99999999,
        runtime_auto_scale_params='{"isOnOff":false,"maxCU":null}',
    )
    await make_nodes(engine, instance, 2, log_path="obs://x", input_row_count=2**40, speed=1.5)
    return {"workspace": workspace, "parent": parent, "sub": sub, "instance": instance}


async def test_instance_detail_returns_every_field(
    engine: AsyncEngine, detail: dict[str, Any]
) -> None:
    data = await data_of(
        engine,
        INSTANCE_DETAIL,
        {"job": "job_sms_DLI_SMS_PROCESS", "id": 30654},
        workspace=detail["workspace"].name,
    )
    instance = data["instance"]
    assert instance["id"] == encode_global_id("Instance", detail["instance"].id)
    assert instance["status"] == "FAIL"
    assert instance["instanceType"] == "SUBJOB"
    assert instance["planTime"] == "2019-03-04T03:53:00.000Z"
    assert instance["endTime"] == "2019-03-04T03:54:01.500Z"
    assert instance["durationMs"] == 60_500
    assert instance["executeTime"] == 1.0
    assert instance["forceSuccess"] is False
    assert instance["version"] == 3
    assert instance["job"] == {
        "id": encode_global_id("Job", detail["sub"].id),
        "name": "job_sms_DLI_SMS_PROCESS",
        "jobId": 608627,
        "workspace": detail["workspace"].name,
        "type": "BATCH",
        "parent": {"name": "job_sms"},
        "parentNodeName": "DLI_SMS_PROCESS",
    }
    assert instance["dispatch"] == {
        "triggerType": "API",
        "timeType": "CRON",
        "workerAddress": "192.168.0.0:16",
        "executor": None,
        "progress": None,
        "result": None,
        "dataTime": "2019-03-04T03:53:00.000Z",
        "scheduleTime": None,
    }
    runtime = instance["runtime"]
    assert runtime["actualState"] == "FAILED"
    assert runtime["apiType"] == "DATASTREAM"
    assert runtime["packages"] == ["a.jar", "b.jar"]
    assert runtime["inputDelay"] == -99999999
    assert runtime["autoScaleParams"] == '{"isOnOff":false,"maxCU":null}'
    nodes = instance["nodes"]
    assert nodes["totalCount"] == 2
    assert [n["name"] for n in nodes["nodes"]] == ["node_0", "node_1"]
    assert nodes["nodes"][0]["inputRowCount"] == 2**40
    assert nodes["nodes"][0]["instance"] == {"instanceId": 30654}


async def test_facets_are_null_for_other_sources(engine: AsyncEngine) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace)
    await make_instance(engine, job, vendor_instance_id=7, runtime_packages="")
    data = await data_of(
        engine,
        "query($j: String!) { instance(jobName: $j, instanceId: 7) { dispatch { result } "
        "runtime { packages } } }",
        {"j": job.name},
        workspace=workspace.name,
    )
    assert data["instance"] == {"dispatch": None, "runtime": {"packages": []}}


async def test_job_lookup_filters_and_sub_jobs(engine: AsyncEngine, detail: dict[str, Any]) -> None:
    workspace = detail["workspace"].name
    data = await data_of(
        engine,
        """{ realtime: jobs(filter: {types: [REALTIME]}) { nodes { name } }
             subs: jobs(filter: {parentName: "job_sms"}) { nodes { name parent { name } } }
             prefix: jobs(filter: {nameStartsWith: "job_sms_"}) { totalCount }
             none: jobs(filter: {nameStartsWith: "%"}) { totalCount }
             job(name: "job_sms") { type instances { totalCount } } }""",
        workspace=workspace,
    )
    assert data["realtime"]["nodes"] == [{"name": "job_sms"}]
    assert data["subs"]["nodes"] == [
        {"name": "job_sms_DLI_SMS_PROCESS", "parent": {"name": "job_sms"}}
    ]
    assert data["prefix"]["totalCount"] == 1
    assert data["none"]["totalCount"] == 0  # LIKE wildcards in the prefix are literal
    assert data["job"] == {"type": "REALTIME", "instances": {"totalCount": 0}}


async def test_name_prefixes_match_case_exactly_on_both_databases(engine: AsyncEngine) -> None:
    workspace = await new_workspace(engine)
    for name in ("Etl_orders", "etl_users", "ETL", "etl_", "étl_x"):
        await make_job(engine, workspace, name)
    data = await data_of(
        engine,
        """{ lower: jobs(filter: {nameStartsWith: "etl"}) { nodes { name } }
             upper: jobs(filter: {nameStartsWith: "ETL"}) { nodes { name } }
             accent: jobs(filter: {nameStartsWith: "é"}) { nodes { name } }
             underscore: jobs(filter: {nameStartsWith: "etl_u"}) { nodes { name } } }""",
        workspace=workspace.name,
    )
    # SQLite's LIKE folds ASCII case; the prefix is compared exactly, as on PostgreSQL.
    assert data["lower"]["nodes"] == [{"name": "etl_"}, {"name": "etl_users"}]
    assert data["upper"]["nodes"] == [{"name": "ETL"}]
    assert data["accent"]["nodes"] == [{"name": "étl_x"}]
    assert data["underscore"]["nodes"] == [{"name": "etl_users"}]


async def test_jobs_page_by_name(engine: AsyncEngine) -> None:
    workspace = await new_workspace(engine)
    names = [f"j{n:02d}" for n in range(7)]
    for name in reversed(names):
        await make_job(engine, workspace, name)
    seen: list[str] = []
    after = None
    while True:
        data = await data_of(
            engine,
            "query($a: String) { jobs(first: 3, after: $a) { nodes { name } "
            "pageInfo { hasNextPage endCursor } } }",
            {"a": after},
            workspace=workspace.name,
        )
        seen += [n["name"] for n in data["jobs"]["nodes"]]
        if not data["jobs"]["pageInfo"]["hasNextPage"]:
            break
        after = data["jobs"]["pageInfo"]["endCursor"]
    assert seen == names


async def test_filters(engine: AsyncEngine) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "job_batch")
    other = await make_job(engine, workspace, "other")
    t = [BASE_TIME + timedelta(minutes=n) for n in range(4)]
    await make_instance(engine, job, vendor_instance_id=1, plan_time=t[0], status="FAIL")
    await make_instance(engine, job, vendor_instance_id=2, plan_time=t[1], instance_type="MANUAL")
    await make_instance(engine, job, vendor_instance_id=3, plan_time=t[2], force_success=True)
    await make_instance(engine, other, vendor_instance_id=4, plan_time=t[3], ignore_success=True)

    async def ids(filter_: dict[str, Any]) -> list[int]:
        data = await data_of(
            engine,
            "query($f: InstanceFilter) { instances(filter: $f) { nodes { instanceId } } }",
            {"f": filter_},
            workspace=workspace.name,
        )
        return sorted(n["instanceId"] for n in data["instances"]["nodes"])

    assert await ids({"jobName": "job_batch"}) == [1, 2, 3]
    assert await ids({"jobName": "nope"}) == []
    assert await ids({"statuses": ["FAIL"]}) == [1]
    assert await ids({"statuses": []}) == []
    assert await ids({"instanceTypes": ["MANUAL", "PATCH_DATA"]}) == [2]
    assert await ids({"forceSuccess": True}) == [3]
    assert await ids({"ignoreSuccess": True}) == [4]
    assert await ids({"ignoreSuccess": False, "jobName": "other"}) == []
    # Exclusive bounds, like minPlanTime/maxPlanTime; any offset is accepted.
    assert await ids({"planTimeAfter": "2019-03-04T03:53:00Z"}) == [2, 3, 4]
    assert await ids({"planTimeBefore": "2019-03-04T11:55:00+08:00"}) == [1, 2]
    assert await ids(
        {"planTimeAfter": "2019-03-04T03:53:00.000Z", "planTimeBefore": "2019-03-04T03:56:00Z"}
    ) == [2, 3]


async def test_global_ids_refetch_objects_of_the_workspace(
    engine: AsyncEngine, detail: dict[str, Any]
) -> None:
    workspace = detail["workspace"].name
    job_id = encode_global_id("Job", detail["sub"].id)
    instance_id = encode_global_id("Instance", detail["instance"].id)
    data = await data_of(
        engine,
        """query($ids: [ID!]!, $one: ID!) {
             node(id: $one) { __typename id ... on Job { name } }
             nodes(ids: $ids) { __typename id ... on Instance { instanceId } } }""",
        {"one": job_id, "ids": [instance_id, encode_global_id("Instance", 2**62), job_id]},
        workspace=workspace,
    )
    assert data["node"] == {"__typename": "Job", "id": job_id, "name": "job_sms_DLI_SMS_PROCESS"}
    assert data["nodes"] == [
        {"__typename": "Instance", "id": instance_id, "instanceId": 30654},
        None,
        {"__typename": "Job", "id": job_id},
    ]


async def test_foreign_objects_look_exactly_like_missing_ones(
    engine: AsyncEngine, detail: dict[str, Any]
) -> None:
    stranger = await new_workspace(engine)
    instance_id = encode_global_id("Instance", detail["instance"].id)
    missing_id = encode_global_id("Instance", 2**62)
    foreign = await execute(
        engine,
        "query($id: ID!) { node(id: $id) { id } "
        'instance(jobName: "job_sms_DLI_SMS_PROCESS", instanceId: 30654) { id } '
        'job(name: "job_sms") { id } }',
        {"id": instance_id},
        workspace=stranger.name,
    )
    missing = await execute(
        engine,
        "query($id: ID!) { node(id: $id) { id } "
        'instance(jobName: "job_sms_DLI_SMS_PROCESS", instanceId: 1) { id } '
        'job(name: "job_smz") { id } }',
        {"id": missing_id},
        workspace=stranger.name,
    )
    assert foreign.data == missing.data == {"node": None, "instance": None, "job": None}
    assert error_codes(foreign) == error_codes(missing) == ["NOT_FOUND", "NOT_FOUND"]
    listed = await data_of(
        engine,
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [instance_id]},
        workspace=stranger.name,
    )
    assert listed == {"nodes": [None]}
    counted = await data_of(
        engine, "{ instances { totalCount } jobs { totalCount } }", workspace=stranger.name
    )
    assert counted == {"instances": {"totalCount": 0}, "jobs": {"totalCount": 0}}


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("not base64!", "error"),
        ("", "error"),
        (encode_global_id("Instance", 1).rstrip("="), "error"),
        ("SW5zdGFuY2U=", "error"),  # "Instance": no key
        (encode_global_id("Nope", 1), "null"),
        ("SW5zdGFuY2U6YWJj", "null"),  # "Instance:abc"
        ("SW5zdGFuY2U6OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "null"),  # beyond 64 bits
    ],
)
async def test_malformed_global_ids(engine: AsyncEngine, text: str, result: str) -> None:
    outcome = await execute(engine, "query($id: ID!) { node(id: $id) { id } }", {"id": text})
    if result == "error":
        assert error_codes(outcome) == ["BAD_USER_INPUT"]
        assert outcome.data == {"node": None}
    else:
        assert outcome.errors is None
        assert outcome.data == {"node": None}


async def test_workspace_header_absent_means_default(engine: AsyncEngine) -> None:
    default = await new_workspace(engine, "default")
    job = await make_job(engine, default)
    await make_instance(engine, job, vendor_instance_id=424242)
    data = await data_of(
        engine, "query($j: String!) { job(name: $j) { workspace } }", {"j": job.name}
    )
    assert data == {"job": {"workspace": "default"}}
