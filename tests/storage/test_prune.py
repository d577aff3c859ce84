"""Instance retention (`jobql.storage.prune`): what goes (instances planned before the cutoff, with
their nodes and emitter run states), what stays (newer and boundary rows, other workspaces, jobs,
the event log), batches, dry runs, and SQLite's largest ids.

Every test but one prunes a workspace of its own in the session's shared databases. Pruning every
workspace would take other tests' rows with it, so that test has a database of its own.

On SQLite the instance with the largest id and the one of the node with the largest id are never
pruned (see prune's docstring), so every test creates a newer run with a node last (`newer_run`),
except the one about exactly that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobql.storage import engine as storage_engine
from jobql.storage import migrate
from jobql.storage.engine import create_engine
from jobql.storage.models import EmitRunState, Instance, InstanceEvent, InstanceNode, Job
from jobql.storage.prune import PruneReport, UnknownWorkspace, WorkspacePruned, prune
from tests.conftest import postgres_url
from tests.factories import Ref, make_instance, make_job, make_nodes, new_workspace

CUTOFF = datetime(2024, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
T = TypeVar("T")


async def newer_run(engine: AsyncEngine, job: Ref) -> int:
    """A run at the cutoff with one node, created last: on SQLite it holds the largest ids."""
    run = await make_instance(engine, job, plan_time=CUTOFF + timedelta(days=3))
    await make_nodes(engine, run, 1)
    return run.id


async def instances_of(engine: AsyncEngine, workspace: Ref) -> set[int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Instance.id).where(Instance.workspace_id == workspace.id)
        )
        return {row[0] for row in rows}


async def nodes_of(engine: AsyncEngine, workspace: Ref) -> dict[int, int]:
    """Instance id -> how many nodes it has, in the workspace."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(InstanceNode.instance_id, func.count())
            .where(InstanceNode.workspace_id == workspace.id)
            .group_by(InstanceNode.instance_id)
        )
        return {row[0]: row[1] for row in rows}


async def old_runs(
    engine: AsyncEngine, job: Ref, count: int, *, nodes: int = 0, spacing: timedelta = MS
) -> list[int]:
    """`count` runs before the cutoff, the newest 1 ms before it."""
    keys = []
    for n in range(count):
        run = await make_instance(engine, job, plan_time=CUTOFF - MS - n * spacing)
        await make_nodes(engine, run, nodes)
        keys.append(run.id)
    return keys


async def test_old_instances_go_with_their_nodes_and_run_states(engine: AsyncEngine) -> None:
    ws = await new_workspace(engine)
    job = await make_job(engine, ws)
    old = await old_runs(engine, job, 4, nodes=3, spacing=timedelta(days=30))
    at_cutoff = await make_instance(engine, job, plan_time=CUTOFF)
    await make_nodes(engine, at_cutoff, 2)
    newer = await newer_run(engine, job)
    async with engine.begin() as connection:
        for key in (old[0], at_cutoff.id):
            await connection.execute(
                insert(EmitRunState).values(emitter="e", instance_id=key, node="", state="START")
            )
        await connection.execute(insert(InstanceEvent).values(**event_of(ws, job, old[0])))

    # A cutoff between two milliseconds counts as the millisecond before it (times are kept to
    # the millisecond): the run exactly at the cutoff stays.
    report = await prune(engine, CUTOFF + timedelta(microseconds=999), workspace=ws.name)

    assert report == PruneReport(CUTOFF, False, [WorkspacePruned(ws.name, 4, 12)])
    assert await instances_of(engine, ws) == {at_cutoff.id, newer}
    assert await nodes_of(engine, ws) == {at_cutoff.id: 2, newer: 1}
    async with engine.connect() as connection:
        states = await connection.execute(
            select(EmitRunState.instance_id).where(EmitRunState.emitter == "e")
        )
        assert {row[0] for row in states} & {*old, at_cutoff.id} == {at_cutoff.id}
        # Jobs stay; the event log keeps its own retention.
        assert await connection.scalar(select(func.count()).where(Job.id == job.id)) == 1
        logged = select(func.count()).where(InstanceEvent.instance_id == old[0])
        assert await connection.scalar(logged) == 1


