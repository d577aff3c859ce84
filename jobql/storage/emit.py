"""The OpenLineage emitters' state: `emit_cursor` (where each emitter stands in the instance event
log, and which process holds it) and `emit_run_state` (the last state sent per run); and the nodes
of a batch's instances.

A cursor is held by one process at a time through a lease (`holder`, `held_until`): taken when it
is free or expired, renewed by each write of its holder, and the cursor only moves with a write
of its holder. Run states are written in the transaction that moves the cursor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from jobql.storage import nodes
from jobql.storage.engine import Reader
from jobql.storage.models import EmitCursor, EmitRunState, Instance, InstanceNode, Job

_cursor = cast(Table, EmitCursor.__table__)
_state = cast(Table, EmitRunState.__table__)
# Keys per IN list (SQLite caps bound parameters).
CHUNK = 500

RunKey = tuple[int, str]  # (instance surrogate id, node name; "" for the instance itself)


def _insert(connection: AsyncConnection, table: Table) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def take_cursor(
    connection: AsyncConnection,
    name: str,
    holder: str,
    *,
    now: datetime,
    until: datetime,
    start: int,
) -> int | None:
    """The cursor's position if `holder` holds it now (created at `start` when there is none),
    with its lease extended to `until`; None while another holder's lease runs."""
    await connection.execute(
        _insert(connection, _cursor)
        .values(name=name, position=start, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    result = await connection.execute(
        update(_cursor)
        .where(
            _cursor.c.name == name,
            or_(
                _cursor.c.holder.is_(None),
                _cursor.c.holder == holder,
                _cursor.c.held_until < now,
            ),
        )
        .values(holder=holder, held_until=until)
        .returning(_cursor.c.position)
    )
    position = result.scalar_one_or_none()
    return None if position is None else int(position)


async def move_cursor(
    connection: AsyncConnection,
    name: str,
    holder: str,
    position: int,
    *,
    now: datetime,
    until: datetime,
) -> bool:
    """Move the cursor to `position` and extend the lease, if `holder` still holds it."""
    result = await connection.execute(
        update(_cursor)
        .where(_cursor.c.name == name, _cursor.c.holder == holder)
        .values(position=position, held_until=until, updated_at=now)
    )
    return bool(result.rowcount)


async def release_cursor(connection: AsyncConnection, name: str, holder: str) -> None:
    await connection.execute(
        update(_cursor)
        .where(_cursor.c.name == name, _cursor.c.holder == holder)
        .values(holder=None, held_until=None)
    )


async def read_cursors(connection: AsyncConnection) -> list[Row[Any]]:
    """Every emitter's cursor, by name."""
    return list((await connection.execute(select(_cursor).order_by(_cursor.c.name))).all())


async def read_run_states(
    connection: AsyncConnection, emitter: str, instance_ids: Sequence[int]
) -> dict[RunKey, str]:
    """The last state `emitter` sent for each run of these instances (and their nodes)."""
    found: dict[RunKey, str] = {}
    keys = sorted(set(instance_ids))
    for start in range(0, len(keys), CHUNK):
        rows = await connection.execute(
            select(_state.c.instance_id, _state.c.node, _state.c.state).where(
                _state.c.instance_id.in_(keys[start : start + CHUNK]), _state.c.emitter == emitter
            )
        )
        found.update({(row.instance_id, row.node): row.state for row in rows})
    return found


async def write_run_states(
    connection: AsyncConnection, emitter: str, states: Mapping[RunKey, str]
) -> None:
    """Upsert each run's state, in key order. A run whose instance is gone meanwhile is skipped
    (its events went out; there is nothing left to remember)."""
    if not states:
        return
    keys = sorted(states)
    existing = await _existing_instances(connection, [key[0] for key in keys])
    rows = [
        {"emitter": emitter, "instance_id": key[0], "node": key[1], "state": states[key]}
        for key in keys
        if key[0] in existing
    ]
    if not rows:
        return
    statement = _insert(connection, _state)
    statement = statement.on_conflict_do_update(
        index_elements=["instance_id", "emitter", "node"],
        set_={"state": statement.excluded.state},
    )
    await connection.execute(statement, rows)


async def _existing_instances(connection: AsyncConnection, ids: Sequence[int]) -> set[int]:
    keys = sorted(set(ids))
    found: set[int] = set()
    for start in range(0, len(keys), CHUNK):
        rows = await connection.execute(
            select(Instance.id).where(Instance.id.in_(keys[start : start + CHUNK]))
        )
        found.update(row[0] for row in rows)
    return found


async def nodes_of_instances(
    reader: Reader, workspace: str, instances: Sequence[nodes.Parent]
) -> dict[int, list[Row[Any]]]:
    """Every node of each (instance id, plan time), by instance id, in the order the source
    listed them: one statement per CHUNK instances, reading only their months of nodes."""
    grouped: dict[int, list[Row[Any]]] = {key: [] for key, _ in instances}
    keys = sorted(set(instances))
    for start in range(0, len(keys), CHUNK):
        rows = await reader.execute(
            nodes.base_query(workspace)
            .where(*nodes.of_instances(keys[start : start + CHUNK]))
            .order_by(InstanceNode.instance_id, InstanceNode.position, InstanceNode.id)
        )
        for row in rows:
            grouped[row.instance_id].append(row)
    return grouped


async def job_namespaces(reader: Reader, job_ids: Sequence[int]) -> dict[int, str]:
    """The OpenLineage namespace of each job that came with one (POST /api/v1/lineage), by id:
    one statement per CHUNK jobs."""
    found: dict[int, str] = {}
    keys = sorted(set(job_ids))
    for start in range(0, len(keys), CHUNK):
        rows = await reader.execute(
            select(Job.id, Job.namespace).where(
                Job.id.in_(keys[start : start + CHUNK]), Job.namespace.is_not(None)
            )
        )
        found.update({row.id: row.namespace for row in rows})
    return found


__all__ = [
    "RunKey",
    "job_namespaces",
    "move_cursor",
    "nodes_of_instances",
    "read_cursors",
    "read_run_states",
    "release_cursor",
    "take_cursor",
    "write_run_states",
]
