"""The event log (jobql/storage/events.py): written by the one write path in its transaction, one
event per real change, ids in commit order, readers woken only after commit, pruned by age and
count."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobql.resolvers.ingest import import_instances, instance_record
from jobql.storage import engine as storage_engine
from jobql.storage import events
from jobql.storage.ingest import write_instances
from jobql.storage.models import InstanceEvent, InstanceEventPending
from jobql.storage.records import InstanceRecord, NodeRecord
from tests.factories import new_workspace

PLAN = datetime(2026, 1, 1, tzinfo=UTC)


def record(
    workspace: str,
    instance_id: int,
    status: str,
    *,
    job: str = "job",
    reported: int | None = None,
    nodes: list[str] | None = None,
) -> InstanceRecord:
    return instance_record(
        workspace,
        job_name=job,
        instance_id=instance_id,
        fields={"status": status, "plan_time": PLAN},
        nodes=None
        if nodes is None
        else [(name, {"type": "SQL", "status": "RUNNING"}) for name in nodes],
        reported_at=None if reported is None else PLAN + timedelta(seconds=reported),
    )


async def write(engine: AsyncEngine, *records: InstanceRecord) -> list[str]:
    async def work(connection: AsyncConnection) -> Any:
        return await write_instances(connection, list(records))

    results = await storage_engine.write(engine, work)
    return [result.outcome.value for result in results]


async def log_of(engine: AsyncEngine, workspace: str) -> list[events.Event]:
    return await events.read_after(engine, 0, workspace=workspace)


async def test_one_event_per_change_with_kind_and_previous_status(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    assert await write(engine, record(ws, 1, "WAITING", reported=1)) == ["CREATED"]
    assert await write(engine, record(ws, 1, "RUNNING", reported=2)) == ["UPDATED"]
    # Nodes only: an UPDATED event, the status unchanged.
    assert await write(engine, record(ws, 1, "RUNNING", reported=3, nodes=["a"])) == ["UPDATED"]
    # The same report again, and an older one: no event.
    assert await write(engine, record(ws, 1, "RUNNING", reported=3, nodes=["a"])) == ["UNCHANGED"]
    assert await write(engine, record(ws, 1, "FAIL", reported=0)) == ["STALE"]
    assert await write(engine, record(ws, 1, "SUCCESS", reported=4)) == ["UPDATED"]
    found = await log_of(engine, ws)
    assert [(e.kind, e.previous_status, e.status) for e in found] == [
        ("CREATED", None, "WAITING"),
        ("STATUS_CHANGED", "WAITING", "RUNNING"),
        ("UPDATED", "RUNNING", "RUNNING"),
        ("STATUS_CHANGED", "RUNNING", "SUCCESS"),
    ]
    assert {(e.workspace, e.job_name, e.vendor_instance_id) for e in found} == {(ws, "job", 1)}
    ids = [e.id for e in found]
    assert ids == sorted(ids)
    assert found[0].plan_time == PLAN
    assert (found[0].instance_type, found[0].force_success) == ("GENERAL", False)


async def test_a_rolled_back_write_leaves_no_event_and_wakes_nobody(engine: AsyncEngine) -> None:
    """Readers are woken after the commit, with the last id: by NOTIFY on PostgreSQL (whatever
    the process), directly in this process on SQLite; never for a rolled-back write."""
    ws = (await new_workspace(engine)).name
    woken: list[int] = []
    listener = events.Listener(engine, woken.append)
    await listener.start()
    await asyncio.wait_for(listener.connected.wait(), 10)
    woken.clear()  # (PostgreSQL: "read whatever there is" on connecting)
    try:

        async def work(connection: AsyncConnection) -> None:
            await write_instances(connection, [record(ws, 1, "RUNNING")])
            assert len(await log_of(engine, ws)) == 0  # not visible before commit
            raise RuntimeError("the caller gives up")

        with pytest.raises(RuntimeError):
            await storage_engine.write(engine, work)
        await asyncio.sleep(0.3)  # a NOTIFY would have arrived
        assert await log_of(engine, ws) == []
        assert woken == []
        assert await write(engine, record(ws, 1, "RUNNING")) == ["CREATED"]
        await until_woken(woken)
        assert woken == [(await log_of(engine, ws))[0].id]
    finally:
        await listener.close()


async def until_woken(woken: list[int]) -> None:
    for _ in range(100):
        if woken:
            return
        await asyncio.sleep(0.05)


async def test_import_writes_events_per_chunk(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    summary = await import_instances(engine, [record(ws, i, "RUNNING") for i in range(1, 8)])
    assert summary.counts["created"] == 7
    assert [e.vendor_instance_id for e in await log_of(engine, ws)] == list(range(1, 8))


@pytest.mark.postgres
async def test_ids_are_handed_out_in_commit_order(engine: AsyncEngine) -> None:
    """Ids follow commit order, not the order of the appends: a writer that appended first but
    commits last gets the later id, and does not hold the others up while it has not committed
    (the lock is taken inside COMMIT, migration 0007)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers anyway")
    ws = (await new_workspace(engine)).name
    # The job exists: two writers creating it at once would wait for each other's job row.
    assert await write(engine, record(ws, 0, "RUNNING")) == ["CREATED"]
    first_appended = asyncio.Event()
    release = asyncio.Event()

    async def slow(connection: AsyncConnection) -> None:
        await write_instances(connection, [record(ws, 1, "RUNNING")])
        first_appended.set()
        await release.wait()

    async def quick(connection: AsyncConnection) -> None:
        await write_instances(connection, [record(ws, 2, "RUNNING")])

    slow_task = asyncio.create_task(storage_engine.write(engine, slow))
    await first_appended.wait()
    await asyncio.wait_for(storage_engine.write(engine, quick), 5)  # not held up by `slow`
    assert [e.vendor_instance_id for e in await log_of(engine, ws)] == [0, 2]
    release.set()
    await slow_task
    found = (await log_of(engine, ws))[1:]
    assert [e.vendor_instance_id for e in found] == [2, 1]
    assert found[0].id < found[1].id
    async with engine.connect() as connection:
        pending = await connection.scalar(select(func.count()).select_from(InstanceEventPending))
    assert pending == 0  # each transaction's pending row goes with its commit


