"""The compiled strategy is not taught the statistics: a root field that selects one is served
by the reference strategy, whole, and answers exactly as the reference app does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from jobql.app import create_app
from jobql.schema.execution import FALLBACKS
from jobql.settings import Settings
from tests.stats.conftest import World

MIXED = """
query($filter: InstanceFilter, $window: StatsWindow) {
  instances(filter: $filter, first: 3) {
    totalCount
    countsByStatus { status count }
    pageInfo { hasNextPage endCursor }
    nodes {
      id instanceId status durationMs planTime
      job { name stats(window: $window) { count successRate durationMs { p50 p95 } } }
      nodes(first: 2) { totalCount countsByStatus { status count } nodes { name durationMs } }
      nodeStats(first: 2) { name runs failures durationMs { p50 p95 } }
    }
  }
  plain: instances(filter: $filter, first: 3) { totalCount nodes { instanceId durationMs } }
  instanceStats(filter: $filter, groupBy: [STATUS]) {
    status count successRate durationMs { min avg p50 p90 p95 p99 max } latenessMs { p50 p95 }
  }
  jobs { nodes { name instances(first: 1) { totalCount countsByStatus { status count } } } }
}
"""
VARIABLES = {
    "filter": {"planTimeAfter": "2019-03-01T00:00:00Z"},
    "window": {"planTimeAfter": "2019-03-04T00:00:00Z", "planTimeBefore": "2019-03-12T00:00:00Z"},
}


@pytest.fixture
async def apps(engine: AsyncEngine) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    url = engine.url.render_as_string(hide_password=False)
    made: dict[str, Starlette] = {
        "compiled": create_app(Settings(database_url=url, debug_strategy=True)),
        "reference": create_app(
            Settings(database_url=url, read_strategy="reference", debug_strategy=True)
        ),
    }
    clients = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
        )
        for name, app in made.items()
    }
    try:
        yield clients
    finally:
        for name, client in clients.items():
            await client.aclose()
            await made[name].state.engine.dispose()


async def post(client: httpx.AsyncClient, world: World) -> Any:
    response = await client.post(
        "/graphql",
        json={"query": MIXED, "variables": VARIABLES},
        headers={"workspace": world.workspace, "accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body


async def test_compiled_and_reference_apps_answer_alike(
    apps: dict[str, httpx.AsyncClient], world: World
) -> None:
    fallbacks = sum(FALLBACKS.values())
    expected = await post(apps["reference"], world)
    first = await post(apps["compiled"], world)
    second = await post(apps["compiled"], world)  # a document the fast path would know
    assert first["data"] == expected["data"] == second["data"]
    assert first["extensions"]["cost"] == expected["extensions"]["cost"]
    # A root field that selects a stats field goes the reference way; the others still compile.
    assert first["extensions"]["strategy"] == {
        "instances": "reference",
        "plain": "compiled",
        "jobs": "reference",
    }
    assert second["extensions"]["strategy"] == first["extensions"]["strategy"]
    assert sum(FALLBACKS.values()) == fallbacks  # no compiled statement failed
    data = expected["data"]
    assert data["instances"]["totalCount"] == 7
    assert sum(c["count"] for c in data["instances"]["countsByStatus"]) == 7
    assert [g["status"] for g in data["instanceStats"]] == ["WAITING", "RUNNING", "SUCCESS", "FAIL"]
