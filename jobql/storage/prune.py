"""Retention of instances (`jobql prune`): the instances planned before a cutoff are deleted with
their nodes, in batches of one write transaction each. Jobs stay.

What goes with an instance: its nodes (`instance_node`, deleted here first, by instance, so that
they are counted) and what the OpenLineage emitters remember of its runs (`emit_run_state`, by its
foreign key's ON DELETE CASCADE). The instance event log (`instance_event`, no foreign keys) keeps
its own retention (`events.prune`, by age and count): its rows record changes that did happen and
their ids are the positions readers resume from, while its readers (subscriptions, the emitter)
already leave out events whose instance is gone. Deleting events here would move the log's oldest
id and make cursors that are still good `cursor_expired`, for no gain: the log is short anyway.

Batches: one workspace at a time, oldest plan time first, along its (workspace_id, plan_time, id)
index, each batch resuming after the last key of the one before (deleted rows are not walked
again). Each batch is one `engine.write` (BEGIN IMMEDIATE on SQLite, started over when it loses a
lock), so a writer waits at most one batch. On PostgreSQL a batch locks its rows as it picks them
(FOR UPDATE): a row a concurrent write has meanwhile moved to a plan time at or after the cutoff
is checked again and left alone, and nothing changes the picked rows before they go.

SQLite ids: SQLite gives a new row the largest id in its table plus one (these tables have no
AUTOINCREMENT), so deleting the row with the largest id would hand that id out again, and an
`Instance` or `InstanceNode` global id that clients, the event log or a lineage tool still hold
would name another run. So on SQLite the instance with the largest id and the instance of the
node with the largest id stay, even when older than the cutoff (`PruneReport.held_back`); a later
prune takes them once newer rows exist. PostgreSQL's sequences never hand an id out twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, delete, func, literal, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobql.storage import engine as storage_engine
from jobql.storage import partitions
from jobql.storage.models import EmitRunState, Instance, InstanceKey, InstanceNode, Job, Workspace
from jobql.storage.types import truncate_ms

# Instances per transaction: a writer waits at most this long (about a second on SQLite).
BATCH_SIZE = 5_000
# Keys per IN list (SQLite caps bound parameters).
CHUNK = 500

# progress(done, total): instances deleted so far, of those older than the cutoff at the start.
Progress = Callable[[int, int], None]

_workspace = cast(Table, Workspace.__table__)
_instance = cast(Table, Instance.__table__)
_node = cast(Table, InstanceNode.__table__)
_run_state = cast(Table, EmitRunState.__table__)
_key = cast(Table, InstanceKey.__table__)
_job = cast(Table, Job.__table__)


class UnknownWorkspace(ValueError):
    """The workspace asked for does not exist."""


@dataclass(slots=True)
class WorkspacePruned:
    name: str
    instances: int = 0
    nodes: int = 0


@dataclass(slots=True)
class PruneReport:
    """What went (`dry_run`: what would go), per workspace in name order: those that had
    instances older than the cutoff, and the one asked for even without."""

    cutoff: datetime
    dry_run: bool
    workspaces: list[WorkspacePruned] = field(default_factory=list)
    # SQLite: instances older than the cutoff kept for their ids (see the module docstring).
    held_back: int = 0
    # PostgreSQL: the months whose partitions were dropped whole (included in the counts).
    dropped: list[tuple[int, int]] = field(default_factory=list)

    @property
    def instances(self) -> int:
        return sum(entry.instances for entry in self.workspaces)

    @property
    def nodes(self) -> int:
        return sum(entry.nodes for entry in self.workspaces)


@dataclass(frozen=True, slots=True)
class _Batch:
    instances: int
    nodes: int
    last: tuple[datetime, int]  # the (plan_time, id) the next batch starts after


async def prune(
    engine: AsyncEngine,
    cutoff: datetime,
    *,
    workspace: str | None = None,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> PruneReport:
    """Delete the instances planned before `cutoff` (to the millisecond, as times are kept),
    with their nodes, in every workspace or only `workspace`, `batch_size` instances per
    transaction; rows planned at or after the cutoff are never touched. `dry_run`: count only.
    Raises UnknownWorkspace for a workspace that does not exist."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    cutoff = truncate_ms(cutoff)
    async with engine.connect() as connection:
        targets = await _targets(connection, workspace)
        keep = await _kept_for_ids(connection)
        counts = {
            key: await _count(connection, key, cutoff, keep, nodes=dry_run)
            for key, _name in targets
        }
        held_back = (
            await _held_back(connection, [key for key, _ in targets], cutoff, keep)
            if dry_run
            else 0
        )
    chosen = [(key, name) for key, name in targets if counts[key][0] or name == workspace]
    if dry_run:
        workspaces = [WorkspacePruned(name, *counts[key]) for key, name in chosen]
        return PruneReport(cutoff, True, workspaces, held_back)

    report = PruneReport(cutoff, False)
    total = sum(counts[key][0] for key, _ in chosen)
    done = 0
    if progress is not None and total:
        progress(0, total)
    # PostgreSQL: when every workspace is pruned, the months wholly before the cutoff go as
    # whole partitions first, one month per transaction; the batches below take the rest (the
    # month the cutoff falls in, and DEFAULT).
    gone: dict[int, list[int]] = {}
    if workspace is None:
        async with engine.connect() as connection:
            whole = await _whole_months(connection, cutoff)
        for month in whole:
            counts_of = await storage_engine.write(engine, partial(_drop_month, month))
            report.dropped.append(month)
            for key, (instances, nodes) in counts_of.items():
                entry_counts = gone.setdefault(key, [0, 0])
                entry_counts[0] += instances
                entry_counts[1] += nodes
                done += instances
            if progress is not None and total:
                progress(done, max(total, done))
    for key, name in chosen:
        entry = WorkspacePruned(name, *gone.get(key, (0, 0)))
        report.workspaces.append(entry)
        async for batch in _batches(engine, key, cutoff, batch_size):
            entry.instances += batch.instances
            entry.nodes += batch.nodes
            done += batch.instances
            if progress is not None:
                progress(done, max(total, done))
    async with engine.connect() as connection:
        keep = await _kept_for_ids(connection)
        report.held_back = await _held_back(connection, [key for key, _ in targets], cutoff, keep)
    return report