@pytest.mark.postgres
async def test_a_committer_holding_the_append_lock_holds_later_commits_back(
    engine: AsyncEngine,
) -> None:
    """While one transaction's events are being appended (the lock held inside its COMMIT),
    another's COMMIT waits, and then its ids come after: no reader sees id N+1 before N."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers anyway")
    ws = (await new_workspace(engine)).name
    async with engine.connect() as holder:
        # What the trigger does first inside a COMMIT, held by hand.
        await holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": events.APPEND_LOCK})
        task = asyncio.create_task(write(engine, record(ws, 1, "RUNNING")))
        await asyncio.sleep(0.3)
        assert not task.done()  # its COMMIT waits for the lock
        assert await log_of(engine, ws) == []
        await holder.rollback()
    assert await asyncio.wait_for(task, 5) == ["CREATED"]
    assert [e.vendor_instance_id for e in await log_of(engine, ws)] == [1]


async def test_prune_by_count_and_age_keeps_the_newest(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    for i in range(1, 6):
        await write(engine, record(ws, i, "RUNNING"))
    mine = [e.id for e in await log_of(engine, ws)]
    newest = (await events.bounds(engine))[1]
    assert newest == mine[-1]
    await events.prune(engine, max_age=timedelta(days=1), max_count=2)
    assert [e.id for e in await log_of(engine, ws)] == mine[-2:]
    await events.prune(engine, max_age=timedelta(0), max_count=1_000)
    assert [e.id for e in await log_of(engine, ws)] == mine[-1:]  # the newest stays
    async with engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(InstanceEvent)) == 1


async def test_prune_keeps_a_log_within_both_limits_whole(engine: AsyncEngine) -> None:
    """Fewer events than the count limit, none older than the age limit: nothing goes. (Every
    worker prunes every minute: a prune that emptied the log but for its newest event lost
    the events a broker had not read yet, and every cursor older than the last minute.)"""
    ws = (await new_workspace(engine)).name
    for i in range(1, 6):
        await write(engine, record(ws, i, "RUNNING"))
    mine = [e.id for e in await log_of(engine, ws)]
    assert await events.prune(engine, max_age=timedelta(days=7), max_count=1_000_000) == 0
    assert [e.id for e in await log_of(engine, ws)] == mine


async def test_node_records_only(engine: AsyncEngine) -> None:
    """A change of nodes alone is an event (the instance's row is not even rewritten)."""
    ws = (await new_workspace(engine)).name
    await write(engine, record(ws, 1, "RUNNING", nodes=["a"]))
    changed = InstanceRecord(
        workspace=ws,
        job_name="job",
        instance_id=1,
        values={"status": "RUNNING", "plan_time": PLAN},
        nodes=[NodeRecord("a", {"status": "SUCCESS"})],
    )
    assert await write(engine, changed) == ["UPDATED"]
    assert [e.kind for e in await log_of(engine, ws)] == ["CREATED", "UPDATED"]


@pytest.mark.postgres
async def test_a_single_report_locks_its_stored_instance_until_commit(engine: AsyncEngine) -> None:
    """A single report reads its workspace, job and stored instance in one statement, the
    instance locked (FOR UPDATE in a lateral sub-select): a second writer of the same instance
    waits for the first to commit, and its event's previous status is the one the first wrote."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers anyway")
    ws = (await new_workspace(engine)).name
    assert await write(engine, record(ws, 1, "RUNNING", reported=1)) == ["CREATED"]
    first_written = asyncio.Event()
    release = asyncio.Event()

    async def slow(connection: AsyncConnection) -> None:
        await write_instances(connection, [record(ws, 1, "FAIL", reported=2)])
        first_written.set()
        await release.wait()

    slow_task = asyncio.create_task(storage_engine.write(engine, slow))
    await first_written.wait()
    second = asyncio.create_task(write(engine, record(ws, 1, "SUCCESS", reported=3)))
    await asyncio.sleep(0.3)
    assert not second.done()  # waiting for the instance's row lock
    release.set()
    await slow_task
    assert await asyncio.wait_for(second, 5) == ["UPDATED"]
    found = await log_of(engine, ws)
    assert [(e.previous_status, e.status) for e in found] == [
        (None, "RUNNING"),
        ("RUNNING", "FAIL"),
        ("FAIL", "SUCCESS"),
    ]