def event_of(ws: Ref, job: Ref, instance_id: int) -> dict[str, Any]:
    return {
        "workspace_id": ws.id,
        "job_id": job.id,
        "instance_id": instance_id,
        "vendor_instance_id": instance_id,
        "kind": "CREATED",
        "status": "SUCCESS",
        "instance_type": "GENERAL",
        "plan_time": CUTOFF - MS,
        "force_success": False,
        "ignore_success": False,
        "at": datetime.now(UTC),
    }


async def test_only_the_named_workspace_is_pruned(engine: AsyncEngine) -> None:
    mine, other = await new_workspace(engine), await new_workspace(engine)
    other_job = await make_job(engine, other)
    await old_runs(engine, other_job, 3, nodes=2)
    job = await make_job(engine, mine)
    await old_runs(engine, job, 2, nodes=1)
    newer = await newer_run(engine, job)
    other_before = (await instances_of(engine, other), await nodes_of(engine, other))

    report = await prune(engine, CUTOFF, workspace=mine.name)

    assert report.workspaces == [WorkspacePruned(mine.name, 2, 2)]
    assert await instances_of(engine, mine) == {newer}
    assert (await instances_of(engine, other), await nodes_of(engine, other)) == other_before


async def test_a_workspace_with_nothing_to_prune_is_reported_at_zero(engine: AsyncEngine) -> None:
    ws = await new_workspace(engine)
    newer = await newer_run(engine, await make_job(engine, ws))
    report = await prune(engine, CUTOFF, workspace=ws.name)
    assert report == PruneReport(CUTOFF, False, [WorkspacePruned(ws.name, 0, 0)])
    assert await instances_of(engine, ws) == {newer}


async def test_an_unknown_workspace_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(UnknownWorkspace, match="no workspace named 'no-such-workspace'"):
        await prune(engine, CUTOFF, workspace="no-such-workspace")


async def test_a_dry_run_counts_what_would_go_and_deletes_nothing(engine: AsyncEngine) -> None:
    ws = await new_workspace(engine)
    job = await make_job(engine, ws)
    await old_runs(engine, job, 5, nodes=2)
    await newer_run(engine, job)
    before = (await instances_of(engine, ws), await nodes_of(engine, ws))
    calls: list[tuple[int, int]] = []

    dry = await prune(
        engine, CUTOFF, workspace=ws.name, dry_run=True, progress=lambda *a: calls.append(a)
    )

    assert dry == PruneReport(CUTOFF, True, [WorkspacePruned(ws.name, 5, 10)])
    assert (await instances_of(engine, ws), await nodes_of(engine, ws)) == before
    assert calls == []
    real = await prune(engine, CUTOFF, workspace=ws.name)
    assert (real.instances, real.nodes) == (dry.instances, dry.nodes)