async def _forget_keys(connection: AsyncConnection, workspace_id: int) -> None:
    """PostgreSQL: the `instance_key` rows of instances that are gone. A key a writer holds
    (SKIP LOCKED) stays: it may be writing that instance right now, and its lock is the key row's
    (a lock taken here, in another order than the writers', could deadlock with one). The keys
    are locked first, then deleted by a statement of their own that looks again: a writer that
    created a key's instance after the first statement began is seen there (the foreign key from
    `instance` would refuse the delete)."""
    i = _instance.alias("i")
    no_instance = ~(
        select(i.c.id)
        .where(i.c.job_id == _key.c.job_id, i.c.vendor_instance_id == _key.c.vendor_instance_id)
        .exists()
    )
    orphans = select(_key.c.job_id, _key.c.vendor_instance_id).where(
        no_instance,
        _key.c.job_id.in_(select(_job.c.id).where(_job.c.workspace_id == workspace_id)),
    )
    pair = tuple_(_key.c.job_id, _key.c.vendor_instance_id)
    after: tuple[int, int] | None = None
    while True:  # in key order, one pass over the workspace's keys
        statement = orphans if after is None else orphans.where(pair > tuple_(*after))
        found = [
            (int(job), int(vendor))
            for job, vendor in await connection.execute(
                statement.order_by(_key.c.job_id, _key.c.vendor_instance_id)
                .limit(FORGET_BATCH)
                .with_for_update(skip_locked=True)
            )
        ]
        if not found:
            return
        await connection.execute(delete(_key).where(pair.in_(found), no_instance))
        after = found[-1]


# Keys looked at and deleted per statement by `_forget_keys`.
FORGET_BATCH = 5_000


async def _batches(
    engine: AsyncEngine, workspace_id: int, cutoff: datetime, size: int
) -> AsyncIterator[_Batch]:
    """Delete the workspace's instances older than the cutoff, `size` per write transaction,
    oldest first; each batch once it has committed."""
    after: tuple[datetime, int] | None = None
    while True:
        batch = await storage_engine.write(
            engine, partial(_delete_batch, workspace_id, cutoff, after, size)
        )
        if batch is None:
            return
        yield batch
        after = batch.last


async def _whole_months(connection: AsyncConnection, cutoff: datetime) -> list[tuple[int, int]]:
    """PostgreSQL's months whose partitions end at or before the cutoff."""
    if not await partitions.is_partitioned(connection):
        return []
    return [
        month
        for month in await partitions.months(connection)
        if partitions.month_start(partitions.next_month(month)) <= cutoff
    ]


async def _drop_month(
    month: tuple[int, int], connection: AsyncConnection
) -> dict[int, tuple[int, int]]:
    """Drop one month's partitions of instance and instance_node, with the emitters' state of
    its instances; returns what went per workspace id. The nodes of an instance are in the same
    month's partition as their instance (`instance_plan_time`, kept equal by ingest)."""
    runs = partitions.partition_name("instance", month)
    steps = partitions.partition_name("instance_node", month)
    # Nothing may write to the month while it is counted and dropped.
    await connection.execute(text(f"LOCK TABLE {runs}, {steps} IN ACCESS EXCLUSIVE MODE"))
    counts: dict[int, tuple[int, int]] = {}
    instance_counts = await connection.execute(
        text(f"SELECT workspace_id, count(*) FROM {runs} GROUP BY workspace_id")
    )
    node_counts: dict[Any, Any] = dict(
        (
            await connection.execute(
                text(f"SELECT workspace_id, count(*) FROM {steps} GROUP BY workspace_id")
            )
        ).all()
    )
    for key, count in instance_counts.all():
        counts[int(key)] = (int(count), int(node_counts.pop(key, 0)))
    for key, count in node_counts.items():  # nodes without an instance: none by construction
        counts[int(key)] = (0, int(count))
    await connection.execute(
        text(f"DELETE FROM emit_run_state WHERE instance_id IN (SELECT id FROM {runs})")
    )
    await connection.execute(text(f"DROP TABLE {steps}"))
    await connection.execute(text(f"DROP TABLE {runs}"))
    return counts


