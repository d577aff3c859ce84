"""`POST /api/v1/lineage` driven by the real `openlineage-python` client (pinned in the lock
files): `OpenLineageClient` with its `HttpTransport`, api_key auth and gzip, at a live jobql in
uvicorn (`tests.rest.live`), on SQLite and PostgreSQL. What the mapping promises is read back
through GraphQL (compiled and reference strategies, compared by `tests.factories.execute`)."""

from __future__ import annotations

import asyncio
import copy
import gzip
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import RunState
from openlineage.client.facet_v2 import RunFacet
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)
from requests import HTTPError
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.storage import events
from tests.factories import execute
from tests.lineage.support import INSTANCE_QUERY, NAMESPACE, DagRun, body, iso
from tests.rest.live import live_app

WRITER, READER, SINGLE = "lineage-writer", "lineage-reader", "lineage-single"
SINGLE_WORKSPACE = f"lineage_single_{uuid.uuid4().hex[:8]}"


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKENS = json.dumps(
    [
        {"name": "w", "sha256": _sha(WRITER), "workspaces": ["*"], "scopes": ["read", "write"]},
        {"name": "r", "sha256": _sha(READER), "workspaces": ["*"], "scopes": ["read"]},
        {
            "name": "s",
            "sha256": _sha(SINGLE),
            "workspaces": [SINGLE_WORKSPACE],
            "scopes": ["write"],
        },
    ]
)


@pytest.fixture(scope="module")
def server(engine: AsyncEngine) -> Iterator[str]:
    with live_app(engine, tokens=TOKENS) as url:
        yield url


@pytest.fixture
def workspace() -> str:
    return f"lineage_{uuid.uuid4().hex[:12]}"


def ol_client(
    url: str, workspace: str | None, *, token: str = WRITER, compress: bool = False
) -> OpenLineageClient:
    config = HttpConfig(
        url=url,
        auth=ApiKeyTokenProvider({"apiKey": token}),
        custom_headers={"workspace": workspace} if workspace else {},
        compression=HttpCompression.GZIP if compress else None,
        retry={"total": 0},  # a refusal is the answer under test, not something to retry
    )
    return OpenLineageClient(transport=HttpTransport(config))


async def emit(client: OpenLineageClient, *items: Any) -> None:
    for item in items:
        await asyncio.to_thread(client.emit, item)