async def test_batches_smaller_than_the_data_remove_everything(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = await new_workspace(engine)
    job = await make_job(engine, ws)
    # Three runs per plan time, so that batches end between runs of one plan time.
    keys = []
    for n in range(23):
        run = await make_instance(engine, job, plan_time=CUTOFF - timedelta(minutes=1 + n // 3))
        keys.append(run.id)
    await make_nodes(engine, Ref(keys[7], job.name, ws.id), 4)
    newer = await newer_run(engine, job)
    batches: list[Any] = []
    write = storage_engine.write

    async def recorded(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        result = await write(engine, work)
        batches.append(getattr(result, "instances", None))
        return result

    monkeypatch.setattr(storage_engine, "write", recorded)
    calls: list[tuple[int, int]] = []

    report = await prune(
        engine, CUTOFF, workspace=ws.name, batch_size=5, progress=lambda *a: calls.append(a)
    )

    assert report.workspaces == [WorkspacePruned(ws.name, 23, 4)]
    assert await instances_of(engine, ws) == {newer}
    # One write transaction per batch, and one more that finds nothing left.
    assert batches == [5, 5, 5, 5, 3, None]
    assert calls == [(0, 23), (5, 23), (10, 23), (15, 23), (20, 23), (23, 23)]


async def test_sqlite_keeps_the_largest_ids_until_newer_rows_exist(engine: AsyncEngine) -> None:
    ws = await new_workspace(engine)
    job = await make_job(engine, ws)
    await old_runs(engine, job, 2, nodes=1)
    last = await make_instance(engine, job, plan_time=CUTOFF - timedelta(days=1))  # largest id

    report = await prune(engine, CUTOFF, workspace=ws.name)

    if engine.dialect.name == "sqlite":
        # The run with the largest instance id, and the run of the largest node id.
        assert report.workspaces == [WorkspacePruned(ws.name, 1, 1)]
        assert report.held_back == 2
        assert len(await instances_of(engine, ws)) == 2
        newer = await newer_run(engine, job)
        assert newer > last.id  # no id handed out twice
        again = await prune(engine, CUTOFF, workspace=ws.name)
        assert again.workspaces == [WorkspacePruned(ws.name, 2, 1)]
        assert again.held_back == 0
        assert await instances_of(engine, ws) == {newer}
    else:
        assert report.workspaces == [WorkspacePruned(ws.name, 3, 2)]
        assert report.held_back == 0
        assert await instances_of(engine, ws) == set()


async def test_a_row_a_concurrent_write_moves_past_the_cutoff_stays(engine: AsyncEngine) -> None:
    ws = await new_workspace(engine)
    job = await make_job(engine, ws)
    old = await old_runs(engine, job, 3, nodes=1)
    newer = await newer_run(engine, job)
    async with engine.connect() as writer:
        await writer.execute(
            update(Instance).where(Instance.id == old[1]).values(plan_time=CUTOFF + MS)
        )
        pruning = asyncio.create_task(prune(engine, CUTOFF, workspace=ws.name))
        await asyncio.sleep(0.5)
        # PostgreSQL: the batch waits for the moved row's lock; SQLite: for the write lock.
        assert not pruning.done()
        await writer.commit()
    report = await pruning

    # Counted before the write committed, deleted after: the moved row is checked again.
    assert report.workspaces == [WorkspacePruned(ws.name, 2, 2)]
    assert await instances_of(engine, ws) == {old[1], newer}
    assert await nodes_of(engine, ws) == {old[1]: 1, newer: 1}


@pytest.fixture
async def own_engine(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated database of the same backend as `engine`, for this test alone."""
    if engine.dialect.name == "sqlite":
        private = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'prune.db'}")
        await migrate.upgrade(private)
        yield private
        await private.dispose()
        return
    async with postgres_url() as url:
        private = create_engine(url)
        try:
            await migrate.upgrade(private)
            yield private
        finally:
            await private.dispose()


async def test_every_workspace_without_a_name(own_engine: AsyncEngine) -> None:
    engine = own_engine
    a, b, c = [await new_workspace(engine, name) for name in ("a", "b", "c")]
    a_job, b_job, c_job = [await make_job(engine, ws) for ws in (a, b, c)]
    await old_runs(engine, b_job, 3, nodes=2)
    await old_runs(engine, a_job, 4, nodes=1)
    kept = {await newer_run(engine, job) for job in (a_job, b_job, c_job)}

    report = await prune(engine, CUTOFF, batch_size=2)

    # Workspaces in name order; c had nothing older than the cutoff.
    assert report.workspaces == [WorkspacePruned("a", 4, 4), WorkspacePruned("b", 3, 6)]
    assert (report.instances, report.nodes, report.held_back) == (7, 10, 0)
    remaining = set().union(*[await instances_of(engine, ws) for ws in (a, b, c)])
    assert remaining == kept
    async with engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(Job)) == 3
