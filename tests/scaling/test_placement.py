"""Workspaces on two PostgreSQL clusters (JOBQL_WORKSPACE_DATABASES), over real HTTP: what is
written for ws1 lands only in cluster A (the main database), ws2's only in cluster B; every
API answers as it does with one database; global ids, cursors and subscriptions work in both."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.clusters import Cluster, private_cluster
from tests.rest.live import live_app

pytestmark = pytest.mark.postgres

RECORD = """
mutation Record($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome } }
}
"""
# Everything a dashboard asks, without the row ids (each database numbers its own rows).
VIEW = """
{
  jobs(first: 10) { totalCount nodes { name } }
  instances(first: 10, orderBy: {field: PLAN_TIME, direction: ASC}) {
    totalCount
    countsByStatus { status count }
    nodes { jobName instanceId status planTime startTime endTime }
  }
  instanceStats(groupBy: [STATUS]) { status count successRate durationMs { p50 p95 max } }
}
"""
PAGE = """
query Page($after: String) {
  instances(first: 2, after: $after, orderBy: {field: PLAN_TIME, direction: ASC}) {
    pageInfo { endCursor hasNextPage }
    nodes { id instanceId }
  }
}
"""
NODE = "query One($id: ID!) { node(id: $id) { ... on Instance { instanceId jobName } } }"
EVENTS = "subscription { instanceEvents { kind instance { jobName instanceId } } }"
DLF_LIST = "/v1/any-project/jobs/instances/detail"


def _database(cluster: Cluster, name: str) -> str:
    cluster.psql(f'CREATE DATABASE "{name}"')
    url = cluster.url_for(name)
    migrated = subprocess.run(
        [sys.executable, "-m", "jobql", "migrate"],
        env={"JOBQL_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    return url


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    with private_cluster() as first, private_cluster() as second:
        yield first, second


def _items(job: str, count: int) -> list[dict[str, Any]]:
    statuses = ["SUCCESS", "FAIL", "RUNNING"]
    return [
        {
            "jobName": job,
            "instanceId": 100 + i,
            "status": statuses[i % 3],
            "planTime": f"2026-11-{1 + i:02d}T00:00:00Z",
            "startTime": f"2026-11-{1 + i:02d}T00:01:00Z",
            **({"endTime": f"2026-11-{1 + i:02d}T00:0{2 + i % 5}:00Z"} if i % 3 != 2 else {}),
        }
        for i in range(count)
    ]


def _lineage(workspace: str) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-11-20T00:05:00Z",
        "run": {"runId": str(uuid.uuid5(uuid.NAMESPACE_URL, workspace))},
        "job": {"namespace": "airflow", "name": "lineage_job"},
        "producer": "https://example.com/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def _write(http: httpx.Client, workspace: str, count: int) -> None:
    headers = {"workspace": workspace}
    written = http.post(
        "/graphql",
        json={"query": RECORD, "variables": {"input": _items(f"{workspace}_job", count)}},
        headers=headers,
    )
    assert written.status_code == 200, written.text
    assert "errors" not in written.json(), written.text
    posted = http.post("/api/v1/lineage", json=_lineage(workspace), headers=headers)
    assert posted.status_code == 201, posted.text


def _answers(http: httpx.Client, workspace: str) -> dict[str, Any]:
    headers = {"workspace": workspace}
    view = http.post("/graphql", json={"query": VIEW}, headers=headers).json()
    assert "errors" not in view, view
    listed = http.get(DLF_LIST, params={"jobName": f"{workspace}_job"}, headers=headers)
    assert listed.status_code == 200, listed.text
    return {"view": view["data"], "dlf": listed.json()}


def _rows(cluster: Cluster, database: str) -> dict[str, int]:
    text = cluster.psql(
        "SELECT w.name, count(i.id) FROM workspace w LEFT JOIN instance i "
        "ON i.workspace_id = w.id GROUP BY w.name ORDER BY w.name",
        database,
    )
    return {name: int(count) for name, count in (line.split("|") for line in text.splitlines())}


def test_each_workspace_lives_in_its_own_cluster_and_answers_as_with_one(
    clusters: tuple[Cluster, Cluster],
) -> None:
    first, second = clusters
    main = _database(first, "jobql_main")
    other = _database(second, "jobql_b")
    single = _database(first, "jobql_single")
    placed: dict[str, Any] = {}
    alone: dict[str, Any] = {}
    with (
        live_app(main, workspace_databases=(("ws2", other), ("team-*", other))) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        ready = http.get("/readyz").json()
        assert ready["status"] == "ok"
        assert ready["databases"] == [
            {
                "database": f"postgresql+asyncpg://postgres@127.0.0.1:{second.port}/jobql_b",
                "status": "ok",
            }
        ]
        for workspace, count in (("ws1", 5), ("ws2", 7), ("team-x", 2)):
            _write(http, workspace, count)
        for workspace in ("ws1", "ws2", "team-x"):
            placed[workspace] = _answers(http, workspace)

        # Global ids and cursors of ws2 (cluster B) work in ws2's requests.
        headers = {"workspace": "ws2"}
        first_page = http.post("/graphql", json={"query": PAGE}, headers=headers).json()
        page = first_page["data"]["instances"]
        assert page["pageInfo"]["hasNextPage"] is True
        one = page["nodes"][0]
        found = http.post(
            "/graphql", json={"query": NODE, "variables": {"id": one["id"]}}, headers=headers
        ).json()
        assert found["data"]["node"] == {"instanceId": one["instanceId"], "jobName": "ws2_job"}
        after = page["pageInfo"]["endCursor"]
        second_page = http.post(
            "/graphql", json={"query": PAGE, "variables": {"after": after}}, headers=headers
        ).json()
        assert [n["instanceId"] for n in second_page["data"]["instances"]["nodes"]] == [102, 103]

    assert _rows(first, "jobql_main") == {"ws1": 6}  # 5 recorded + 1 OpenLineage run
    assert _rows(second, "jobql_b") == {"team-x": 3, "ws2": 8}

    with (
        live_app(single) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        for workspace, count in (("ws1", 5), ("ws2", 7), ("team-x", 2)):
            _write(http, workspace, count)
        for workspace in ("ws1", "ws2", "team-x"):
            alone[workspace] = _answers(http, workspace)
    assert placed == alone
    assert placed["ws2"]["view"]["instances"]["totalCount"] == 8


async def test_subscriptions_follow_their_workspace_s_database(
    clusters: tuple[Cluster, Cluster],
) -> None:
    first, second = clusters
    main = _database(first, "jobql_live_main")
    other = _database(second, "jobql_live_b")
    with live_app(main, workspace_databases=(("ws2", other),), live_poll_interval=0.1) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=30) as client,
            client.stream(
                "POST",
                "/graphql/stream",
                json={"query": EVENTS},
                headers={"workspace": "ws2", "accept": "text/event-stream"},
            ) as stream,
        ):
            await asyncio.sleep(0.3)  # subscribed
            for workspace in ("ws1", "ws2"):
                items = _items(f"{workspace}_job", 1)
                written = await client.post(
                    "/graphql",
                    json={"query": RECORD, "variables": {"input": items}},
                    headers={"workspace": workspace},
                )
                assert "errors" not in written.json(), written.text
            event = await _next_event(stream)
    assert event == {"kind": "CREATED", "instance": {"jobName": "ws2_job", "instanceId": 100}}
    assert int(second.psql("SELECT count(*) FROM instance_event", "jobql_live_b")) == 1
    assert int(first.psql("SELECT count(*) FROM instance_event", "jobql_live_main")) == 1


async def _next_event(stream: httpx.Response) -> dict[str, Any]:
    async with asyncio.timeout(20):
        async for line in stream.aiter_lines():
            if line.startswith("data: {"):
                data = json.loads(line.removeprefix("data: "))
                return dict(data["data"]["instanceEvents"])
    raise AssertionError("the stream ended")


def test_a_workspace_database_that_is_away_costs_only_its_workspaces(
    clusters: tuple[Cluster, Cluster],
) -> None:
    first, second = clusters
    main = _database(first, "jobql_away_main")
    other = _database(second, "jobql_away_b")
    with (
        live_app(main, workspace_databases=(("ws2", other),)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        _write(http, "ws1", 2)
        _write(http, "ws2", 2)
        second.kill()
        try:
            # ws2's database is away: a clear 503 for its requests, none for ws1's.
            away = http.post("/graphql", json={"query": VIEW}, headers={"workspace": "ws2"})
            assert away.status_code == 503, away.text
            assert away.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert _answers(http, "ws1")["view"]["instances"]["totalCount"] == 3
            # The worker stays ready (ws1 is served); /readyz says which database is away.
            ready = http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert [d["status"] for d in ready.json()["databases"]] == ["unreachable"]
        finally:
            second.start()
        # Back: ws2 is served again without a restart.
        assert _answers(http, "ws2")["view"]["instances"]["totalCount"] == 3
        assert http.get("/readyz").json()["databases"][0]["status"] == "ok"
