"""`Instance.jobName` in the compiled strategy: the statement returns the job's id and the server
names it from its database's job names (`jobql.storage.job_names`). A cold cache costs one more
statement, a warm one none; every compiled way to an instance gets its name right, in every
database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.app import create_app
from jobql.schema import create_schema
from jobql.settings import Settings
from jobql.storage import job_names, migrate
from jobql.storage.engine import Reader, create_engine
from jobql.storage.identifiers import encode_global_id
from jobql.storage.json_sql import BY_KEY, build_by_ids, read_by_ids
from jobql.storage.plan import JobName, ObjectPlan
from tests.factories import (
    execute,
    make_instance,
    make_job,
    make_nodes,
    new_workspace,
    reference_schema,
)

DASHBOARD = """
{ instances(first: 6, filter: {statuses: [FAIL, SUCCESS]}) {
    nodes { jobName instanceId nodes(first: 2) { nodes { name } } } } }
"""
NESTED = "{ jobs { nodes { name instances(first: 2) { nodes { instanceId jobName } } } } }"
DETAIL = '{ instance(jobName: "etl_b", instanceId: 3) { jobName instanceId } }'
NODE = "query One($id: ID!) { node(id: $id) { ... on Instance { jobName instanceId } } }"
NODES = "query Some($ids: [ID!]!) { nodes(ids: $ids) { ... on Instance { jobName } } }"


@pytest.fixture(autouse=True)
def cold(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's engine starts each test here with no job names known (a new `JobNames`,
    made at its first use, with the `CAPACITY` of then)."""
    database = Reader(engine).database
    if database in job_names._CACHES:
        monkeypatch.delitem(job_names._CACHES, database)


@pytest.fixture
async def workspace(engine: AsyncEngine) -> tuple[str, list[int]]:
    """Three jobs of two instances each (instance ids 1-6); the instances' row ids."""
    space = await new_workspace(engine)
    keys = []
    for n, name in enumerate(("etl_a", "etl_b", "etl_c")):
        job = await make_job(engine, space, name)
        for k in range(2):
            instance = await make_instance(
                engine, job, vendor_instance_id=2 * n + k + 1, status="FAIL" if k else "SUCCESS"
            )
            await make_nodes(engine, instance, 2)
            keys.append(instance.id)
    return space.name, keys


def _cases(keys: list[int]) -> list[tuple[str, dict[str, Any] | None]]:
    return [
        (DASHBOARD, None),
        (NESTED, None),
        (DETAIL, None),
        (NODE, {"id": encode_global_id("Instance", keys[3])}),
        (NODES, {"ids": [encode_global_id("Instance", key) for key in keys]}),
    ]


async def test_a_cold_cache_costs_one_statement_more_and_a_warm_one_none(
    engine: AsyncEngine, workspace: tuple[str, list[int]], statements: Any
) -> None:
    """Root connections, nested `Job.instances`, `instance(...)`, `node` and `nodes(ids:)`:
    `execute` checks every answer against the reference strategy's."""
    name, keys = workspace
    compiled = create_schema(report_strategy=True)
    for document, variables in _cases(keys):
        job_names._CACHES.pop(Reader(engine).database, None)
        expected = await execute(
            engine, document, variables, workspace=name, using=reference_schema
        )
        assert expected.errors is None, expected.errors
        assert "etl_b" in str(expected.data)
        for cold in (True, False):
            statements.reset()
            asked = await execute(engine, document, variables, workspace=name, using=compiled)
            assert set(asked.extensions["strategy"].values()) == {"compiled"}
            assert asked.data == expected.data
            assert statements.count == (2 if cold else 1), statements.statements
            assert not cold or _names_read(statements.statements[1])


def _names_read(sql: str) -> bool:
    return sql.startswith("SELECT job.id, job.name")


async def test_the_fast_path_reads_the_names_once_then_never(
    engine: AsyncEngine, workspace: tuple[str, list[int]], statements: Any
) -> None:
    """The fast path (on PostgreSQL straight to the driver): one statement once warm; a job
    created after that is named right, with one more statement once."""
    name, _ = workspace
    fast = create_schema(fast_path=True, report_strategy=True)
    first = await execute(engine, DASHBOARD, workspace=name, using=fast)  # learnt, names read
    statements.reset()
    again = await execute(engine, DASHBOARD, workspace=name, using=fast)
    assert again.data == first.data
    assert statements.count == 1, statements.statements
    space = await new_workspace(engine, name)
    late = await make_job(engine, space, "etl_late")
    await make_instance(engine, late, vendor_instance_id=99, status="FAIL")
    statements.reset()
    found = await execute(engine, DASHBOARD, workspace=name, using=fast)
    assert found.data["instances"]["nodes"][0]["jobName"] == "etl_late"
    assert statements.count == 2
    assert _names_read(statements.statements[1])
    statements.reset()
    assert await execute(engine, DASHBOARD, workspace=name, using=fast) == found
    assert statements.count == 1


