"""Use cases of the OpenLineage emitter (`jobql/emit/`): hold a cursor, read a batch of the event
log with the instances and nodes it names, and move the cursor once the batch went out.

A batch is read with a fixed number of statements whatever its size: the events (one), the log's
bounds (one), per workspace in it the instances and their nodes (one each per 500), and the run
states (one per 500 instances).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobql.storage import emit as storage_emit
from jobql.storage import engine as storage_engine
from jobql.storage import events, instances
from jobql.storage.emit import RunKey
from jobql.storage.engine import Reader
from jobql.storage.events import Event, Listener
from jobql.storage.identifiers import encode_global_id

__all__ = [
    "Batch",
    "CursorStatus",
    "Event",
    "Listener",
    "RunInstance",
    "RunKey",
    "RunNode",
    "advance",
    "claim",
    "cursors",
    "read_batch",
    "release",
]

# Fields of a SchedulerX or Realtime Compute (Flink) instance that no other source fills.
_SCHEDULERX_FIELDS = ("dispatch_trigger_type", "dispatch_time_type", "dispatch_worker_address")
_FLINK_FIELDS = ("runtime_actual_state", "runtime_expect_state", "runtime_engine_version")


@dataclass(frozen=True, slots=True)
class RunNode:
    name: str
    type: str
    status: str
    plan_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None


@dataclass(frozen=True, slots=True)
class RunInstance:
    """An instance as the emitter reads it (as it is now, not as the event left it)."""

    key: int
    workspace: str
    job_name: str
    # The namespace the job came with over OpenLineage (POST /api/v1/lineage), else None.
    job_namespace: str | None
    instance_id: int
    instance_type: str
    status: str
    plan_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    error_message: str | None
    source_api: str | None
    global_id: str
    # The OpenLineage run id the instance was received with, when it came that way.
    run_id: str | None
    nodes: tuple[RunNode, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    events: list[Event]
    # By surrogate id; an instance deleted since its event is absent.
    instances: dict[int, RunInstance]
    # The last state the emitter sent per run of these instances.
    states: dict[RunKey, str]
    # Ids of events pruned from the log before the emitter read them (first, last), or None.
    skipped: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class CursorStatus:
    name: str
    position: int
    newest: int
    holder: str | None
    held_until: datetime | None
    updated_at: datetime


async def claim(engine: AsyncEngine, name: str, holder: str, lease: float) -> int | None:
    """The cursor `name` for `holder` (its position), or None while another process holds it.
    A new cursor starts before the oldest event the log keeps: everything kept is emitted."""
    oldest, _ = await events.bounds(engine)
    now = datetime.now(UTC)

    async def work(connection: AsyncConnection) -> int | None:
        return await storage_emit.take_cursor(
            connection,
            name,
            holder,
            now=now,
            until=now + timedelta(seconds=lease),
            start=max(0, oldest - 1),
        )

    return await storage_engine.write(engine, work)


async def advance(
    engine: AsyncEngine,
    name: str,
    holder: str,
    position: int,
    states: Mapping[RunKey, str],
    lease: float,
) -> bool:
    """Move the cursor and store the runs' states in one transaction; False (nothing written)
    when `holder` lost the cursor meanwhile."""
    now = datetime.now(UTC)

    async def work(connection: AsyncConnection) -> bool:
        moved = await storage_emit.move_cursor(
            connection, name, holder, position, now=now, until=now + timedelta(seconds=lease)
        )
        if moved:
            await storage_emit.write_run_states(connection, name, states)
        return moved

    return await storage_engine.write(engine, work)


async def release(engine: AsyncEngine, name: str, holder: str) -> None:
    async def work(connection: AsyncConnection) -> None:
        await storage_emit.release_cursor(connection, name, holder)

    await storage_engine.write(engine, work)


async def cursors(engine: AsyncEngine) -> list[CursorStatus]:
    _, newest = await events.bounds(engine)
    async with engine.connect() as connection:
        rows = await storage_emit.read_cursors(connection)
    return [
        CursorStatus(
            name=row.name,
            position=row.position,
            newest=newest,
            holder=row.holder,
            held_until=row.held_until,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


async def read_batch(
    engine: AsyncEngine,
    emitter: str,
    after: int,
    *,
    limit: int = events.READ_LIMIT,
    workspace: str | None = None,
) -> Batch:
    """The events after `after` (at most `limit`; of one workspace or all) with what they name."""
    oldest, _ = await events.bounds(engine)
    skipped = (after + 1, oldest - 1) if after < oldest - 1 else None
    page = await events.read_after(engine, after, workspace=workspace, limit=limit)
    by_workspace: dict[str, set[int]] = defaultdict(set)
    for event in page:
        by_workspace[event.workspace].add(event.instance_id)
    found: dict[int, RunInstance] = {}
    reader = Reader(engine)
    try:
        for name, keys in sorted(by_workspace.items()):
            rows = await instances.instances_by_ids(reader, name, sorted(keys))
            node_rows = await storage_emit.nodes_of_instances(
                reader, name, [(key, row.plan_time) for key, row in sorted(rows.items())]
            )
            spaces = await storage_emit.job_namespaces(reader, [r.job_id for r in rows.values()])
            for key, row in rows.items():
                namespace = spaces.get(row.job_id)
                found[key] = _instance(name, row, node_rows.get(key, []), namespace)
    finally:
        await reader.close()
    states: dict[RunKey, str] = {}
    if found:
        async with engine.connect() as connection:
            states = await storage_emit.read_run_states(connection, emitter, sorted(found))
    return Batch(events=page, instances=found, states=states, skipped=skipped)


def _instance(
    workspace: str, row: Row[Any], nodes: list[Row[Any]], job_namespace: str | None
) -> RunInstance:
    if any(getattr(row, field) is not None for field in _SCHEDULERX_FIELDS):
        source_api: str | None = "schedulerx"
    elif any(getattr(row, field) is not None for field in _FLINK_FIELDS):
        source_api = "flink"
    else:
        source_api = None
    return RunInstance(
        key=row.id,
        workspace=workspace,
        job_name=row.job_name,
        job_namespace=job_namespace,
        instance_id=row.vendor_instance_id,
        instance_type=row.instance_type,
        status=row.status,
        plan_time=row.plan_time,
        start_time=row.start_time,
        end_time=row.end_time,
        # Received over OpenLineage (`errorMessage`), else a source's runtime error.
        error_message=row.error_message or row.runtime_last_error_message,
        source_api=source_api,
        global_id=encode_global_id("Instance", row.id),
        run_id=row.run_id,
        nodes=tuple(
            RunNode(
                name=node.name,
                type=node.type,
                status=node.status,
                plan_time=node.plan_time,
                start_time=node.start_time,
                end_time=node.end_time,
            )
            for node in nodes
        ),
    )
