"""Writing records: bulk upserts with the merge rules of API.md section 4.

Every write is `INSERT ... ON CONFLICT ... DO UPDATE SET <reported columns> ... WHERE <guard>`,
one statement per batch and record shape (the set of columns a source reported), so that a
column nobody reported is never overwritten, and a stale report never wins, even between
concurrent writers. Outcomes (CREATED, UPDATED, UNCHANGED, STALE) come from one read of the
stored rows before the write, in the same transaction.

Merging: a record with `reported_at` older than the stored one changes nothing (equal times:
the higher status rank wins). Without `reported_at` on both sides a terminal status is never
replaced by a non-terminal one; otherwise the later write wins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, case, delete, literal, not_, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from jobql.storage.enums import TERMINAL_INSTANCE_STATUSES, InstanceStatus
from jobql.storage.models import Instance, InstanceNode, Job, Workspace
from jobql.storage.records import (
    INSTANCE_REQUIRED,
    NODE_REQUIRED,
    InstanceRecord,
    JobRecord,
    NodeRecord,
)
from jobql.storage.types import truncate_ms


class Outcome(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    UNCHANGED = "UNCHANGED"
    STALE = "STALE"


@dataclass
class ItemError:
    code: str
    field: str | None
    message: str


@dataclass
class ItemResult:
    outcome: Outcome | None = None
    key: int | None = None  # surrogate id of the job or instance
    errors: list[ItemError] = field(default_factory=list)


TERMINAL = frozenset(status.name for status in TERMINAL_INSTANCE_STATUSES)
# Equal report times: the further along status wins (waiting < running < terminal).
STATUS_RANK = {
    status.name: 2 if status in TERMINAL_INSTANCE_STATUSES else 1 if "RUNNING" in status.name else 0
    for status in InstanceStatus
}
INSTANCE_DEFAULTS = {"instance_type": "GENERAL", "force_success": False, "ignore_success": False}

_instance = cast(Table, Instance.__table__)
_job = cast(Table, Job.__table__)
_node = cast(Table, InstanceNode.__table__)


def _insert(connection: AsyncConnection, table: Any) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _normal(value: Any) -> Any:
    return truncate_ms(value) if isinstance(value, datetime) else value


# --- workspaces ---------------------------------------------------------------------------------


async def workspace_ids(connection: AsyncConnection, names: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    await connection.execute(
        _insert(connection, Workspace.__table__).on_conflict_do_nothing(index_elements=["name"]),
        [{"name": name} for name in wanted],
    )
    rows = await connection.execute(
        select(Workspace.id, Workspace.name).where(Workspace.name.in_(wanted))
    )
    return {name: key for key, name in rows.all()}


# --- jobs ---------------------------------------------------------------------------------------


async def write_jobs(connection: AsyncConnection, records: Sequence[JobRecord]) -> list[ItemResult]:
    """Upsert jobs and (re)link sub-jobs; one result per record, in order."""
    spaces = await workspace_ids(connection, (r.workspace for r in records))
    keys = [(spaces[r.workspace], r.name) for r in records]
    existing = await _jobs_by_key(connection, keys)
    results = [ItemResult() for _ in records]
    changed: list[tuple[int, JobRecord]] = []
    for index, (record, key) in enumerate(zip(records, keys, strict=True)):
        stored = existing.get(key)
        if stored is None:
            results[index].outcome = Outcome.CREATED
            changed.append((index, record))
        elif any(_normal(v) != stored[c] for c, v in record.values.items()):
            results[index].outcome = Outcome.UPDATED
            changed.append((index, record))
        else:
            results[index].outcome = Outcome.UNCHANGED
    by_shape: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for index, record in changed:
        row = {"workspace_id": keys[index][0], "name": record.name, "type": "BATCH"}
        row.update(record.values)
        by_shape[frozenset(record.values)].append(row)
    for shape, rows in by_shape.items():
        statement = _insert(connection, _job)
        statement = (
            statement.on_conflict_do_update(
                index_elements=["workspace_id", "name"],
                set_={column: statement.excluded[column] for column in shape},
            )
            if shape
            else statement.on_conflict_do_nothing(index_elements=["workspace_id", "name"])
        )
        await connection.execute(statement, rows)
    ids = await _jobs_by_key(connection, keys)
    for index, key in enumerate(keys):
        results[index].key = ids[key]["id"]
    await _link_explicit_parents(connection, records, keys, ids, results)
    await link_sub_jobs(
        connection, {key for key, r in zip(keys, records, strict=True) if r.parent_name is None}
    )
    return results


async def _jobs_by_key(
    connection: AsyncConnection, keys: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], dict[str, Any]]:
    if not keys:
        return {}
    rows = await connection.execute(
        select(_job).where(tuple_(_job.c.workspace_id, _job.c.name).in_(sorted(set(keys))))
    )
    return {(row.workspace_id, row.name): dict(row._mapping) for row in rows}


async def _link_explicit_parents(
    connection: AsyncConnection,
    records: Sequence[JobRecord],
    keys: Sequence[tuple[int, str]],
    ids: dict[tuple[int, str], dict[str, Any]],
    results: list[ItemResult],
) -> None:
    wanted = {(keys[i][0], r.parent_name) for i, r in enumerate(records) if r.parent_name}
    if not wanted:
        return
    parents = await _jobs_by_key(connection, list(wanted))
    for index, record in enumerate(records):
        if not record.parent_name:
            continue
        parent = parents.get((keys[index][0], record.parent_name))
        if parent is None:
            results[index].errors.append(
                ItemError(
                    "UNKNOWN_PARENT",
                    "parentName",
                    f"No job named {record.parent_name!r} in workspace {record.workspace!r}.",
                )
            )
            continue
        prefix = f"{record.parent_name}_"
        node_name = record.values.get("parent_node_name") or (
            record.name[len(prefix) :] if record.name.startswith(prefix) else None
        )
        await connection.execute(
            _job.update()
            .where(_job.c.id == ids[keys[index]]["id"])
            .values(parent_id=parent["id"], parent_node_name=node_name)
        )
        # Linking a sub-job makes its parent a real-time job.
        await connection.execute(
            _job.update().where(_job.c.id == parent["id"]).values(type="REALTIME")
        )


async def link_sub_jobs(connection: AsyncConnection, keys: set[tuple[int, str]]) -> None:
    """Link `<P>_<node>` jobs to the longest real-time P, for these jobs and for the children of
    those of them that are real-time."""
    if not keys:
        return
    candidates = dict.fromkeys(keys)
    realtime = await connection.execute(
        select(_job.c.workspace_id, _job.c.name).where(
            tuple_(_job.c.workspace_id, _job.c.name).in_(sorted(keys)),
            _job.c.type == "REALTIME",
        )
    )
    for workspace_id, name in realtime.all():
        pattern = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "\\_%"
        children = await connection.execute(
            select(_job.c.name).where(
                _job.c.workspace_id == workspace_id,
                _job.c.name.like(pattern, escape="\\"),
            )
        )
        candidates.update(dict.fromkeys((workspace_id, child) for (child,) in children.all()))
    prefixes = {
        (workspace_id, name[:cut])
        for workspace_id, name in candidates
        for cut in range(len(name))
        if name[cut] == "_" and cut > 0
    }
    if not prefixes:
        return
    parents = await connection.execute(
        select(_job.c.workspace_id, _job.c.name, _job.c.id).where(
            tuple_(_job.c.workspace_id, _job.c.name).in_(sorted(prefixes)),
            _job.c.type == "REALTIME",
        )
    )
    parent_ids = {(w, n): key for w, n, key in parents.all()}
    current = await _jobs_by_key(connection, list(candidates))
    for (workspace_id, name), row in current.items():
        best = max(
            (p for (w, p) in parent_ids if w == workspace_id and name.startswith(p + "_")),
            key=len,
            default=None,
        )
        if best is None or row["parent_id"] is not None:
            continue
        await connection.execute(
            _job.update()
            .where(_job.c.id == row["id"])
            .values(
                parent_id=parent_ids[(workspace_id, best)],
                parent_node_name=name[len(best) + 1 :],
            )
        )


# --- instances ----------------------------------------------------------------------------------


def _stale_condition(shape: frozenset[str], incoming: Any) -> ColumnElement[bool]:
    """True when the incoming row (`excluded`) must not overwrite the stored one: the SQL side
    of `_is_stale`, evaluated again at write time against concurrent writers."""
    stored = _instance.c
    conditions: list[ColumnElement[bool]] = []
    if "reported_at" in shape:
        older = incoming.reported_at < stored.reported_at
        if "status" in shape:
            older = or_(
                older,
                and_(
                    incoming.reported_at == stored.reported_at,
                    _rank(incoming.status) < _rank(stored.status),
                ),
            )
        conditions.append(and_(stored.reported_at.is_not(None), older))
    if "status" in shape:
        unordered = (
            stored.reported_at.is_(None)
            if "reported_at" in shape
            else literal(True)  # the incoming record has no report time
        )
        # Rank 2 is exactly the terminal statuses (no IN lists: they cannot be executemany'd).
        conditions.append(and_(unordered, _rank(stored.status) == 2, _rank(incoming.status) < 2))
    return or_(*conditions) if conditions else literal(False)


def _rank(column: Any) -> ColumnElement[int]:
    return case(STATUS_RANK, value=column, else_=0)


def _is_stale(record: InstanceRecord, stored: dict[str, Any]) -> bool:
    status = record.values.get("status")
    if record.reported_at is not None and stored["reported_at"] is not None:
        incoming, known = truncate_ms(record.reported_at), stored["reported_at"]
        if incoming != known:
            return bool(incoming < known)
        return status is not None and STATUS_RANK[status] < STATUS_RANK[stored["status"]]
    return bool(status is not None and stored["status"] in TERMINAL and status not in TERMINAL)


async def write_instances(
    connection: AsyncConnection,
    records: Sequence[InstanceRecord],
    *,
    create_jobs: bool = True,
) -> list[ItemResult]:
    """Upsert instances with their nodes; one result per record, in order. Records with errors
    are not written; the others are, in this transaction."""
    results = [ItemResult() for _ in records]
    job_records = [
        JobRecord(r.workspace, r.job_name, dict(r.job_values), source=r.source) for r in records
    ]
    spaces = await workspace_ids(connection, (r.workspace for r in records))
    job_keys = [(spaces[r.workspace], r.job_name) for r in records]
    known_jobs = await _jobs_by_key(connection, job_keys)
    if create_jobs:
        await write_jobs(connection, _unique_jobs(job_records))
        known_jobs = await _jobs_by_key(connection, job_keys)
    else:
        for index, key in enumerate(job_keys):
            if key not in known_jobs:
                results[index].errors.append(
                    ItemError(
                        "UNKNOWN_JOB",
                        "jobName",
                        f"No job named {records[index].job_name!r} in workspace "
                        f"{records[index].workspace!r}, and jobs are not created automatically.",
                    )
                )
        present = [r for r, key in zip(job_records, job_keys, strict=True) if key in known_jobs]
        if present:
            await write_jobs(connection, _unique_jobs(present))

    keys: list[tuple[int, int] | None] = [
        (known_jobs[k]["id"], r.instance_id) if k in known_jobs else None
        for r, k in zip(records, job_keys, strict=True)
    ]
    stored = await _instances_by_key(connection, [k for k in keys if k is not None])
    stored_nodes = await _nodes_of(
        connection,
        [
            stored[k]["id"]
            for k, r in zip(keys, records, strict=True)
            if k is not None and k in stored and r.nodes is not None
        ],
    )
    to_write: list[int] = []
    for index, (record, instance_key) in enumerate(zip(records, keys, strict=True)):
        result = results[index]
        if result.errors or instance_key is None:
            continue
        row = stored.get(instance_key)
        if row is None:
            missing = sorted(INSTANCE_REQUIRED - record.values.keys())
            for name in missing:
                result.errors.append(
                    ItemError(
                        "MISSING_FIELD",
                        name,
                        f"A new instance needs {name}; {record.source or 'the record'} has none.",
                    )
                )
            _check_nodes(record, result)
            if not result.errors:
                result.outcome = Outcome.CREATED
                to_write.append(index)
            continue
        result.key = row["id"]
        _check_nodes(record, result, stored_names=set(stored_nodes.get(row["id"], {})))
        if result.errors:
            continue
        if _is_stale(record, row):
            result.outcome = Outcome.STALE
        elif _differs(record, row) or _nodes_differ(record, stored_nodes.get(row["id"], {})):
            result.outcome = Outcome.UPDATED
            to_write.append(index)
        else:
            result.outcome = Outcome.UNCHANGED

    writes = [(keys[i], records[i], spaces[records[i].workspace]) for i in to_write]
    ids = await _upsert_instances(connection, writes)  # type: ignore[arg-type]
    for index in to_write:
        written = keys[index]
        if written in ids:
            results[index].key = ids[written]
        else:  # a concurrent writer got there first with a newer report
            results[index].outcome = Outcome.STALE
    await _replace_nodes(
        connection,
        [
            (ids[keys[i]], records[i], spaces[records[i].workspace])  # type: ignore[index]
            for i in to_write
            if records[i].nodes is not None and keys[i] in ids
        ],
    )
    return results


def _unique_jobs(records: Sequence[JobRecord]) -> list[JobRecord]:
    merged: dict[tuple[str, str], JobRecord] = {}
    for record in records:
        key = (record.workspace, record.name)
        if key in merged:
            merged[key].values.update(record.values)
        else:
            merged[key] = JobRecord(record.workspace, record.name, dict(record.values))
    return list(merged.values())


def _check_nodes(
    record: InstanceRecord, result: ItemResult, stored_names: set[str] | None = None
) -> None:
    if record.nodes is None:
        return
    seen: set[str] = set()
    for position, node in enumerate(record.nodes):
        if node.name in seen:
            result.errors.append(
                ItemError(
                    "DUPLICATE_KEY",
                    f"nodes[{position}].name",
                    f"Node {node.name!r} is listed twice.",
                )
            )
        seen.add(node.name)
        is_new = stored_names is None or node.name not in stored_names
        for name in sorted(NODE_REQUIRED - node.values.keys()) if is_new else ():
            result.errors.append(
                ItemError("MISSING_FIELD", f"nodes[{position}].{name}", f"A new node needs {name}.")
            )


def _differs(record: InstanceRecord, row: dict[str, Any]) -> bool:
    if record.reported_at is not None and truncate_ms(record.reported_at) != row["reported_at"]:
        return True
    return any(_normal(value) != row[column] for column, value in record.values.items())


def _nodes_differ(record: InstanceRecord, stored: dict[str, dict[str, Any]]) -> bool:
    if record.nodes is None:
        return False
    if [n.name for n in record.nodes] != list(stored):
        return True
    return any(
        _normal(value) != stored[node.name][column]
        for node in record.nodes
        for column, value in node.values.items()
    )


async def _instances_by_key(
    connection: AsyncConnection, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], dict[str, Any]]:
    if not keys:
        return {}
    rows = await connection.execute(
        select(_instance).where(
            tuple_(_instance.c.job_id, _instance.c.vendor_instance_id).in_(sorted(set(keys)))
        )
    )
    return {(row.job_id, row.vendor_instance_id): dict(row._mapping) for row in rows}


async def _nodes_of(
    connection: AsyncConnection, instance_ids: Sequence[int]
) -> dict[int, dict[str, dict[str, Any]]]:
    """Stored nodes per instance, by name, in position order."""
    if not instance_ids:
        return {}
    rows = await connection.execute(
        select(_node)
        .where(_node.c.instance_id.in_(sorted(set(instance_ids))))
        .order_by(_node.c.instance_id, _node.c.position, _node.c.id)
    )
    nodes: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        nodes[row.instance_id][row.name] = dict(row._mapping)
    return nodes


async def _upsert_instances(
    connection: AsyncConnection, items: Sequence[tuple[tuple[int, int], InstanceRecord, int]]
) -> dict[tuple[int, int], int]:
    by_shape: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for (job_id, instance_id), record, workspace_id in items:
        row = {
            **INSTANCE_DEFAULTS,
            **record.values,
            "workspace_id": workspace_id,
            "job_id": job_id,
            "vendor_instance_id": instance_id,
        }
        reported = set(record.values)
        if record.reported_at is not None:
            row["reported_at"] = record.reported_at
            reported.add("reported_at")
        by_shape[frozenset(reported)].append(row)
    ids: dict[tuple[int, int], int] = {}
    for shape, rows in by_shape.items():
        # Every row of one statement must carry the same columns.
        columns = set().union(*(row.keys() for row in rows))
        rows = [{column: row.get(column) for column in columns} for row in rows]
        statement = _insert(connection, _instance)
        statement = statement.on_conflict_do_update(
            index_elements=["job_id", "vendor_instance_id"],
            set_={column: statement.excluded[column] for column in shape},
            where=not_(_stale_condition(shape, statement.excluded)),
        ).returning(_instance.c.id, _instance.c.job_id, _instance.c.vendor_instance_id)
        result = await connection.execute(statement, rows)
        ids.update({(job_id, vid): key for key, job_id, vid in result.all()})
    return ids


async def _replace_nodes(
    connection: AsyncConnection, items: Sequence[tuple[int, InstanceRecord, int]]
) -> None:
    """Nodes as listed: upserted by name with their position; nodes no longer listed go."""
    if not items:
        return
    keep = [(key, node.name) for key, record, _ in items for node in record.nodes or ()]
    gone = delete(_node).where(_node.c.instance_id.in_([key for key, _, _ in items]))
    if keep:
        gone = gone.where(tuple_(_node.c.instance_id, _node.c.name).not_in(keep))
    await connection.execute(gone)
    by_shape: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for key, record, workspace_id in items:
        for position, node in enumerate(record.nodes or ()):
            by_shape[frozenset(node.values)].append(_node_row(key, workspace_id, position, node))
    for shape, rows in by_shape.items():
        statement = _insert(connection, _node)
        statement = statement.on_conflict_do_update(
            index_elements=["instance_id", "name"],
            set_={c: statement.excluded[c] for c in {*shape, "position"}},
        )
        await connection.execute(statement, rows)


def _node_row(key: int, workspace_id: int, position: int, node: NodeRecord) -> dict[str, Any]:
    # type and status stand in only for the insert of a new node (which must report them).
    row: dict[str, Any] = {"type": "", "status": "", **node.values}
    row.update(workspace_id=workspace_id, instance_id=key, position=position, name=node.name)
    return row


__all__ = ["ItemError", "ItemResult", "Outcome", "write_instances", "write_jobs"]
