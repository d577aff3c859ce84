"""PostgreSQL's monthly partitions (docs/partitioning.md): created ahead, converted from an
unpartitioned database, pruned by EXPLAIN, dropped whole by prune. Each test has a database of
its own: dropping partitions would take other tests' rows."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.demo.seed import SeedPlan, reference_time, seed_database
from jobql.storage import migrate, partitions
from jobql.storage import prune as prune_module
from jobql.storage.engine import Reader
from jobql.storage.ingest import ItemResult, Outcome, write_instances
from jobql.storage.json_sql import BY_KEY, build_by_ids, read_by_ids
from jobql.storage.plan import Column, ObjectPlan
from jobql.storage.prune import prune
from jobql.storage.records import InstanceRecord
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.factories import (
    execute,
    make_instance,
    make_job,
    make_nodes,
    new_workspace,
    reference_schema,
)

JAN, FEB, MAR, APR = (2025, 1), (2025, 2), (2025, 3), (2025, 4)


@pytest.fixture
async def pg() -> AsyncIterator[AsyncEngine]:
    name, engine = await create_postgres_database()
    try:
        await migrate.upgrade(engine)
        yield engine
    finally:
        await engine.dispose()
        await drop_postgres_database(name)


async def where_rows_are(engine: AsyncEngine, table: str) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1")
        )
        return {name: int(count) for name, count in rows.all()}


async def test_months_are_created_once_and_take_their_rows_out_of_default(
    pg: AsyncEngine,
) -> None:
    job = await make_job(pg, await new_workspace(pg))
    early = await make_instance(pg, job, plan_time=datetime(2025, 2, 3, tzinfo=UTC))
    await make_nodes(pg, early, 3)
    assert await where_rows_are(pg, "instance") == {"instance_default": 1}

    async with pg.begin() as connection:
        created = await partitions.ensure_months(connection, JAN, MAR)
    assert [(c.month, c.created, c.moved) for c in created] == [
        (JAN, True, 0),
        (FEB, True, 1),
        (MAR, True, 0),
    ]
    assert await where_rows_are(pg, "instance") == {"instance_p2025_02": 1}
    assert await where_rows_are(pg, "instance_node") == {"instance_node_p2025_02": 3}

    async with pg.begin() as connection:
        again = await partitions.ensure_months(connection, JAN, APR)
    assert [(c.month, c.created) for c in again] == [
        (JAN, False),
        (FEB, False),
        (MAR, False),
        (APR, True),
    ]
    async with pg.connect() as connection:
        assert {JAN, FEB, MAR, APR} <= set(await partitions.months(connection))
        assert set(await partitions.months(connection, "instance_node")) >= {JAN, APR}


async def test_migrate_creates_this_month_and_three_ahead(pg: AsyncEngine) -> None:
    month = partitions.month_of(datetime.now(UTC))
    wanted = [month]
    for _ in range(3):
        wanted.append(partitions.next_month(wanted[-1]))
    async with pg.connect() as connection:
        assert set(wanted) <= set(await partitions.months(connection))


async def test_the_conversion_keeps_every_row_node_and_id_and_reports_progress() -> None:
    name, engine = await create_postgres_database()
    lines: list[str] = []
    try:
        await migrate.upgrade(engine, "0007")
        async with engine.begin() as connection:
            for statement in (
                "INSERT INTO workspace (id, name) VALUES (1, 'w')",
                "INSERT INTO job (id, workspace_id, name, type) "
                "SELECT g, 1, 'j' || g, 'BATCH' FROM generate_series(1, 10) g",
                # Every 3rd id taken (gaps), plan times over 14 months and one in the year 1990.
                "INSERT INTO instance (id, workspace_id, job_id, vendor_instance_id, status, "
                "instance_type, plan_time, force_success, ignore_success) "
                "SELECT 3 * g, 1, 1 + g % 10, g, 'SUCCESS', 'GENERAL', "
                "timestamptz '2025-01-01' + g * interval '7 minutes', false, false "
                "FROM generate_series(1, 60000) g",
                "UPDATE instance SET plan_time = '1990-01-01' WHERE id = 3",
                "INSERT INTO instance_node (id, workspace_id, instance_id, position, name, type, "
                "status) SELECT 2 * g, 1, 3 * (1 + (g - 1) / 3), (g - 1) % 3, 'n' || (g - 1) % 3, "
                "'Dummy', 'SUCCESS' FROM generate_series(1, 180000) g",
                "INSERT INTO emit_run_state (emitter, instance_id, node, state) "
                "VALUES ('e', 9, '', 'COMPLETE')",
                "SELECT setval('instance_id_seq', 180000)",
            ):
                await connection.execute(text(statement))
        before = await _fingerprint(engine)

        await migrate.upgrade(engine, progress=lines.append)

        assert await _fingerprint(engine) == before
        async with engine.connect() as connection:
            assert await partitions.is_partitioned(connection)
            misplaced = await connection.scalar(
                text(
                    "SELECT count(*) FROM instance_node n JOIN instance i ON i.id = n.instance_id "
                    "WHERE n.instance_plan_time <> i.plan_time"
                )
            )
            assert misplaced == 0
            assert await connection.scalar(text("SELECT count(*) FROM instance_key")) == 60000
            # The sequence goes on after the old ids.
            assert await connection.scalar(text("SELECT nextval('instance_id_seq')")) == 180001
        where = await where_rows_are(engine, "instance")
        assert where["instance_default"] == 1  # 1990: further back than monthly partitions go
        # g = 1 .. 6377 are planned in January, g = 1 (id 3) was moved to 1990.
        assert where["instance_p2025_01"] == (31 * 24 * 60 - 1) // 7 - 1
        assert any(line.startswith("instance_node: 50000/180000 rows") for line in lines)
        assert any(line.startswith("instance: 60000/60000 rows") for line in lines)
        assert lines[-1].startswith("partitioned: ")
    finally:
        await engine.dispose()
        await drop_postgres_database(name)


async def _fingerprint(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        return [
            (await connection.execute(text(statement))).one()
            for statement in (
                "SELECT count(*), sum(id), sum(vendor_instance_id), "
                "sum(extract(epoch FROM plan_time)) FROM instance",
                "SELECT count(*), sum(id), sum(instance_id), sum(position) FROM instance_node",
                "SELECT count(*), sum(instance_id) FROM emit_run_state",
            )
        ]


INSTANCES = """
query ($after: DateTime, $before: DateTime) {
  instances(first: 5, filter: { planTimeAfter: $after, planTimeBefore: $before }) {
    nodes { instanceId planTime nodes { nodes { name } } }
  }
}
"""


async def explain(engine: AsyncEngine, sql: str, args: Any) -> str:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        rows = await driver.fetch(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        value = rows[0][0]
        return json.dumps(json.loads(value) if isinstance(value, str | bytes) else value)


async def test_a_plan_time_window_reads_only_its_months(
    pg: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with pg.begin() as connection:
        await partitions.ensure_months(connection, JAN, APR)
    space = await new_workspace(pg)
    job = await make_job(pg, space)
    for month in (1, 2, 3, 4):
        instance = await make_instance(pg, job, plan_time=datetime(2025, month, 10, tzinfo=UTC))
        await make_nodes(pg, instance, 2)

    sent: list[tuple[str, Any]] = []
    straight = Reader.fetch_driver

    async def recorded(self: Reader, sql: str, args: Any, **options: Any) -> Any:
        sent.append((sql, args))
        return await straight(self, sql, args, **options)

    monkeypatch.setattr(Reader, "fetch_driver", recorded)

    def listener(_c: Any, _cur: Any, sql: str, params: Any, *_: Any) -> None:
        if "instance" in sql:
            sent.append((sql, params))

    event.listen(pg.sync_engine, "before_cursor_execute", listener)
    try:
        result = await execute(
            pg,
            INSTANCES,
            {"after": "2025-02-01T00:00:00.000Z", "before": "2025-02-28T00:00:00.000Z"},
            workspace=space.name,
        )
    finally:
        event.remove(pg.sync_engine, "before_cursor_execute", listener)
    assert not result.errors
    answer = result.data
    assert [i["planTime"] for i in answer["instances"]["nodes"]] == ["2025-02-10T00:00:00.000Z"]
    assert len(answer["instances"]["nodes"][0]["nodes"]["nodes"]) == 2
    plans = [await explain(pg, sql, args) for sql, args in sent if "$1" in sql]
    assert plans
    scanned = {p for plan in plans for p in _relations(plan) if p.startswith("instance_")}
    months = {p for p in scanned if p.startswith("instance_p")}
    print("partitions in the plans:", sorted(scanned))
    # The instances' partitions: February's only (the nodes' follow at run time, per instance).
    assert {m for m in months if m.startswith("instance_p")} <= {
        "instance_p2025_02",
        "instance_node_p2025_01",
        "instance_node_p2025_02",
        "instance_node_p2025_03",
        "instance_node_p2025_04",
        "instance_node_default",
    }
    assert "instance_p2025_02" in months
    assert not {"instance_p2025_01", "instance_p2025_03", "instance_default"} & scanned


def _relations(plan: str) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Relation Name" in node:
                found.add(node["Relation Name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(plan))
    return found


async def test_prune_drops_whole_old_months_and_keeps_the_cutoffs_month_after_it(
    pg: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prune_module, "FORGET_BATCH", 2)  # the keys' clean-up in several batches
    async with pg.begin() as connection:
        await partitions.ensure_months(connection, JAN, APR)
    space = await new_workspace(pg)
    job = await make_job(pg, space)
    plan_times = [
        datetime(2025, 1, 5, tzinfo=UTC),
        datetime(2025, 2, 27, tzinfo=UTC),
        datetime(2025, 3, 9, 23, 59, tzinfo=UTC),  # before the cutoff, in its month
        datetime(2025, 3, 10, tzinfo=UTC),  # at the cutoff: stays
        datetime(2025, 3, 20, tzinfo=UTC),
        datetime(2025, 4, 2, tzinfo=UTC),
    ]
    for plan_time in plan_times:
        await make_nodes(pg, await make_instance(pg, job, plan_time=plan_time), 2)

    cutoff = datetime(2025, 3, 10, tzinfo=UTC)
    report = await prune(pg, cutoff)

    assert report.dropped == [JAN, FEB]
    assert [(w.name, w.instances, w.nodes) for w in report.workspaces] == [(space.name, 3, 6)]
    async with pg.connect() as connection:
        assert set(await partitions.months(connection)) >= {MAR, APR}
        assert not {JAN, FEB} & set(await partitions.months(connection))
        assert not {JAN, FEB} & set(await partitions.months(connection, "instance_node"))
        left = await connection.execute(
            text("SELECT plan_time FROM instance WHERE workspace_id = :w ORDER BY plan_time"),
            {"w": space.id},
        )
        assert [row[0] for row in left.all()] == plan_times[3:]
        nodes = await connection.scalar(
            text("SELECT count(*) FROM instance_node WHERE workspace_id = :w"), {"w": space.id}
        )
        assert nodes == 6
        # The keys of what went are gone (the months dropped whole and the batch); the others
        # stay, with their places.
        keys = await connection.execute(
            text("SELECT plan_time FROM instance_key WHERE job_id = :job ORDER BY plan_time"),
            {"job": job.id},
        )
        assert [row[0] for row in keys.all()] == plan_times[3:]
    assert cutoff - timedelta(days=1) < plan_times[3]


async def test_a_month_is_created_after_the_writers_that_hold_keys_not_in_a_deadlock(
    pg: AsyncEngine,
) -> None:
    """Creating a month takes `instance_key`'s lock first (ATTACH needs it for the foreign key),
    in the writers' order: it waits for a writer holding a key, which can go on to write into
    DEFAULT (the month not created yet) without a deadlock."""
    async with pg.connect() as writer:
        await writer.begin()
        await writer.execute(
            text("INSERT INTO instance_key (job_id, vendor_instance_id) VALUES (1, 1)")
        )

        async def create() -> list[partitions.Created]:
            async with pg.begin() as connection:
                return await partitions.ensure_months(connection, (2031, 1), (2031, 1))

        creating = asyncio.create_task(create())
        async with pg.connect() as watcher:
            for _ in range(200):
                waiting = await watcher.scalar(
                    text(
                        "SELECT relation::regclass::text FROM pg_locks "
                        "WHERE NOT granted AND locktype = 'relation'"
                    )
                )
                if waiting is not None:
                    break
                await asyncio.sleep(0.05)
        assert waiting == "instance_key"
        assert not creating.done()
        # The writer goes on into DEFAULT, where the month's rows would be, and commits.
        await writer.execute(
            text(
                "SELECT count(*) FROM instance_default "
                "WHERE plan_time >= '2031-01-01Z' AND plan_time < '2031-02-01Z'"
            )
        )
        await writer.commit()
    assert [c.month for c in await asyncio.wait_for(creating, 30)] == [(2031, 1)]


# -- node partitions pruned per instance (EXPLAIN ANALYZE) ------------------------------------

NESTED = """
query ($after: DateTime, $before: DateTime) {
  instances(first: 50, filter: { planTimeAfter: $after, planTimeBefore: $before }) {
    nodes {
      planTime
      nodes(first: 20) { totalCount nodes { name instance { planTime } } }
      failed: nodes(statuses: [FAIL]) { totalCount }
    }
  }
}
"""
# countsByStatus is served the reference way only.
NESTED_COUNTS = NESTED.replace("totalCount }", "totalCount countsByStatus { status count } }")

STATS = """
query ($after: DateTime, $before: DateTime) {
  instanceStats(filter: { planTimeAfter: $after, planTimeBefore: $before }, groupBy: [JOB]) {
    count
  }
}
"""

NODE_STATS = """
query ($after: DateTime, $before: DateTime) {
  instances(first: 50, filter: { planTimeAfter: $after, planTimeBefore: $before }) {
    nodes { planTime nodeStats(first: 5) { name runs } }
  }
}
"""

SIX_MONTHS = [(2025, month) for month in range(1, 7)]


@pytest.fixture
async def six_months(pg: AsyncEngine) -> tuple[AsyncEngine, str]:
    """Three instances of two nodes in each month of 2025-01 .. 2025-06, one job."""
    async with pg.begin() as connection:
        await partitions.ensure_months(connection, SIX_MONTHS[0], SIX_MONTHS[-1])
    space = await new_workspace(pg)
    job = await make_job(pg, space)
    for _, month in SIX_MONTHS:
        for day in (3, 12, 21):
            plan_time = datetime(2025, month, day, tzinfo=UTC)
            instance = await make_instance(pg, job, plan_time=plan_time)
            await make_nodes(pg, instance, 2)
    async with pg.connect() as connection:
        await connection.execute(text("ANALYZE"))
    return pg, space.name


async def sent_statements(
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    document: str,
    variables: dict[str, Any],
    workspace: str,
    *,
    reference: bool = False,
) -> tuple[Any, list[tuple[str, Any]]]:
    """The answer and every statement (with its values) the request sent to PostgreSQL."""
    sent: list[tuple[str, Any]] = []
    straight = Reader.fetch_driver

    async def recorded(self: Reader, sql: str, args: Any, **options: Any) -> Any:
        sent.append((sql, args))
        return await straight(self, sql, args, **options)

    def listener(_c: Any, _cur: Any, sql: str, params: Any, *_: Any) -> None:
        sent.append((sql, params))

    with monkeypatch.context() as patched:
        patched.setattr(Reader, "fetch_driver", recorded)
        event.listen(engine.sync_engine, "before_cursor_execute", listener)
        try:
            result = await execute(
                engine,
                document,
                variables,
                workspace=workspace,
                using=reference_schema if reference else None,
            )
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", listener)
    assert not result.errors, result.errors
    return result.data, [(sql, args) for sql, args in sent if "instance" in sql]


async def executed_partitions(engine: AsyncEngine, sent: list[tuple[str, Any]]) -> dict[str, int]:
    """Per partition of `instance` or `instance_node`, how many times EXPLAIN ANALYZE of the
    statements ran a scan of it (0: in the plan but never executed, pruned at run time;
    partitions pruned when the plan was made or started are not in it at all)."""
    loops: dict[str, int] = {}
    for sql, args in sent:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            rows = await driver.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *(args or ()))
        value = rows[0][0]
        plan = json.loads(value) if isinstance(value, str | bytes) else value
        for node in plan_nodes(plan):
            name = node.get("Relation Name")
            if isinstance(name, str) and PARTITION.fullmatch(name):
                loops[name] = loops.get(name, 0) + int(node.get("Actual Loops", 0))
    print("scans per partition:", sorted(loops.items()))
    return loops


def plan_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every object of an EXPLAIN (FORMAT JSON) plan, depth first."""
    if isinstance(node, dict):
        yield node
        for item in node.values():
            yield from plan_nodes(item)
    elif isinstance(node, list):
        for item in node:
            yield from plan_nodes(item)


