"""Bulk upserts: outcomes, merge rules, ordering guard, nodes, sub-job links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.storage.ingest import ItemResult, Outcome, write_instances, write_jobs
from jobql.storage.models import Instance, InstanceNode, Job, Workspace
from jobql.storage.records import InstanceRecord, JobRecord, NodeRecord
from tests.factories import new_workspace

T0 = datetime(2019, 3, 4, 3, 53, tzinfo=UTC)


def run(
    workspace: str, instance_id: int = 1, job: str = "job_batch", **values: Any
) -> InstanceRecord:
    reported_at = values.pop("reported_at", None)
    nodes = values.pop("nodes", None)
    return InstanceRecord(
        workspace=workspace,
        job_name=job,
        instance_id=instance_id,
        values={"status": "RUNNING", "plan_time": T0, **values},
        nodes=nodes,
        reported_at=reported_at,
    )


async def write(engine: AsyncEngine, *records: InstanceRecord, **options: Any) -> list[ItemResult]:
    async with engine.begin() as connection:
        return await write_instances(connection, list(records), **options)


async def stored(engine: AsyncEngine, workspace: str, instance_id: int = 1) -> dict[str, Any]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(Instance.__table__)
                .join(Workspace, Workspace.id == Instance.workspace_id)
                .where(Workspace.name == workspace, Instance.vendor_instance_id == instance_id)
            )
        ).one()
        return dict(row._mapping)


async def node_names(engine: AsyncEngine, key: int) -> list[tuple[str, str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(InstanceNode.name, InstanceNode.status)
            .where(InstanceNode.instance_id == key)
            .order_by(InstanceNode.position)
        )
        return [(name, status) for name, status in rows.all()]


async def test_create_replay_update(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    nodes = [NodeRecord("a", {"type": "Dummy", "status": "SUCCESS"})]
    (created,) = await write(engine, run(ws, nodes=nodes, end_time=T0 + timedelta(minutes=1)))
    assert created.outcome is Outcome.CREATED
    assert created.errors == []
    (replayed,) = await write(engine, run(ws, nodes=nodes, end_time=T0 + timedelta(minutes=1)))
    assert replayed.outcome is Outcome.UNCHANGED
    assert replayed.key == created.key
    (updated,) = await write(engine, run(ws, status="SUCCESS"))
    assert updated.outcome is Outcome.UPDATED
    row = await stored(engine, ws)
    assert row["status"] == "SUCCESS"
    # end_time was not reported the second time: kept.
    assert row["end_time"] == T0 + timedelta(minutes=1)
    assert row["instance_type"] == "GENERAL"
    assert await node_names(engine, row["id"]) == [("a", "SUCCESS")]


async def test_terminal_status_is_not_replaced_by_a_late_non_terminal_report(
    engine: AsyncEngine,
) -> None:
    ws = (await new_workspace(engine)).name
    await write(engine, run(ws, status="SUCCESS"))
    (late,) = await write(engine, run(ws, status="RUNNING"))
    assert late.outcome is Outcome.STALE
    assert (await stored(engine, ws))["status"] == "SUCCESS"


async def test_report_times_order_reports(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    await write(engine, run(ws, status="RUNNING", reported_at=T0 + timedelta(minutes=5)))
    (older,) = await write(engine, run(ws, status="SUCCESS", reported_at=T0))
    assert older.outcome is Outcome.STALE
    (same_lower,) = await write(
        engine, run(ws, status="WAITING", reported_at=T0 + timedelta(minutes=5))
    )
    assert same_lower.outcome is Outcome.STALE
    (newer,) = await write(engine, run(ws, status="FAIL", reported_at=T0 + timedelta(minutes=6)))
    assert newer.outcome is Outcome.UPDATED
    # A newer report may even reopen a run (a rerun): report time decides, not status.
    (rerun,) = await write(engine, run(ws, status="RUNNING", reported_at=T0 + timedelta(minutes=7)))
    assert rerun.outcome is Outcome.UPDATED
    assert (await stored(engine, ws))["status"] == "RUNNING"


async def test_invalid_items_are_reported_and_valid_ones_land(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    incomplete = InstanceRecord(ws, "job_batch", 2, {"status": "SUCCESS"})
    results = await write(engine, run(ws, 1), incomplete)
    assert results[0].outcome is Outcome.CREATED
    assert results[1].outcome is None
    assert [(e.code, e.field) for e in results[1].errors] == [("MISSING_FIELD", "plan_time")]
    async with engine.connect() as connection:
        count = len(
            (
                await connection.execute(
                    select(Instance.id)
                    .join(Workspace, Workspace.id == Instance.workspace_id)
                    .where(Workspace.name == ws)
                )
            ).all()
        )
    assert count == 1


async def test_unknown_job_when_jobs_are_not_created(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    (result,) = await write(engine, run(ws), create_jobs=False)
    assert [e.code for e in result.errors] == ["UNKNOWN_JOB"]
    async with engine.begin() as connection:
        await write_jobs(connection, [JobRecord(ws, "job_batch")])
    (result,) = await write(engine, run(ws), create_jobs=False)
    assert result.outcome is Outcome.CREATED


async def test_nodes_are_replaced_in_their_new_order(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    first = [NodeRecord(n, {"type": "Dummy", "status": "RUNNING"}) for n in ("a", "b", "c")]
    (created,) = await write(engine, run(ws, nodes=first))
    second = [
        NodeRecord("c", {"type": "Dummy", "status": "SUCCESS"}),
        NodeRecord("a", {"status": "FAIL"}),
    ]
    (updated,) = await write(engine, run(ws, nodes=second))
    assert updated.outcome is Outcome.UPDATED
    assert await node_names(engine, created.key or 0) == [("c", "SUCCESS"), ("a", "FAIL")]
    duplicate = [NodeRecord("x", {"type": "T", "status": "FAIL"})] * 2
    (bad,) = await write(engine, run(ws, nodes=duplicate))
    assert [e.code for e in bad.errors] == ["DUPLICATE_KEY"]
    assert await node_names(engine, created.key or 0) == [("c", "SUCCESS"), ("a", "FAIL")]


async def test_sub_jobs_link_to_the_longest_realtime_parent(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    async with engine.begin() as connection:
        await write_jobs(connection, [JobRecord(ws, "job_sms_DLI_SMS_PROCESS")])
        await write_jobs(
            connection,
            [
                JobRecord(ws, "job", {"type": "REALTIME"}),
                JobRecord(ws, "job_sms", {"type": "REALTIME"}),
            ],
        )
    async with engine.connect() as connection:
        parent = (
            await connection.execute(
                select(Job.parent_node_name, Job.parent_id)
                .join(Workspace, Workspace.id == Job.workspace_id)
                .where(Workspace.name == ws, Job.name == "job_sms_DLI_SMS_PROCESS")
            )
        ).one()
        sms = (
            await connection.execute(
                select(Job.id)
                .join(Workspace, Workspace.id == Job.workspace_id)
                .where(Workspace.name == ws, Job.name == "job_sms")
            )
        ).scalar_one()
    assert parent == ("DLI_SMS_PROCESS", sms)


async def job_row(engine: AsyncEngine, workspace: str, name: str) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(Job.__table__)
                .join(Workspace, Workspace.id == Job.workspace_id)
                .where(Workspace.name == workspace, Job.name == name)
            )
        ).one_or_none()
    return None if row is None else dict(row._mapping)


async def jobs(engine: AsyncEngine, *records: JobRecord) -> list[ItemResult]:
    async with engine.begin() as connection:
        return await write_jobs(connection, list(records))


async def test_rejected_items_write_nothing_not_even_their_job(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    (orphan,) = await jobs(engine, JobRecord(ws, "orphan", parent_name="nobody"))
    assert [e.code for e in orphan.errors] == ["UNKNOWN_PARENT"]
    assert orphan.outcome is None
    assert await job_row(engine, ws, "orphan") is None
    (ghost,) = await write(engine, InstanceRecord(ws, "ghost", 1, {"status": "FAIL"}))
    assert [e.code for e in ghost.errors] == ["MISSING_FIELD"]
    assert await job_row(engine, ws, "ghost") is None


async def test_a_longer_real_time_parent_arriving_later_takes_over(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    await jobs(engine, JobRecord(ws, "a", {"type": "REALTIME"}), JobRecord(ws, "a_b_c"))
    first = await job_row(engine, ws, "a_b_c")
    assert first is not None
    assert first["parent_node_name"] == "b_c"
    await jobs(engine, JobRecord(ws, "a_b", {"type": "REALTIME"}))
    moved = await job_row(engine, ws, "a_b_c")
    parent = await job_row(engine, ws, "a_b")
    assert moved is not None
    assert parent is not None
    assert (moved["parent_id"], moved["parent_node_name"]) == (parent["id"], "c")


async def test_explicit_links(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    await jobs(engine, JobRecord(ws, "q"), JobRecord(ws, "q_a"), JobRecord(ws, "p2"))
    (linked,) = await jobs(engine, JobRecord(ws, "k", parent_name="q"))
    assert linked.outcome is Outcome.CREATED
    # The parent became real-time, so its other `q_...` jobs follow the naming rule.
    child = await job_row(engine, ws, "q_a")
    q = await job_row(engine, ws, "q")
    assert q is not None
    assert q["type"] == "REALTIME"
    assert child is not None
    assert (child["parent_id"], child["parent_node_name"]) == (q["id"], "a")
    # A report saying BATCH does not demote a job that has sub-jobs.
    await jobs(engine, JobRecord(ws, "q", {"type": "BATCH"}))
    q = await job_row(engine, ws, "q")
    assert q is not None
    assert q["type"] == "REALTIME"
    # Moving a sub-job is an update; replaying it is not.
    (moved,) = await jobs(engine, JobRecord(ws, "k", parent_name="p2"))
    assert moved.outcome is Outcome.UPDATED
    (again,) = await jobs(engine, JobRecord(ws, "k", parent_name="p2"))
    assert again.outcome is Outcome.UNCHANGED
    # An explicit link is kept even when a naming rule would say otherwise.
    await jobs(engine, JobRecord(ws, "k", {"type": "REALTIME"}))
    k = await job_row(engine, ws, "k")
    assert k is not None
    assert k["parent_explicit"] is True


async def test_cycles_are_refused(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    results = await jobs(
        engine, JobRecord(ws, "c1", parent_name="c2"), JobRecord(ws, "c2", parent_name="c1")
    )
    assert [e.code for r in results for e in r.errors] == ["INVALID_VALUE", "INVALID_VALUE"]
    (self_parent,) = await jobs(engine, JobRecord(ws, "c3", parent_name="c3"))
    assert [e.code for e in self_parent.errors] == ["INVALID_VALUE"]


async def test_values_longer_than_their_columns_are_item_errors(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    long_name = run(ws, job="j" * 600)
    long_node = run(ws, 2, nodes=[NodeRecord("n", {"type": "T" * 200, "status": "SUCCESS"})])
    fine = run(ws, 3)
    results = await write(engine, long_name, long_node, fine)
    assert [(e.code, e.field) for e in results[0].errors] == [("INVALID_VALUE", "name")]
    assert [(e.code, e.field) for e in results[1].errors] == [("INVALID_VALUE", "nodes[0].type")]
    assert results[2].outcome is Outcome.CREATED


async def test_only_nodes_changed_is_an_update_of_the_nodes(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    node = NodeRecord("a", {"type": "Dummy", "status": "RUNNING"})
    (created,) = await write(engine, run(ws, nodes=[node]))
    done = NodeRecord("a", {"type": "Dummy", "status": "SUCCESS"})
    (updated,) = await write(engine, run(ws, nodes=[done]))
    assert updated.outcome is Outcome.UPDATED
    assert await node_names(engine, created.key or 0) == [("a", "SUCCESS")]


async def test_times_before_the_year_1000_keep_their_order(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    early = datetime(1, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)  # the earliest time jobql keeps
    await write(engine, run(ws, 1, plan_time=early), run(ws, 2, plan_time=T0))
    row = await stored(engine, ws, 1)
    assert row["plan_time"] == early


async def test_the_first_instant_of_the_year_1_is_refused(engine: AsyncEngine) -> None:
    """asyncpg writes and reads it as -infinity, which no answer could give back as a time."""
    ws = (await new_workspace(engine)).name
    first = datetime(1, 1, 1, tzinfo=UTC)
    node = NodeRecord("n", {"type": "T", "status": "SUCCESS", "start_time": first})
    results = await write(engine, run(ws, 1, plan_time=first), run(ws, 2, nodes=[node]))
    assert [(e.code, e.field) for e in results[0].errors] == [("INVALID_VALUE", "plan_time")]
    assert [(e.code, e.field) for e in results[1].errors] == [
        ("INVALID_VALUE", "nodes[0].start_time")
    ]
    assert "0001-01-01T00:00:00.001Z" in results[0].errors[0].message
    assert [r.outcome for r in results] == [None, None]  # nothing of either item is written


async def test_large_node_lists_are_replaced(engine: AsyncEngine) -> None:
    ws = (await new_workspace(engine)).name
    many = [NodeRecord(f"n{i}", {"type": "T", "status": "RUNNING"}) for i in range(3000)]
    records = [run(ws, n, nodes=many[n * 10 : n * 10 + 10]) for n in range(300)]
    assert all(r.outcome is Outcome.CREATED for r in await write(engine, *records))
    fewer = [run(ws, n, nodes=many[n * 10 : n * 10 + 3]) for n in range(300)]
    assert all(r.outcome is Outcome.UPDATED for r in await write(engine, *fewer))
    row = await stored(engine, ws, 7)
    assert [name for name, _ in await node_names(engine, row["id"])] == ["n70", "n71", "n72"]


async def test_concurrent_identical_batches_create_once(engine: AsyncEngine) -> None:
    """Two writers racing with the same new instances: one creates, the other finds them."""
    import asyncio

    from jobql.storage.engine import write as write_transaction

    ws = (await new_workspace(engine)).name
    batch = [run(ws, n, job=f"j{n % 7}") for n in range(200)]
    backwards = list(reversed(batch))

    async def one(records: list[InstanceRecord]) -> list[ItemResult]:
        async def work(connection: Any) -> list[ItemResult]:
            return await write_instances(connection, records)

        return await write_transaction(engine, work)

    first, second = await asyncio.gather(one(batch), one(backwards))
    outcomes = [r.outcome for r in first + second]
    assert outcomes.count(Outcome.CREATED) == 200
    assert outcomes.count(Outcome.UNCHANGED) == 200


async def test_concurrent_single_reports_of_one_new_instance_create_it_once(
    engine: AsyncEngine,
) -> None:
    """Single reports (one statement finds the workspace, the job and, on PostgreSQL, creates
    and locks the instance's key): twelve writers of one new instance at once, its job known.
    One creates it, the others find it (each waits for the key, or meets it created after its
    snapshot and locks it again); no error, no deadlock, one row."""
    import asyncio

    from jobql.storage.engine import write as write_transaction

    ws = (await new_workspace(engine)).name
    await write(engine, run(ws, 1, job="known"))

    async def one(status: str) -> list[ItemResult]:
        async def work(connection: Any) -> list[ItemResult]:
            return await write_instances(connection, [run(ws, 2, job="known", status=status)])

        return await write_transaction(engine, work)

    results = await asyncio.gather(*(one("RUNNING") for _ in range(12)))
    outcomes = [r.outcome for result in results for r in result]
    assert outcomes.count(Outcome.CREATED) == 1
    assert outcomes.count(Outcome.UNCHANGED) == 11
    async with engine.connect() as connection:
        count = await connection.scalar(
            text(
                "SELECT count(*) FROM instance i JOIN job j ON j.id = i.job_id "
                "JOIN workspace w ON w.id = i.workspace_id "
                "WHERE w.name = :ws AND j.name = 'known' AND i.vendor_instance_id = 2"
            ),
            {"ws": ws},
        )
    assert count == 1


async def test_children_of_refused_batch_items_are_refused_too(engine: AsyncEngine) -> None:
    """Found by tests/test_fuzz.py: b's parent a existed only as a refused item."""
    ws = (await new_workspace(engine)).name
    results = await jobs(
        engine,
        JobRecord(ws, "b", parent_name="a"),
        JobRecord(ws, "a", parent_name="nope"),
        JobRecord(ws, "c", parent_name="b"),
    )
    assert [[e.code for e in r.errors] for r in results] == [["UNKNOWN_PARENT"]] * 3
    assert [await job_row(engine, ws, name) for name in ("a", "b", "c")] == [None] * 3


async def test_a_report_without_the_required_fields_updates_a_stored_instance(
    engine: AsyncEngine,
) -> None:
    """status and planTime are needed to create an instance, not to report on a stored one."""
    ws = (await new_workspace(engine)).name
    await write(engine, run(ws, nodes=[NodeRecord("a", {"type": "T", "status": "RUNNING"})]))
    later = T0 + timedelta(minutes=5)
    status_only = InstanceRecord(ws, "job_batch", 1, values={"status": "SUCCESS"})
    end_only = InstanceRecord(ws, "job_batch", 1, values={"end_time": later})
    done = NodeRecord("a", {"type": "T", "status": "SUCCESS"})
    nodes_only = InstanceRecord(ws, "job_batch", 1, values={}, nodes=[done])
    for record in (status_only, end_only, nodes_only):
        (result,) = await write(engine, record)
        assert result.errors == [], result.errors
        assert result.outcome is Outcome.UPDATED
    row = await stored(engine, ws)
    assert (row["status"], row["plan_time"], row["end_time"]) == ("SUCCESS", T0, later)
    assert await node_names(engine, row["id"]) == [("a", "SUCCESS")]
    (again,) = await write(engine, nodes_only)
    assert again.outcome is Outcome.UNCHANGED
