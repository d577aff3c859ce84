"""upsertJobs and recordInstances: per-item outcomes and userErrors, one transaction."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.resolvers.context import RequestContext
from jobql.schema import schema
from jobql.settings import DEFAULT_CURSOR_SECRET
from jobql.storage.identifiers import CursorCodec
from tests.factories import data_of, error_codes, execute, new_workspace

RECORD = """
mutation Record($input: [InstanceInput!]!, $createJobs: Boolean! = true) {
  recordInstances(input: $input, createJobs: $createJobs) {
    results { index outcome userErrors { code field message }
              instance { instanceId status endTime nodes { nodes { name status } } } }
  }
}
"""
UPSERT_JOBS = """
mutation Jobs($input: [JobInput!]!) {
  upsertJobs(input: $input) {
    results { index outcome userErrors { code field }
              job { name type jobId parent { name } parentNodeName } }
  }
}
"""


def report(instance_id: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "jobName": "job_batch",
        "instanceId": instance_id,
        "status": "RUNNING",
        "planTime": "2019-03-04T03:53:00Z",
        **fields,
    }


async def record(engine: AsyncEngine, workspace: str, *items: dict[str, Any], **extra: Any) -> Any:
    data = await data_of(engine, RECORD, {"input": list(items), **extra}, workspace=workspace)
    return data["recordInstances"]["results"]


async def test_record_replay_and_stale(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    nodes = [{"name": "load", "type": "Shell", "status": "SUCCESS"}]
    (created,) = await record(engine, ws, report(status="SUCCESS", nodes=nodes))
    assert created["outcome"] == "CREATED"
    assert created["instance"] == {
        "instanceId": 1,
        "status": "SUCCESS",
        "endTime": None,
        "nodes": {"nodes": [{"name": "load", "status": "SUCCESS"}]},
    }
    (replayed,) = await record(engine, ws, report(status="SUCCESS", nodes=nodes))
    assert replayed["outcome"] == "UNCHANGED"
    (stale,) = await record(engine, ws, report(status="RUNNING"))
    assert stale["outcome"] == "STALE"
    assert stale["instance"]["status"] == "SUCCESS"


async def test_invalid_items_are_reported_and_the_rest_lands(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    results = await record(
        engine,
        ws,
        report(1),
        report(2, startTime="2019-03-04T04:00:00Z", endTime="2019-03-04T03:00:00Z"),
        report(1, status="FAIL"),
        {"jobName": "job_batch", "instanceId": 3, "status": "FAIL"},
    )
    assert [r["outcome"] for r in results] == ["CREATED", None, None, None]
    assert results[1]["userErrors"][0]["field"] == ["input", "1", "endTime"]
    assert results[1]["userErrors"][0]["code"] == "INVALID_VALUE"
    assert results[2]["userErrors"][0]["code"] == "DUPLICATE_KEY"
    assert results[3]["userErrors"][0] == {
        "code": "MISSING_FIELD",
        "field": ["input", "3", "planTime"],
        "message": "A new instance needs plan_time; input[3] has none.",
    }
    count = await data_of(engine, "{ instances { totalCount } }", workspace=ws)
    assert count == {"instances": {"totalCount": 1}}


async def test_batches_over_the_limit_write_nothing(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    result = await execute(
        engine, RECORD, {"input": [report(n) for n in range(1, 1002)]}, workspace=ws
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result.data == {"recordInstances": None}
    count = await data_of(engine, "{ instances { totalCount } }", workspace=ws)
    assert count == {"instances": {"totalCount": 0}}


async def test_unknown_jobs_with_create_jobs_off(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    (result,) = await record(engine, ws, report(), createJobs=False)
    assert result["userErrors"][0]["code"] == "UNKNOWN_JOB"
    await data_of(engine, UPSERT_JOBS, {"input": [{"name": "job_batch"}]}, workspace=ws)
    (result,) = await record(engine, ws, report(), createJobs=False)
    assert result["outcome"] == "CREATED"


async def test_upsert_jobs_links_sub_jobs(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    data = await data_of(
        engine,
        UPSERT_JOBS,
        {
            "input": [
                {"name": "job_sms", "jobId": 608627},
                {"name": "job_sms_DLI_SMS_PROCESS", "parentName": "job_sms"},
                {"name": "orphan", "parentName": "nobody"},
            ]
        },
        workspace=ws,
    )
    created, sub, orphan = data["upsertJobs"]["results"]
    assert created["outcome"] == "CREATED"
    assert sub["job"] == {
        "name": "job_sms_DLI_SMS_PROCESS",
        "type": "BATCH",
        "jobId": None,
        "parent": {"name": "job_sms"},
        "parentNodeName": "DLI_SMS_PROCESS",
    }
    assert orphan["userErrors"] == [
        {"code": "UNKNOWN_PARENT", "field": ["input", "2", "parentName"]}
    ]
    parent = await data_of(engine, '{ job(name: "job_sms") { type jobId } }', workspace=ws)
    assert parent == {"job": {"type": "REALTIME", "jobId": 608627}}
    assert orphan["outcome"] is None
    missing = await execute(engine, '{ job(name: "orphan") { name } }', workspace=ws)
    assert missing.data == {"job": None}


async def test_writes_need_the_write_scope(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    context = RequestContext.open(engine, CursorCodec(DEFAULT_CURSOR_SECRET), ws)
    context.scopes = frozenset({"read"})
    try:
        result = await schema.execute(
            RECORD, variable_values={"input": [report()]}, context_value=context
        )
    finally:
        await context.close()
    assert error_codes(result) == ["FORBIDDEN"]
    count = await data_of(engine, "{ instances { totalCount } }", workspace=ws)
    assert count == {"instances": {"totalCount": 0}}


@pytest.mark.parametrize(
    "variables",
    [
        {"input": [report(startTime="2019-03-04T03:53:00.0001Z")]},
        {"input": [report(status="DONE")]},
        {"input": [report(instanceId="12")]},
    ],
)
async def test_bad_values_are_bad_user_input(engine: AsyncEngine, variables: Any) -> None:
    result = await execute(engine, RECORD, variables)
    assert error_codes(result) == ["BAD_USER_INPUT"]


def timeline(instance_id: int, final: str) -> list[dict[str, Any]]:
    """Three full reports of one run, each with its report time."""
    steps = [("WAITING", None, None), ("RUNNING", "04:00", None), (final, "04:00", "04:30")]
    return [
        report(
            instance_id,
            status=status,
            reportedAt=f"2019-03-04T05:0{minute}:00Z",
            startTime=start and f"2019-03-04T{start}:00Z",
            endTime=end and f"2019-03-04T{end}:00Z",
            nodes=[{"name": "step", "type": "Shell", "status": "SUCCESS" if end else "RUNNING"}],
        )
        for minute, (status, start, end) in enumerate(steps)
    ]


STATE = """{ instances(first: 100, orderBy: {field: INSTANCE_ID, direction: ASC}) {
  nodes { instanceId status startTime endTime nodes { nodes { name status } } } } }"""


async def test_a_feed_in_any_order_and_replayed_ends_in_the_same_state(engine: AsyncEngine) -> None:
    import random

    feed = [item for n in range(1, 13) for item in timeline(n, "SUCCESS" if n % 3 else "FAIL")]
    in_order, shuffled = (await new_workspace(engine)).name, (await new_workspace(engine)).name
    for item in feed:
        await record(engine, in_order, item)
    mixed = feed[:]
    random.Random(7).shuffle(mixed)
    outcomes = []
    for item in mixed:
        outcomes += [r["outcome"] for r in await record(engine, shuffled, item)]
    assert "STALE" in outcomes  # the shuffle did deliver older reports late
    expected = await data_of(engine, STATE, workspace=in_order)
    assert await data_of(engine, STATE, workspace=shuffled) == expected
    assert {i["status"] for i in expected["instances"]["nodes"]} == {"SUCCESS", "FAIL"}
    # Replaying the whole feed changes nothing.
    replayed = [r["outcome"] for item in feed for r in await record(engine, in_order, item)]
    assert set(replayed) <= {"UNCHANGED", "STALE"}
    assert await data_of(engine, STATE, workspace=in_order) == expected