PARTITION = re.compile(r"instance(_node)?_(p\d{4}_\d{2}|default)")
FEBRUARY = {"after": "2025-02-01T00:00:00.000Z", "before": "2025-03-01T00:00:00.000Z"}


def ran(loops: dict[str, int], prefix: str) -> set[str]:
    return {name for name, count in loops.items() if count and name.startswith(prefix)}


@pytest.mark.parametrize("reference", [False, True], ids=["compiled", "reference"])
async def test_the_nodes_of_an_instance_are_read_from_its_months_partition_only(
    six_months: tuple[AsyncEngine, str], monkeypatch: pytest.MonkeyPatch, reference: bool
) -> None:
    engine, workspace = six_months
    answer, sent = await sent_statements(
        engine,
        monkeypatch,
        NESTED_COUNTS if reference else NESTED,
        FEBRUARY,
        workspace,
        reference=reference,
    )
    found = answer["instances"]["nodes"]
    assert [i["planTime"][:10] for i in found] == ["2025-02-21", "2025-02-12", "2025-02-03"]
    assert all(i["nodes"]["totalCount"] == 2 for i in found)
    assert {n["instance"]["planTime"] for i in found for n in i["nodes"]["nodes"]} == {
        i["planTime"] for i in found
    }
    if not reference:  # the compiled statement (the test's `execute` asks both strategies)
        sent = [(sql, args) for sql, args in sent if "json_build_array" in sql]
        assert len(sent) == 1
    loops = await executed_partitions(engine, sent)
    assert ran(loops, "instance_node_") == {"instance_node_p2025_02"}
    assert ran(loops, "instance_p") == {"instance_p2025_02"}
    if not reference:
        # The other months' node partitions are in the plan, pruned per instance at run time;
        # per instance one scan of its month's nodes for each of its three node subqueries
        # (the page, its totalCount, the failed ones' totalCount), never one per month.
        assert "instance_node_p2025_03" in loops
        assert loops["instance_node_p2025_02"] == 3 * 3