async def test_the_subscriptions_compiled_reads_name_their_instances(
    engine: AsyncEngine, workspace: tuple[str, list[int]], statements: Any
) -> None:
    name, keys = workspace
    item = ObjectPlan("instance", (("jobName", JobName()),))
    by_ids = build_by_ids(item, dialect=engine.dialect.name, workspace=name, secret="s")
    for expected in (2, 1):
        reader = Reader(engine, hold=False)
        statements.reset()
        found = await read_by_ids(reader, by_ids, keys)
        await reader.close()
        assert statements.count == expected, statements.statements
        assert [found[key] for key in keys[1:4]] == [
            '{"jobName":"etl_a"}',
            '{"jobName":"etl_b"}',
            '{"jobName":"etl_b"}',
        ]


async def test_the_subscriptions_compiled_reads_are_planned_once_per_connection(
    engine: AsyncEngine, workspace: tuple[str, list[int]]
) -> None:
    """PostgreSQL: a batch's by-id read runs on a connection in `force_generic_plan`, so the
    statement is planned once, not again for each batch's keys as `auto` did (bench.live --top:
    planning cost several times the execution)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's plan cache")
    name, keys = workspace
    own = create_engine(engine.url.render_as_string(hide_password=False), pool_size=1)
    item = ObjectPlan("instance", (("jobName", JobName()),))
    by_ids = build_by_ids(item, dialect="postgresql", workspace=name, secret="s")
    try:
        for count in (1, 2, 3, 6, 1, 4, 5, 2):
            reader = Reader(own, hold=False)
            found = await read_by_ids(reader, by_ids, keys[:count])
            await reader.close()
            assert sorted(found) == sorted(keys[:count])
        sql = by_ids.driver["postgresql"]
        assert sql is not None
        [(generic, custom)] = await Reader(own).fetch_driver(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
            (sql[0],),
            settings=BY_KEY,
        )
    finally:
        await own.dispose()
    assert (generic, custom) == (8, 0)


async def test_a_page_with_more_jobs_than_the_cache_holds_is_named_right(
    engine: AsyncEngine,
    workspace: tuple[str, list[int]],
    statements: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The names read for a request are kept with it while it is shaped, whatever the bound
    drops; the database's names never exceed it."""
    monkeypatch.setattr(job_names, "CAPACITY", 2)
    name, _ = workspace
    compiled = create_schema()
    for _ in range(2):
        statements.reset()
        data = (await execute(engine, DASHBOARD, workspace=name, using=compiled)).data
        assert [node["jobName"] for node in data["instances"]["nodes"]] == [
            "etl_c", "etl_c", "etl_b", "etl_b", "etl_a", "etl_a"
        ]  # fmt: skip
        assert statements.count == 2  # three jobs, room for two: a miss every time
        assert len(job_names.of(Reader(engine))) == 2


def test_the_least_recently_used_names_make_room() -> None:
    names = job_names.JobNames(capacity=3)
    names.put({1: "a", 2: "b", 3: "c"})
    assert names.get(1) == "a"  # 1 is now the most recently used
    names.put({4: "d"})
    assert len(names) == 3
    assert 2 not in names
    assert [names.get(key) for key in (1, 3, 4)] == ["a", "c", "d"]
    names.put({5: "e", 6: "f", 7: "g", 8: "h"})
    assert len(names) == 3
    assert [key for key in range(1, 9) if key in names] == [6, 7, 8]


# -- two databases ---------------------------------------------------------------------------


@pytest.fixture
async def two_databases(tmp_path: Path) -> Settings:
    """ws1 in the main SQLite file, ws2 in another; each database numbers its jobs from 1, so
    the same job ids name different jobs in each."""
    urls = [f"sqlite+aiosqlite:///{tmp_path / name}.db" for name in ("main", "other")]
    for url, workspace in zip(urls, ("ws1", "ws2"), strict=True):
        engine = create_engine(url)
        await migrate.upgrade(engine)
        space = await new_workspace(engine, workspace)
        for n in range(2):
            job = await make_job(engine, space, f"{workspace}_job{n}")
            await make_instance(engine, job, vendor_instance_id=n + 1, status="FAIL")
        await engine.dispose()
    return Settings(database_url=urls[0], workspace_databases=(("ws2", urls[1]),), fast_path=True)


async def test_workspaces_in_two_databases_never_mix_names(two_databases: Settings) -> None:
    app = create_app(two_databases)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://jobql.test") as http:
            for _ in range(3):  # cold, learnt by the fast path, fast
                for workspace in ("ws1", "ws2", "ws1"):
                    response = await http.post(
                        "/graphql",
                        json={"query": "{ instances { nodes { jobName instanceId } } }"},
                        headers={"workspace": workspace},
                    )
                    assert response.status_code == 200, response.text
                    assert response.json()["data"]["instances"]["nodes"] == [
                        {"jobName": f"{workspace}_job1", "instanceId": 2},
                        {"jobName": f"{workspace}_job0", "instanceId": 1},
                    ]
    finally:
        await app.state.engine.dispose()
