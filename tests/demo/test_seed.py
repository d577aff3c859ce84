"""`seed_database`: the plan's counts, reproducible data, and data that looks like the sources'."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.demo import seed
from jobql.demo.seed import SeedPlan, SeedResult, reference_time, seed_database
from jobql.storage.engine import create_engine
from jobql.storage.enums import InstanceStatus, InstanceType, JobType, NodeStatus
from jobql.storage.models import Base, Instance, InstanceNode, Job, Workspace

PG_ADMIN_URL = os.environ.get(
    "JOBQL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]
FULL_PLAN = SeedPlan(instances=5_000, seed=7)
SMALL_PLAN = SeedPlan(instances=400, workspaces=2, seed=3)

MakeEngine = Callable[[], Awaitable[AsyncEngine]]


def _postgres_unavailable(reason: str) -> None:
    message = f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({reason})"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


async def _admin(sql: str) -> None:
    admin = create_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await admin.dispose()


@asynccontextmanager
async def _fresh_databases(backend: str, tmp_path: Path) -> AsyncIterator[MakeEngine]:
    """Make empty databases (tables from the models) of one backend; drop them afterwards."""
    engines: list[AsyncEngine] = []
    scratch: list[str] = []

    async def make() -> AsyncEngine:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / f'seed{len(engines)}.db'}"
        else:
            name = f"seedtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            try:
                await _admin(f'CREATE DATABASE "{name}"')
            except Exception as exc:  # any failure to create one means "not available"
                _postgres_unavailable(str(exc).splitlines()[0])
            scratch.append(name)
            url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        engine = create_engine(url)
        engines.append(engine)
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        return engine

    try:
        yield make
    finally:
        for engine in engines:
            await engine.dispose()
        for name in scratch:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
async def make_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeEngine]:
    async with _fresh_databases(request.param, tmp_path) as make:
        yield make


@pytest.fixture
async def engine(make_engine: MakeEngine) -> AsyncEngine:
    """An empty database of each backend, for this test alone (seeding writes every workspace)."""
    return await make_engine()


class Seeded:
    def __init__(self, engine: AsyncEngine, result: SeedResult, calls: list[tuple[int, int]]):
        self.engine = engine
        self.result = result
        self.progress = calls

    async def rows(self, statement: Any) -> list[Any]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(statement)).all())


@pytest.fixture(scope="module", params=BACKENDS)
async def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Seeded]:
    """One database per backend seeded with FULL_PLAN, shared by the read-only tests."""
    async with _fresh_databases(request.param, tmp_path_factory.mktemp("seeded")) as make:
        yield await _seed(await make(), FULL_PLAN)


async def _seed(engine: AsyncEngine, plan: SeedPlan) -> Seeded:
    calls: list[tuple[int, int]] = []
    result = await seed_database(engine, plan, lambda done, total: calls.append((done, total)))
    return Seeded(engine, result, calls)


async def _count(engine: AsyncEngine, model: Any) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(model))).scalar_one())


async def _dump(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    async with engine.connect() as connection:
        return {
            model.__tablename__: [
                tuple(row)
                for row in await connection.execute(select(model.__table__).order_by(model.id))
            ]
            for model in (Workspace, Job, Instance, InstanceNode)
        }


# --- counts and reproducibility ---------------------------------------------------------------


async def test_counts_match_the_plan(engine: AsyncEngine) -> None:
    result = await seed_database(engine, SMALL_PLAN)

    assert result.workspaces == 2
    assert result.jobs == SMALL_PLAN.job_count == 8  # at least 4 per workspace
    assert result.instances == 400
    assert await _count(engine, Job) == result.jobs
    assert await _count(engine, Instance) == 400
    assert await _count(engine, InstanceNode) == result.nodes
    async with engine.connect() as connection:
        names = (await connection.execute(select(Workspace.name).order_by(Workspace.id))).scalars()
        assert list(names) == ["default", "ws1"]
        per_workspace = {
            workspace_id: count
            for workspace_id, count in await connection.execute(
                select(Job.workspace_id, func.count()).group_by(Job.workspace_id)
            )
        }
    assert sorted(per_workspace.values()) == [4, 4]


async def test_explicit_job_count_is_the_total_with_sub_jobs(engine: AsyncEngine) -> None:
    result = await seed_database(engine, SeedPlan(instances=300, jobs=25, workspaces=3, seed=1))

    assert result.jobs == 25
    assert await _count(engine, Job) == 25


async def test_same_seed_gives_identical_rows_whatever_the_batch_size(
    make_engine: MakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await make_engine(), await make_engine()
    await seed_database(first, SMALL_PLAN)
    monkeypatch.setattr(seed, "BATCH_SQLITE", seed.BLOCK)
    monkeypatch.setattr(seed, "BATCH_POSTGRESQL", seed.BLOCK)
    await seed_database(second, SMALL_PLAN)

    assert await _dump(first) == await _dump(second)


async def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    dumps = []
    for seed_value in (3, 4):
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / f'{seed_value}.db'}")
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
            await seed_database(engine, SeedPlan(instances=50, workspaces=1, seed=seed_value))
            dumps.append(await _dump(engine))
        finally:
            await engine.dispose()

    assert dumps[0]["job"] != dumps[1]["job"]
    assert dumps[0]["instance"] != dumps[1]["instance"]


@pytest.mark.postgres
async def test_postgresql_and_sqlite_hold_the_same_data(tmp_path: Path) -> None:
    async with (
        _fresh_databases("postgresql", tmp_path) as make_pg,
        _fresh_databases("sqlite", tmp_path) as make_sqlite,
    ):
        pg_engine, sqlite_engine = await make_pg(), await make_sqlite()
        await seed_database(pg_engine, SMALL_PLAN)
        await seed_database(sqlite_engine, SMALL_PLAN)
        assert await _dump(pg_engine) == await _dump(sqlite_engine)


async def test_seeding_twice_appends_new_jobs_and_later_inserts_still_work(
    engine: AsyncEngine,
) -> None:
    first = await seed_database(engine, SMALL_PLAN)
    second = await seed_database(engine, SMALL_PLAN)

    assert await _count(engine, Workspace) == 2  # reused by name
    assert await _count(engine, Job) == first.jobs + second.jobs
    assert await _count(engine, Instance) == 800
    assert await _count(engine, InstanceNode) == first.nodes + second.nodes
    async with engine.begin() as connection:
        names = list((await connection.execute(select(Job.name))).scalars())
        # Numbered names, and a numbered real-time job keeps its sub-jobs' names aligned.
        assert any(name.endswith("_2") for name in names)
        realtime = (
            await connection.execute(
                select(Job.name, Job.id).where(Job.type == JobType.REALTIME.name)
            )
        ).all()
        assert any(name[-1].isdigit() for name, _ in realtime)
        # Sequences (PostgreSQL) and rowids (SQLite) continue after the seeded ids.
        new_id = (
            await connection.execute(insert(Workspace).values(name="after").returning(Workspace.id))
        ).scalar_one()
        assert new_id == 3


async def test_existing_workspace_is_reused(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(Workspace), [{"id": 41, "name": "ws1"}])

    await seed_database(engine, SMALL_PLAN)

    async with engine.connect() as connection:
        workspaces = {
            name: id_
            for name, id_ in await connection.execute(select(Workspace.name, Workspace.id))
        }
        assert workspaces == {"ws1": 41, "default": 42}
        ws1_jobs = (
            await connection.execute(select(func.count()).where(Job.workspace_id == 41))
        ).scalar_one()
    assert ws1_jobs == 4


async def test_empty_plan_creates_workspaces_and_jobs_only(engine: AsyncEngine) -> None:
    calls: list[tuple[int, int]] = []
    result = await seed_database(
        engine, SeedPlan(instances=0, workspaces=1), lambda *a: calls.append(a)
    )

    assert (result.instances, result.nodes, result.jobs) == (0, 0, 4)
    assert calls == [(0, 0)]


def test_plan_is_validated() -> None:
    with pytest.raises(ValueError, match="instances"):
        SeedPlan(instances=-1)
    with pytest.raises(ValueError, match="workspaces"):
        SeedPlan(workspaces=0)
    with pytest.raises(ValueError, match="jobs"):
        SeedPlan(jobs=0)
    assert SeedPlan(instances=1_000_000).job_count == 20_000
    assert SeedPlan(instances=10, workspaces=3).job_count == 12


# --- what the data looks like (one database per backend, seeded once) --------------------------


async def test_progress_reaches_the_total(seeded: Seeded) -> None:
    assert seeded.progress[0] == (0, 5_000)
    assert seeded.progress[-1] == (5_000, 5_000)
    done = [call[0] for call in seeded.progress]
    assert done == sorted(done)
    assert all(total == 5_000 for _, total in seeded.progress)


async def test_every_status_and_instance_type_occurs_mostly_success_and_general(
    seeded: Seeded,
) -> None:
    statuses = Counter(status for (status,) in await seeded.rows(select(Instance.status)))
    types = Counter(kind for (kind,) in await seeded.rows(select(Instance.instance_type)))

    assert set(statuses) == {member.name for member in InstanceStatus}
    assert set(types) == {member.name for member in InstanceType}
    assert statuses.most_common(1)[0][0] == InstanceStatus.SUCCESS.name
    assert statuses[InstanceStatus.SUCCESS.name] > 0.7 * 5_000
    assert statuses[InstanceStatus.FAIL.name] > statuses[InstanceStatus.PAUSE.name]
    assert types.most_common(1)[0][0] == InstanceType.GENERAL.name


async def test_nodes_per_instance_are_1_to_30_with_a_mean_near_10(seeded: Seeded) -> None:
    counts = [
        n
        for (n,) in await seeded.rows(
            select(func.count()).select_from(InstanceNode).group_by(InstanceNode.instance_id)
        )
    ]

    assert len(counts) == 5_000  # every instance has nodes
    assert min(counts) == 1
    assert max(counts) <= 30
    assert 8 <= sum(counts) / len(counts) <= 12
    assert sum(counts) == seeded.result.nodes


async def test_node_positions_run_from_0_without_gaps_and_names_are_unique(seeded: Seeded) -> None:
    rows = await seeded.rows(
        select(
            InstanceNode.instance_id,
            func.min(InstanceNode.position),
            func.max(InstanceNode.position),
            func.count(),
            func.count(InstanceNode.name.distinct()),
        ).group_by(InstanceNode.instance_id)
    )

    for instance_id, first, last, count, names in rows:
        assert (first, last, names) == (0, count - 1, count), instance_id


async def test_sub_jobs_belong_to_realtime_parents_by_name(seeded: Seeded) -> None:
    jobs = {row.id: row for row in await seeded.rows(select(Job.__table__))}
    sub_jobs = [job for job in jobs.values() if job.parent_id is not None]
    realtime = [job for job in jobs.values() if job.type == JobType.REALTIME.name]

    assert sub_jobs
    assert 0.05 < len(realtime) / len(jobs) < 0.25  # about one in eight
    for job in sub_jobs:
        parent = jobs[job.parent_id]
        assert parent.type == JobType.REALTIME.name
        assert job.type == JobType.BATCH.name
        assert job.name == f"{parent.name}_{job.parent_node_name}"
        assert job.workspace_id == parent.workspace_id
    for parent in realtime:
        assert 1 <= sum(job.parent_id == parent.id for job in sub_jobs) <= 3
    # Some jobs report a vendor id, some do not.
    vendor_ids = [job.vendor_job_id for job in jobs.values()]
    assert None in vendor_ids
    assert any(vendor_ids)
    # Sub-jobs run as SUBJOB instances, and only they do.
    pairs = await seeded.rows(
        select(Job.parent_id.is_not(None), Instance.instance_type)
        .join(Job, Job.id == Instance.job_id)
        .distinct()
    )
    for is_sub_job, instance_type in pairs:
        assert is_sub_job == (instance_type == InstanceType.SUBJOB.name)


async def test_times_follow_the_status(seeded: Seeded) -> None:
    reference = reference_time(FULL_PLAN.seed)
    rows = await seeded.rows(select(Instance.__table__))

    for row in rows:
        assert reference - timedelta(days=91) <= row.plan_time < reference
        assert row.submit_time < row.plan_time
        assert row.job_instance_name is not None
        if row.status in ("WAITING", "RUNNING"):
            assert row.end_time is None
            assert row.execute_time is None
        if row.status == "WAITING":
            assert row.start_time is None
        if row.start_time is not None:
            assert row.start_time >= row.plan_time
        if row.end_time is not None:
            assert row.start_time <= row.end_time < reference
            assert row.execute_time == round(
                (row.end_time - row.start_time).total_seconds() / 60, 1
            )
        assert row.version in (None, 1, 2, 3)
        if row.force_success or row.ignore_success:
            assert row.status == "SUCCESS"
    assert sum(row.force_success for row in rows) > 0
    assert sum(row.ignore_success for row in rows) > 0
    assert {row.version for row in rows} == {None, 1, 2, 3}


async def test_vendor_instance_ids_increase_with_plan_time_per_job(seeded: Seeded) -> None:
    rows = await seeded.rows(
        select(Instance.job_id, Instance.vendor_instance_id).order_by(
            Instance.job_id, Instance.plan_time, Instance.id
        )
    )
    previous: dict[int, int] = {}
    for job_id, vendor_id in rows:
        assert vendor_id > previous.get(job_id, 0)
        previous[job_id] = vendor_id


async def test_node_statuses_and_times_follow_the_instance(seeded: Seeded) -> None:
    instances = {row.id: row for row in await seeded.rows(select(Instance.__table__))}
    nodes: dict[int, list[Any]] = {}
    for node in await seeded.rows(
        select(InstanceNode.__table__).order_by(InstanceNode.instance_id, InstanceNode.position)
    ):
        nodes.setdefault(node.instance_id, []).append(node)

    valid = {member.name for member in NodeStatus}
    for instance_id, run in nodes.items():
        instance = instances[instance_id]
        statuses = [node.status for node in run]
        assert set(statuses) <= valid
        assert all(node.workspace_id == instance.workspace_id for node in run)
        if instance.status == "SUCCESS":
            assert set(statuses) <= {"SUCCESS", "SKIP"}
            assert statuses.count("SKIP") <= 1
        elif instance.status == "FAIL":
            assert statuses.count("FAIL") == 1
            failed = statuses.index("FAIL")
            assert set(statuses[:failed]) <= {"SUCCESS"}
            assert len(set(statuses[failed + 1 :])) <= 1
            assert set(statuses[failed + 1 :]) <= {"SKIP", "WAITING"}
        elif instance.status in ("WAITING", "FREEZE", "REJECTED"):
            assert set(statuses) == {"WAITING"}
        elif instance.status == "SKIP_BY_DEPEND":
            assert set(statuses) == {"SKIP"}
        elif instance.status in ("RUNNING", "RUNNING_EXCEPTION"):
            assert statuses.count("RUNNING") == 1
        for node in run:
            assert node.plan_time == instance.plan_time
            if node.start_time is None:
                assert node.end_time is None
                continue
            assert instance.start_time <= node.start_time
            if node.end_time is not None:
                assert node.start_time <= node.end_time
                if instance.end_time is not None:
                    assert node.end_time <= instance.end_time


async def test_realistic_node_details(seeded: Seeded) -> None:
    types = Counter(t for (t,) in await seeded.rows(select(InstanceNode.type)))
    assert {"Dummy", "DWS SQL", "DLI SQL", "Shell", "CDM Job", "Python", "MRS Spark"} <= set(types)
    logged = (await seeded.rows(select(func.count()).where(InstanceNode.log_path.is_not(None))))[0][
        0
    ]
    retried = (await seeded.rows(select(func.count()).where(InstanceNode.retry_times > 0)))[0][0]
    with_rows = (await seeded.rows(select(func.count()).where(InstanceNode.input_row_count > 0)))[
        0
    ][0]
    assert 0 < logged < seeded.result.nodes
    assert retried > 0
    assert with_rows > 0


async def test_dispatch_and_runtime_facets(seeded: Seeded) -> None:
    rows = await seeded.rows(
        select(Instance.__table__, Job.type.label("job_type")).join(Job, Job.id == Instance.job_id)
    )
    dispatched = [row for row in rows if row.dispatch_trigger_type is not None]
    streamed = [row for row in rows if row.runtime_actual_state is not None]

    assert 0 < len(dispatched) < len(rows)
    for row in dispatched:
        assert row.dispatch_schedule_time == row.plan_time
        assert row.dispatch_time_type in {"CRON", "FIX_RATE", "SECOND_DELAY", "API"}
        if row.dispatch_worker_address is not None:
            assert row.dispatch_worker_address.startswith("10.0.")
            assert row.dispatch_worker_address.endswith(":16")
    assert {row.status for row in rows if row.status == "REJECTED"} <= {
        row.status for row in dispatched
    }
    # The runtime facet belongs to exactly the REALTIME jobs' instances.
    assert streamed
    assert {row.job_type for row in streamed} == {"REALTIME"}
    assert len(streamed) == sum(row.job_type == "REALTIME" for row in rows)
    for row in streamed:
        assert row.runtime_api_type in {"SQL", "DATASTREAM"}
        assert row.runtime_auto_scale_params.startswith('{"isOnOff":')
        if row.status == "FAIL":
            assert row.runtime_actual_state == "FAILED"
            assert row.runtime_last_error_message