PAGE = """
query ($after: DateTime, $before: DateTime, $cursor: String) {
  instances(first: 2, after: $cursor, filter: { planTimeAfter: $after, planTimeBefore: $before }) {
    totalCount
    edges { cursor node { planTime } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
FROM = re.compile(r"\bFROM (instance(?:_p\d{4}_\d{2}|_default)?)\b")


async def page_tables(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, workspace: str, **variables: Any
) -> tuple[Any, set[str]]:
    """The page, and the tables of instances its compiled statement reads."""
    answer, sent = await sent_statements(
        engine, monkeypatch, PAGE, {"cursor": None, **variables}, workspace
    )
    [compiled] = [sql for sql, _ in sent if "json_build_array" in sql]
    return answer["instances"], set(FROM.findall(compiled))


def days(page: Any) -> list[str]:
    return [edge["node"]["planTime"][:10] for edge in page["edges"]]


async def test_a_window_within_one_month_reads_that_months_partition_only(
    six_months: tuple[AsyncEngine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Named in the statement, the month's partition is a plain table to PostgreSQL: its cached
    generic plan walks the index in order and stops at the page's end (docs/partitioning.md)."""
    engine, workspace = six_months
    page, tables = await page_tables(engine, monkeypatch, workspace, **FEBRUARY)
    assert (days(page), page["totalCount"], tables) == (
        ["2025-02-21", "2025-02-12"],
        3,
        {"instance_p2025_02"},
    )
    cursor = page["pageInfo"]["endCursor"]
    page, tables = await page_tables(engine, monkeypatch, workspace, **FEBRUARY, cursor=cursor)
    assert (days(page), page["pageInfo"]["hasNextPage"], tables) == (
        ["2025-02-03"],
        False,
        {"instance_p2025_02"},
    )
    # Bounds inside the month, and a bound that is the next month's first instant (exclusive).
    inside = {"after": "2025-02-05T00:00:00.000Z", "before": "2025-02-20T00:00:00.000Z"}
    page, tables = await page_tables(engine, monkeypatch, workspace, **inside)
    assert (days(page), tables) == (["2025-02-12"], {"instance_p2025_02"})
    # Two and three months: a page of each month's partition, then the page of those.
    wider = {"after": "2025-02-05T00:00:00.000Z", "before": "2025-03-05T00:00:00.000Z"}
    page, tables = await page_tables(engine, monkeypatch, workspace, **wider)
    assert (days(page), page["totalCount"], tables) == (
        ["2025-03-03", "2025-02-21"],
        3,
        {"instance_p2025_02", "instance_p2025_03"},
    )
    cursor = page["pageInfo"]["endCursor"]
    page, tables = await page_tables(engine, monkeypatch, workspace, **wider, cursor=cursor)
    assert (days(page), page["pageInfo"]["hasNextPage"]) == (["2025-02-12"], False)
    three = {"after": "2025-01-31T00:00:00.000Z", "before": "2025-04-01T00:00:00.000Z"}
    page, tables = await page_tables(engine, monkeypatch, workspace, **three)
    assert (days(page), page["totalCount"], tables) == (
        ["2025-03-21", "2025-03-12"],
        6,
        {"instance_p2025_01", "instance_p2025_02", "instance_p2025_03"},
    )
    # Four months: the partitioned table, which prunes the others.
    four = {"after": "2025-01-31T00:00:00.000Z", "before": "2025-04-05T00:00:00.000Z"}
    page, tables = await page_tables(engine, monkeypatch, workspace, **four)
    assert (days(page), page["totalCount"], tables) == (
        ["2025-04-03", "2025-03-21"],
        7,
        {"instance"},
    )
    # A month without partitions (its rows would be in DEFAULT): the partitioned table.
    august = {"after": "2025-08-01T00:00:00.000Z", "before": "2025-08-31T00:00:00.000Z"}
    page, tables = await page_tables(engine, monkeypatch, workspace, **august)
    assert (days(page), tables) == ([], {"instance"})


