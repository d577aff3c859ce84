"""Faults: the database goes away and comes back, the pool runs dry, too many requests.

The database outage runs against a private PostgreSQL cluster (tests/clusters.py: initdb + pg_ctl
on a free port); the shared server on 5432 is never touched.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.app import create_app
from jobql.settings import Settings
from jobql.storage import migrate
from jobql.storage.engine import create_engine
from tests.clusters import Cluster, cluster_fixture  # noqa: F401 (the `cluster` fixture)

QUERY = {"query": "{ jobs { totalCount } }"}


async def _post(app: Any, body: dict[str, Any] = QUERY) -> tuple[httpx.Response, float]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        started = time.monotonic()
        response = await http.post("/graphql", json=body)
        return response, time.monotonic() - started


async def test_a_stopped_database_is_a_quick_503_and_recovery_needs_no_restart(
    cluster: Cluster,
) -> None:
    engine = create_engine(cluster.url)
    await migrate.upgrade(engine)
    await engine.dispose()
    app = create_app(Settings(database_url=cluster.url, pool_timeout=2.0))
    ok, _ = await _post(app)
    assert ok.json()["data"] == {"jobs": {"totalCount": 0}}

    await asyncio.to_thread(cluster.stop)
    down, took = await _post(app)
    assert down.status_code == 503, down.text
    assert [e["extensions"]["code"] for e in down.json()["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert "Traceback" not in down.text
    assert took < 5

    await asyncio.to_thread(cluster.start)
    again, _ = await _post(app)
    assert again.status_code == 200
    assert again.json()["data"] == {"jobs": {"totalCount": 0}}
    await app.state.engine.dispose()


async def test_an_exhausted_pool_is_a_quick_503_not_a_hang(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no connection pool limit to exhaust")
    app = create_app(
        Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            pool_size=1,
            pool_timeout=0.5,
        )
    )
    async with app.state.engine.connect():  # the only connection, held by someone else
        response, took = await _post(app)
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert took < 3
    after, _ = await _post(app)
    assert after.status_code == 200
    await app.state.engine.dispose()


async def test_past_the_concurrency_limit_requests_get_a_fast_503(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobql.storage import jobs, json_sql

    def slowed(real: Any) -> Any:
        async def slow(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(1.0)
            return await real(*args, **kwargs)

        return slow

    # Both read strategies: the loader-based resolvers and the compiled statement.
    monkeypatch.setattr(jobs, "count_jobs", slowed(jobs.count_jobs))
    monkeypatch.setattr(json_sql, "read_json", slowed(json_sql.read_json))
    app = create_app(
        Settings(database_url=engine.url.render_as_string(hide_password=False), max_concurrency=1)
    )

    async def later() -> tuple[httpx.Response, float]:
        await asyncio.sleep(0.2)  # while the first one is still in flight
        return await _post(app)

    (first, _), (second, _) = await asyncio.gather(_post(app), later())
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 503]
    shed = first if first.status_code == 503 else second
    assert shed.headers["retry-after"] == "1"
    assert shed.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert (
        await httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
        ).get("/healthz")
    ).status_code == 200
    await app.state.engine.dispose()