async def post(
    url: str, workspace: str, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    sent = {
        "authorization": f"Bearer {WRITER}",
        "workspace": workspace,
        "content-type": "application/json",
        **(headers or {}),
    }
    async with httpx.AsyncClient() as http:
        return await http.post(f"{url}/api/v1/lineage", content=content, headers=sent)


async def instances(engine: AsyncEngine, workspace: str, run_ids: list[str]) -> list[Any]:
    result = await execute(engine, INSTANCE_QUERY, {"runIds": run_ids}, workspace=workspace)
    assert result.errors is None, result.errors
    found: list[Any] = result.data["instances"]["nodes"]
    return found


async def stored_count(engine: AsyncEngine, workspace: str) -> int:
    document = "{ instances { totalCount } jobs { totalCount } }"
    result = await execute(engine, document, workspace=workspace)
    assert result.errors is None, result.errors
    return int(result.data["instances"]["totalCount"] + result.data["jobs"]["totalCount"])


async def test_a_dag_run_and_its_tasks(engine: AsyncEngine, server: str, workspace: str) -> None:
    run = DagRun("etl_daily")
    client = ol_client(server, workspace, compress=True)
    await emit(
        client,
        run.event(RunState.START, 10, nominal=0),
        run.task_event("extract", RunState.START, 11),
        run.task_event("extract", RunState.COMPLETE, 20),
        run.task_event("load", RunState.START, 21),
        run.task_event("load", RunState.RUNNING, 25),
    )
    (running,) = await instances(engine, workspace, [run.run_id])
    assert running["status"] == "RUNNING"
    assert running["endTime"] is None
    assert [(n["name"], n["status"]) for n in running["nodes"]["nodes"]] == [
        ("etl_daily.extract", "SUCCESS"),
        ("etl_daily.load", "RUNNING"),
    ]

    await emit(
        client,
        run.task_event("load", RunState.FAIL, 30, error="load: table missing"),
        run.event(RunState.FAIL, 31, error="task load failed"),
    )
    (done,) = await instances(engine, workspace, [run.run_id.upper()])  # any case
    assert done == {
        "instanceId": 1,
        "jobName": "etl_daily",
        "runId": run.run_id,
        "status": "FAIL",
        "instanceType": "GENERAL",
        "planTime": iso(0),
        "startTime": iso(10),
        "endTime": iso(31),
        "errorMessage": "task load failed",
        "job": {"name": "etl_daily", "namespace": NAMESPACE},
        "nodes": {
            "nodes": [
                {
                    "name": "etl_daily.extract",
                    "type": "AIRFLOW TASK",
                    "status": "SUCCESS",
                    "planTime": iso(11),
                    "startTime": iso(11),
                    "endTime": iso(20),
                    "retryTimes": 0,
                    "errorMessage": None,
                },
                {
                    "name": "etl_daily.load",
                    "type": "AIRFLOW TASK",
                    "status": "FAIL",
                    "planTime": iso(21),
                    "startTime": iso(21),
                    "endTime": iso(30),
                    "retryTimes": 0,
                    "errorMessage": "load: table missing",
                },
            ]
        },
    }
    facets = await execute(
        engine,
        "query ($r: [String!]) { instances(filter: {runIds: $r}) { nodes { lineageFacets } } }",
        {"r": [run.run_id]},
        workspace=workspace,
    )
    kept = facets.data["instances"]["nodes"][0]["lineageFacets"]
    assert kept["nominalTime"]["nominalStartTime"] == "2019-03-04T03:53:00+00:00"
    assert kept["errorMessage"]["message"] == "task load failed"


async def test_lifecycle_ids_and_replays(engine: AsyncEngine, server: str, workspace: str) -> None:
    first, second = DagRun("hourly"), DagRun("hourly")
    client = ol_client(server, workspace)
    await emit(client, first.event(RunState.START, 0), first.event(RunState.RUNNING, 5))
    await emit(client, second.event(RunState.START, 3600))
    await emit(client, first.event(RunState.COMPLETE, 60))
    found = {
        i["runId"]: i for i in await instances(engine, workspace, [first.run_id, second.run_id])
    }
    assert (found[first.run_id]["instanceId"], found[first.run_id]["status"]) == (1, "SUCCESS")
    assert (found[first.run_id]["startTime"], found[first.run_id]["endTime"]) == (iso(0), iso(60))
    assert found[first.run_id]["planTime"] == iso(0)  # no nominalTime: the first event's time
    assert (found[second.run_id]["instanceId"], found[second.run_id]["status"]) == (2, "RUNNING")

    # The same event again, and a late RUNNING after the end: nothing changes.
    for late in (first.event(RunState.COMPLETE, 60), first.event(RunState.RUNNING, 30)):
        answer = await post(server, workspace, json.dumps(body(late)).encode())
        assert answer.status_code == 201, answer.text
        assert answer.json()["outcome"] == "UNCHANGED" or late.eventType is RunState.RUNNING
    (after,) = await instances(engine, workspace, [first.run_id])
    assert after == found[first.run_id]
    # OTHER changes no status; ABORT ends as MANUAL_STOP.
    await emit(client, second.event(RunState.OTHER, 3700), second.event(RunState.ABORT, 3800))
    (aborted,) = await instances(engine, workspace, [second.run_id])
    assert (aborted["status"], aborted["endTime"]) == ("MANUAL_STOP", iso(3800))


async def test_every_event_reaches_the_event_log(
    engine: AsyncEngine, server: str, workspace: str
) -> None:
    run = DagRun("logged")
    _, newest = await events.bounds(engine)
    client = ol_client(server, workspace)
    await emit(client, run.event(RunState.START, 0), run.event(RunState.START, 0))
    await emit(client, run.task_event("a", RunState.START, 1), run.event(RunState.COMPLETE, 9))
    logged = await events.read_after(engine, newest, workspace=workspace)
    assert [(e.kind, e.status, e.job_name, e.vendor_instance_id) for e in logged] == [
        ("CREATED", "RUNNING", "logged", 1),
        ("UPDATED", "RUNNING", "logged", 1),  # its nodes changed
        ("STATUS_CHANGED", "SUCCESS", "logged", 1),
    ]


async def test_jobql_facet_names_the_instance(
    engine: AsyncEngine, server: str, workspace: str
) -> None:
    facet = RunFacet().with_additional_properties(
        workspace="a", instanceId=34766, instanceType="MANUAL", sourceApi="dlf", globalId="x"
    )
    run = DagRun("job_batch")
    client = ol_client(server, workspace)
    await emit(client, run.event(RunState.START, 0, extra={"jobql": facet}))
    await emit(client, run.event(RunState.COMPLETE, 5))  # without the facet: still that one
    (stored,) = await instances(engine, workspace, [run.run_id])
    assert (stored["instanceId"], stored["instanceType"], stored["status"]) == (
        34766,
        "MANUAL",
        "SUCCESS",
    )
    other = DagRun("job_batch")
    answer = await post(
        server,
        workspace,
        json.dumps(body(other.event(RunState.START, 9, extra={"jobql": facet}))).encode(),
    )
    assert answer.status_code == 409
    assert answer.json()["errors"][0]["extensions"]["field"] == "run.facets.jobql.instanceId"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for name in parents:
            target = target[name]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return change


_DELETE = object()
BAD_EVENTS = {
    "run.runId": _set("run.runId", "run-42"),
    "eventType": _set("eventType", "FINISHED"),
    "eventTime": _set("eventTime", _DELETE),
    "job.name": _set("job.name", _DELETE),
    "job.namespace": _set("job.namespace", 7),
    "run.facets.parent.run.runId": _set("run.facets.parent.run.runId", "nope"),
    "run.facets.errorMessage.message": _set("run.facets.errorMessage", {"stackTrace": "x"}),
}


@pytest.mark.parametrize("field", sorted(BAD_EVENTS))
async def test_bad_events_are_400_naming_the_field(
    engine: AsyncEngine, server: str, workspace: str, field: str
) -> None:
    run = DagRun("bad")
    good = body(run.task_event("t", RunState.FAIL, 1, error="x"))
    event = copy.deepcopy(good)
    BAD_EVENTS[field](event)
    answer = await post(server, workspace, json.dumps(event).encode())
    assert answer.status_code == 400, answer.text
    (error,) = answer.json()["errors"]
    assert error["extensions"] == {"code": "INVALID_EVENT", "field": field}
    assert field in error["message"]
    assert await stored_count(engine, workspace) == 0
    # The same event without the fault is taken.
    assert (await post(server, workspace, json.dumps(good).encode())).status_code == 201


async def test_bad_bodies_are_400(engine: AsyncEngine, server: str, workspace: str) -> None:
    good = json.dumps(body(DagRun("good").event(RunState.START, 0))).encode()
    naive = good.replace(b'+00:00"', b'"', 1)
    cases = [
        (b"{not json", {}, "body"),
        (b"[]", {}, "body"),
        (good, {"content-type": "text/plain"}, "Content-Type"),
        (good, {"content-encoding": "gzip"}, "body"),  # says gzip, is not
        (good, {"content-encoding": "br"}, "Content-Encoding"),
        (naive, {}, "eventTime"),
    ]
    for content, headers, field in cases:
        answer = await post(server, workspace, content, headers)
        assert answer.status_code == 400, (headers, answer.text)
        assert answer.json()["errors"][0]["extensions"]["field"] == field
    assert await stored_count(engine, workspace) == 0
    # Inflated past JOBQL_MAX_BODY_BYTES: 413, whatever its compressed size.
    bomb = gzip.compress(good[:-1] + b" " * 2_000_000 + b"}")
    answer = await post(server, workspace, bomb, {"content-encoding": "gzip"})
    assert answer.status_code == 413
    assert await stored_count(engine, workspace) == 0


async def test_tokens_and_workspaces(engine: AsyncEngine, server: str, workspace: str) -> None:
    run = DagRun("guarded")
    with pytest.raises(HTTPError) as refused:
        await emit(ol_client(server, workspace, token="wrong"), run.event(RunState.START, 0))
    assert refused.value.response.status_code == 401
    with pytest.raises(HTTPError) as forbidden:
        await emit(ol_client(server, workspace, token=READER), run.event(RunState.START, 0))
    assert forbidden.value.response.status_code == 403
    assert await stored_count(engine, workspace) == 0
    # A token of one workspace needs no header.
    await emit(ol_client(server, None, token=SINGLE), run.event(RunState.START, 0))
    assert len(await instances(engine, SINGLE_WORKSPACE, [run.run_id])) == 1
    assert await instances(engine, "default", [run.run_id]) == []