async def test_a_month_dropped_since_is_read_through_the_partitioned_table_again(
    six_months: tuple[AsyncEngine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The months a process knows are read from the catalog once; prune may drop one since. The
    read of it fails, the request is answered the other way, and the catalog read again."""
    engine, workspace = six_months
    page, tables = await page_tables(engine, monkeypatch, workspace, **FEBRUARY)
    assert (days(page), tables) == (["2025-02-21", "2025-02-12"], {"instance_p2025_02"})
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE instance_node_p2025_02"))
        await connection.execute(text("DROP TABLE instance_p2025_02"))
    result = await execute(engine, PAGE, {**FEBRUARY, "cursor": None}, workspace=workspace)
    assert not result.errors
    assert result.data["instances"]["edges"] == []
    page, tables = await page_tables(engine, monkeypatch, workspace, **FEBRUARY)
    assert (days(page), page["totalCount"], tables) == ([], 0, {"instance"})


async def test_instance_stats_of_a_window_read_only_its_months(
    six_months: tuple[AsyncEngine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served the reference way (statistics are not compiled)."""
    engine, workspace = six_months
    answer, sent = await sent_statements(engine, monkeypatch, STATS, FEBRUARY, workspace)
    assert [group["count"] for group in answer["instanceStats"]] == [3]
    loops = await executed_partitions(engine, sent)
    assert ran(loops, "instance_") == {"instance_p2025_02"}


async def test_node_stats_read_the_nodes_of_the_windows_months_only(
    six_months: tuple[AsyncEngine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served the reference way (statistics are not compiled)."""
    engine, workspace = six_months
    answer, sent = await sent_statements(
        engine,
        monkeypatch,
        NODE_STATS,
        {"after": "2025-03-20T00:00:00.000Z", "before": "2025-03-22T00:00:00.000Z"},
        workspace,
    )
    # The default window: the 30 days up to the instance's plan time (2025-02-19 .. 03-21):
    # 02-21, 03-03, 03-12 and 03-21.
    [found] = answer["instances"]["nodes"]
    assert [(n["name"], n["runs"]) for n in found["nodeStats"]] == [("node_0", 4), ("node_1", 4)]
    loops = await executed_partitions(engine, sent)
    assert ran(loops, "instance_node_") == {"instance_node_p2025_02", "instance_node_p2025_03"}
    assert ran(loops, "instance_p") == {"instance_p2025_02", "instance_p2025_03"}


async def test_seed_creates_the_months_of_its_data(pg: AsyncEngine) -> None:
    await seed_database(pg, SeedPlan(instances=2_000, workspaces=1, seed=3))
    for table in ("instance", "instance_node"):
        found = await where_rows_are(pg, table)
        assert sum(found.values()) >= 2_000
        assert f"{table}_default" not in found, found
    end = reference_time(3)
    async with pg.connect() as connection:
        made = set(await partitions.months(connection))
    assert {partitions.month_of(end - timedelta(days=89)), partitions.month_of(end)} <= made
    async with pg.connect() as connection:  # every instance's key row, saying where it is
        unplaced = await connection.scalar(
            text(
                "SELECT count(*) FROM instance i LEFT JOIN instance_key k USING (job_id, "
                "vendor_instance_id) WHERE k.instance_id IS DISTINCT FROM i.id "
                "OR k.plan_time IS DISTINCT FROM i.plan_time"
            )
        )
    assert unplaced == 0


@pytest.mark.parametrize(
    ("after", "before", "months"),
    [
        ("2025-02-01T00:00:00", "2025-03-01T00:00:00", [(2025, 2)]),
        ("2025-01-31T23:59:59", "2025-03-01T00:00:00", [(2025, 1), (2025, 2)]),
        ("2025-02-01T00:00:00", "2025-03-01T00:00:00.001", [(2025, 2), (2025, 3)]),
        ("2024-12-15T00:00:00", "2025-02-15T00:00:00", [(2024, 12), (2025, 1), (2025, 2)]),
        ("2024-12-15T00:00:00", "2025-03-15T00:00:00", None),
        ("2025-02-10T00:00:00", "2025-02-10T00:00:00", None),
    ],
)
def test_the_months_of_a_window(after: str, before: str, months: Any) -> None:
    def utc(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    found = partitions.within_months(utc(after), utc(before))
    assert (list(found) if found is not None else None) == months


async def test_a_batchs_instances_are_read_from_the_months_their_events_name(
    six_months: tuple[AsyncEngine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The subscriptions' by-id reads (`json_sql.read_by_ids` with the events' plan times): the
    keys of a month with partitions are read from it by name, one statement per month; a key not
    found there (its plan time moved since the event), a key of a month without partitions and
    a key of a month dropped since are read through the table. Always the same answer as
    without plan times."""
    engine, workspace = six_months
    async with engine.connect() as connection:
        rows = (
            await connection.execute(text("SELECT id, plan_time FROM instance ORDER BY plan_time"))
        ).all()
    plan_of = {key: time for key, time in rows}
    keys = sorted(plan_of)
    item = ObjectPlan("instance", (("instanceId", Column("vendor_instance_id", "int")),))
    by_ids = build_by_ids(item, dialect="postgresql", workspace=workspace, secret="s")
    sent: list[str] = []
    straight = Reader.fetch_driver

    async def recorded(self: Reader, sql: str, args: Any, **options: Any) -> Any:
        sent.append(sql)
        return await straight(self, sql, args, **options)

    monkeypatch.setattr(Reader, "fetch_driver", recorded)

    async def read(hints: dict[int, datetime] | None) -> tuple[dict[int, str], list[str]]:
        sent.clear()
        reader = Reader(engine, hold=False)
        try:
            found = await read_by_ids(reader, by_ids, keys, hints)
        finally:
            await reader.close()
        tables = [sorted(set(re.findall(r"FROM (instance\w*)", sql))) for sql in sent]
        return found, [name for names in tables for name in names]

    expected, tables = await read(None)
    assert len(expected) == 18
    assert tables == ["instance"]
    # Right months: one statement per month, each naming its partition.
    found, tables = await read(plan_of)
    assert found == expected
    assert tables == [partitions.partition_name("instance", m) for m in SIX_MONTHS]
    # Moved since: February's keys said to be of March are not found there, then are.
    february = [key for key in keys if plan_of[key].month == 2]
    moved = {**plan_of, **{key: datetime(2025, 3, 9, tzinfo=UTC) for key in february}}
    found, tables = await read(moved)
    assert found == expected
    assert tables.count("instance_p2025_03") == 1
    assert tables[-1] == "instance"
    assert "instance_p2025_02" not in tables
    # A month with no partitions: DEFAULT, where its rows are; one that is not there after all
    # (moved since) is read through the table.
    async with engine.begin() as connection:
        await connection.execute(  # every instance's key row first (models.InstanceKey)
            text(
                "INSERT INTO instance_key (job_id, vendor_instance_id) "
                "SELECT DISTINCT job_id, 999 FROM instance ON CONFLICT DO NOTHING"
            )
        )
        later_key = (
            await connection.execute(
                text(
                    "INSERT INTO instance (workspace_id, job_id, vendor_instance_id, status, "
                    "instance_type, plan_time, force_success, ignore_success) "
                    "SELECT workspace_id, job_id, 999, status, instance_type, "
                    "'2030-05-05T00:00:00Z', force_success, ignore_success "
                    "FROM instance LIMIT 1 RETURNING id"
                )
            )
        ).scalar_one()
    plan_of[later_key] = datetime(2030, 5, 5, tzinfo=UTC)
    keys.append(later_key)
    expected, _ = await read(None)
    assert later_key in expected
    found, tables = await read(plan_of)
    assert found == expected
    assert tables[-1] == "instance_default"
    moved_out = {**plan_of, keys[0]: datetime(2031, 1, 2, tzinfo=UTC)}
    found, tables = await read(moved_out)
    assert found == expected
    assert tables.count("instance_default") == 1
    assert tables[-1] == "instance"
    # A month dropped since the process learnt the catalog: its read fails, the keys are read
    # through the table (so nothing of another month is lost), the catalog is read again.
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE instance_node_p2025_06"))
        await connection.execute(text("DROP TABLE instance_p2025_06"))
    found, _ = await read(plan_of)
    assert found == {key: value for key, value in expected.items() if plan_of[key].month != 6}
    _, tables = await read(plan_of)
    assert "instance_p2025_06" not in tables


async def test_every_partition_has_a_unique_id_index_and_by_id_reads_use_it_before_analyze(
    pg: AsyncEngine,
) -> None:
    """Months made by the migration, by `ensure_months` and DEFAULT carry their own unique index
    of `id`. With it a by-id read's generic plan probes that index in a month analyzed while it
    was empty and filled since (a month just begun), where it used to walk the workspace index
    and filter 4,000 rows."""
    async with pg.begin() as connection:
        await partitions.ensure_months(connection, JAN, FEB)
    async with pg.connect() as connection:
        missing = (
            await connection.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent IN ('instance'::regclass, 'instance_node'::regclass) "
                    "AND NOT EXISTS (SELECT 1 FROM pg_indexes x WHERE x.tablename = c.relname "
                    "AND x.indexname = c.relname || '_id_key' AND x.indexdef LIKE '%UNIQUE%(id)')"
                )
            )
        ).all()
        count = await connection.scalar(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'instance'::regclass")
        )
    assert missing == []
    assert count >= 7  # JAN, FEB, this month and three ahead, DEFAULT
    space = await new_workspace(pg)
    job = await make_job(pg, space)
    await make_instance(pg, job, plan_time=datetime(2025, 1, 2, tzinfo=UTC))
    async with pg.connect() as connection:
        await connection.execute(text("ANALYZE"))  # January: one row; February: empty
    async with pg.begin() as connection:
        await connection.execute(  # every instance's key row first (models.InstanceKey)
            text(
                "INSERT INTO instance_key (job_id, vendor_instance_id) "
                "SELECT job_id, 1000000 + g FROM instance, generate_series(1, 4000) g"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO instance (workspace_id, job_id, vendor_instance_id, status, "
                "instance_type, plan_time, force_success, ignore_success) "
                "SELECT workspace_id, job_id, 1000000 + g, status, instance_type, "
                "'2025-02-03T00:00:00Z'::timestamptz + g * interval '1 second', "
                "force_success, ignore_success "
                "FROM instance, generate_series(1, 4000) g"
            )
        )
        keys = (
            (await connection.execute(text("SELECT id FROM instance_p2025_02 LIMIT 5")))
            .scalars()
            .all()
        )
    item = ObjectPlan("instance", (("instanceId", Column("vendor_instance_id", "int")),))
    by_ids = build_by_ids(item, dialect="postgresql", workspace=space.name, secret="s")
    reader = Reader(pg)
    template = reader.driver_template(by_ids.in_month(FEB), "ids")
    assert template is not None
    sql, args, at = template
    values = list(args)
    values[at] = list(keys)
    async with pg.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        for name, setting in BY_KEY:  # as `read_by_ids` runs it
            await driver.execute(f"SET {name} = {setting}")
        rows = await driver.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *values)
        await driver.execute("RESET ALL")
    value = rows[0][0]
    plan = json.loads(value) if isinstance(value, str | bytes) else value
    indexes: set[str] = set()
    removed: list[int] = []
    for node in plan_nodes(plan):
        if str(node.get("Index Name", "")).startswith("instance_p2025_02"):
            indexes.add(node["Index Name"])
        if node.get("Relation Name") == "instance_p2025_02":
            removed.append(int(node.get("Rows Removed by Filter", 0)))
    # The id's index (a plain or a bitmap scan of it), no row of the month read and dropped.
    assert indexes == {"instance_p2025_02_id_key"}
    assert removed == [0]


async def key_row(engine: AsyncEngine, workspace: str, vendor_id: int) -> tuple[Any, ...]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT k.instance_id, k.plan_time FROM instance_key k "
                    "JOIN job ON job.id = k.job_id JOIN workspace w ON w.id = job.workspace_id "
                    "WHERE w.name = :workspace AND k.vendor_instance_id = :vendor_id"
                ),
                {"workspace": workspace, "vendor_id": vendor_id},
            )
        ).one()
        return tuple(row)