async def _targets(connection: AsyncConnection, workspace: str | None) -> list[tuple[int, str]]:
    statement = select(_workspace.c.id, _workspace.c.name).order_by(_workspace.c.name)
    if workspace is not None:
        statement = statement.where(_workspace.c.name == workspace)
    rows = [(int(row.id), str(row.name)) for row in await connection.execute(statement)]
    if workspace is not None and not rows:
        raise UnknownWorkspace(f"there is no workspace named {workspace!r}")
    return rows


def _older(workspace_id: int, cutoff: datetime, keep: Sequence[int]) -> ColumnElement[bool]:
    condition = (_instance.c.workspace_id == workspace_id) & (_instance.c.plan_time < cutoff)
    if keep:
        condition &= _instance.c.id.not_in(keep)
    return condition


async def _count(
    connection: AsyncConnection,
    workspace_id: int,
    cutoff: datetime,
    keep: Sequence[int],
    *,
    nodes: bool,
) -> tuple[int, int]:
    """Instances older than the cutoff (and, `nodes`, their nodes) in one workspace."""
    older = _older(workspace_id, cutoff, keep)
    instances = await connection.scalar(select(func.count()).select_from(_instance).where(older))
    if not nodes:
        return int(instances or 0), 0
    node_count = await connection.scalar(
        select(func.count())
        .select_from(_node)
        .join(_instance, _instance.c.id == _node.c.instance_id)
        .where(older)
    )
    return int(instances or 0), int(node_count or 0)


async def _kept_for_ids(connection: AsyncConnection) -> tuple[int, ...]:
    """SQLite: the instance with the largest id and the instance of the node with the largest
    id, which must stay so that SQLite hands no id out twice (see the module docstring)."""
    if connection.dialect.name != "sqlite":
        return ()
    largest = await connection.scalar(select(func.max(_instance.c.id)))
    of_node = await connection.scalar(
        select(_node.c.instance_id).order_by(_node.c.id.desc()).limit(1)
    )
    return tuple(sorted({int(key) for key in (largest, of_node) if key is not None}))


async def _held_back(
    connection: AsyncConnection, workspace_ids: Sequence[int], cutoff: datetime, keep: Sequence[int]
) -> int:
    if not keep or not workspace_ids:
        return 0
    count = await connection.scalar(
        select(func.count())
        .select_from(_instance)
        .where(
            _instance.c.id.in_(keep),
            _instance.c.workspace_id.in_(workspace_ids),
            _instance.c.plan_time < cutoff,
        )
    )
    return int(count or 0)


async def _delete_batch(
    workspace_id: int,
    cutoff: datetime,
    after: tuple[datetime, int] | None,
    size: int,
    connection: AsyncConnection,
) -> _Batch | None:
    """Up to `size` of the workspace's oldest instances after `after`, with their nodes, in the
    caller's transaction; None when none is left."""
    keep = await _kept_for_ids(connection)
    statement = select(_instance.c.id, _instance.c.plan_time).where(
        _older(workspace_id, cutoff, keep)
    )
    if after is not None:
        key = tuple_(_instance.c.plan_time, _instance.c.id)
        statement = statement.where(
            key > tuple_(literal(after[0], type_=_instance.c.plan_time.type), after[1])
        )
    statement = (
        statement.order_by(_instance.c.plan_time, _instance.c.id).limit(size).with_for_update()
    )
    rows = (await connection.execute(statement)).all()
    if not rows:
        if connection.dialect.name == "postgresql":
            await _forget_keys(connection, workspace_id)
        return None
    ids = sorted(int(row.id) for row in rows)
    nodes = instances = 0
    for part in _chunks(ids):
        result = await connection.execute(delete(_node).where(_node.c.instance_id.in_(part)))
        nodes += _rowcount(result)
    for part in _chunks(ids):
        # PostgreSQL has no foreign key to the partitioned instance (docs/partitioning.md).
        await connection.execute(delete(_run_state).where(_run_state.c.instance_id.in_(part)))
        result = await connection.execute(delete(_instance).where(_instance.c.id.in_(part)))
        instances += _rowcount(result)
    return _Batch(instances, nodes, (rows[-1].plan_time, int(rows[-1].id)))


def _rowcount(result: Any) -> int:
    return int(result.rowcount or 0)


def _chunks(items: Sequence[int], size: int = CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = ["BATCH_SIZE", "PruneReport", "UnknownWorkspace", "WorkspacePruned", "prune"]
