"""Bulk upserts: outcomes, merge rules, ordering guard, nodes, sub-job links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
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