async def written(
    engine: AsyncEngine, *records: InstanceRecord
) -> tuple[list[ItemResult], list[str]]:
    """The results of writing `records` in one transaction, with the statements it sent."""
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with engine.begin() as connection:
            return await write_instances(connection, list(records)), sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


def reads_of_instance(sent: list[str]) -> list[str]:
    """The statements that read `instance` (not its key, nodes or events)."""
    return [
        s for s in sent if s.lstrip().startswith("SELECT") and re.search(r"FROM instance\b(?!_)", s)
    ]


def report(instance_id: int, plan_time: datetime, **values: Any) -> InstanceRecord:
    return InstanceRecord(
        workspace="keys",
        job_name="job",
        instance_id=instance_id,
        values={"status": "RUNNING", "plan_time": plan_time, **values},
    )


async def test_a_writer_reads_an_instance_only_where_its_key_row_says_it_is(
    pg: AsyncEngine,
) -> None:
    """A new key is a new instance: nothing is read. An update reads the instance by id and plan
    time (one month's partition, pruned when planned); a moved plan time moves the key's place;
    a place that is wrong is corrected through the table, and no instance is written twice."""
    feb = datetime(2025, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    async with pg.begin() as connection:
        await partitions.ensure_months(connection, JAN, APR)

    results, sent = await written(pg, report(7, feb))
    assert results[0].outcome is Outcome.CREATED
    assert reads_of_instance(sent) == [], sent
    key = results[0].key
    assert await key_row(pg, "keys", 7) == (key, feb)

    results, sent = await written(pg, report(7, feb, start_time=feb))
    assert (results[0].outcome, results[0].key) == (Outcome.UPDATED, key)
    [read] = reads_of_instance(sent)
    assert "instance.plan_time = " in read
    assert "vendor_instance_id" not in read.split("WHERE")[1]
    async with pg.connect() as connection:
        plan = "\n".join(
            row[0]
            for row in await connection.execute(
                text("EXPLAIN SELECT * FROM instance WHERE id = :id AND plan_time = :plan_time"),
                {"id": key, "plan_time": feb},
            )
        )
    assert set(re.findall(r"on (instance_p\w+|instance_default)\b", plan)) == {
        "instance_p2025_02"
    }, plan

    # The plan time moves to March: the key follows it.
    mar = datetime(2025, 3, 9, tzinfo=UTC)
    results, _ = await written(pg, report(7, mar, start_time=mar))
    assert (results[0].outcome, results[0].key) == (Outcome.UPDATED, key)
    assert await key_row(pg, "keys", 7) == (key, mar)
    assert (await where_rows_are(pg, "instance")) == {"instance_p2025_03": 1}

    # A place that is wrong (not written by ingest): the table is read, the key corrected.
    async with pg.begin() as connection:
        await connection.execute(text("UPDATE instance_key SET plan_time = '2025-01-01Z'"))
    results, sent = await written(pg, report(7, mar, status="SUCCESS"))
    assert (results[0].outcome, results[0].key) == (Outcome.UPDATED, key)
    assert len(reads_of_instance(sent)) == 2  # where the key said, then through the table
    assert await key_row(pg, "keys", 7) == (key, mar)
    assert (await where_rows_are(pg, "instance")) == {"instance_p2025_03": 1}

    # Several at once: the stored one by its place, the new one not read.
    results, sent = await written(
        pg, report(7, mar, status="SUCCESS", end_time=mar), report(8, feb, status="SUCCESS")
    )
    assert [r.outcome for r in results] == [Outcome.UPDATED, Outcome.CREATED]
    [read] = reads_of_instance(sent)
    assert "instance.plan_time = " in read
    assert await key_row(pg, "keys", 8) == (results[1].key, feb)
    results, sent = await written(
        pg,
        report(7, mar, status="SUCCESS", end_time=feb),
        report(8, feb, status="SUCCESS", end_time=mar),
    )
    assert [r.outcome for r in results] == [Outcome.UPDATED, Outcome.UPDATED]
    [read] = reads_of_instance(sent)
    assert "instance.plan_time IN" in read


async def test_no_instance_is_stored_without_its_key_row(pg: AsyncEngine) -> None:
    space = await new_workspace(pg)
    job = await make_job(pg, space)
    await make_instance(pg, job, plan_time=datetime(2025, 1, 2, tzinfo=UTC))
    with pytest.raises(IntegrityError, match="fk_instance_job_id_instance_key"):
        async with pg.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO instance (workspace_id, job_id, vendor_instance_id, status, "
                    "instance_type, plan_time, force_success, ignore_success) "
                    "SELECT workspace_id, job_id, 123456, status, instance_type, plan_time, "
                    "force_success, ignore_success FROM instance"
                )
            )
