"""Writing records: bulk upserts with the merge rules of API.md section 4.

Every write is `INSERT ... ON CONFLICT ... DO UPDATE SET <reported columns> WHERE <guard>`,
one statement per batch and record shape (the set of columns a source reported), so that a
column nobody reported is never overwritten and a stale report never wins, also between
concurrent writers. Rows go in the order of their unique key, so that two writers never wait for
each other in opposite orders (deadlocks). Outcomes (CREATED, UPDATED, UNCHANGED, STALE) come
from one read of the stored rows before the write, corrected by what the write itself reports.

Merging: a record whose `reported_at` is older than the stored one changes nothing (equal times:
the further-along status wins). When either side has no report time, a terminal status is never
replaced by a non-terminal one; otherwise the later write wins. An invalid record (missing a
field a new row needs, a value too long for its column, a duplicate node, an unknown parent or
job) writes nothing at all, not even its job.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from jobql.storage import events
from jobql.storage.enums import TERMINAL_INSTANCE_STATUSES, InstanceEventKind, InstanceStatus
from jobql.storage.models import Instance, InstanceKey, InstanceNode, Job, Workspace
from jobql.storage.records import (
    INSTANCE_REQUIRED,
    NODE_REQUIRED,
    InstanceRecord,
    JobRecord,
    NodeRecord,
)
from jobql.storage.types import truncate_ms

T = TypeVar("T")


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
# Equal report times: the further-along status wins (waiting < running < terminal).
STATUS_RANK = {
    status.name: 2 if status in TERMINAL_INSTANCE_STATUSES else 1 if "RUNNING" in status.name else 0
    for status in InstanceStatus
}
INSTANCE_DEFAULTS = {"instance_type": "GENERAL", "force_success": False, "ignore_success": False}
# Keys per IN list or per statement of a set-based step: far below every driver's limits.
CHUNK = 500

_workspace = cast(Table, Workspace.__table__)
_instance = cast(Table, Instance.__table__)
_job = cast(Table, Job.__table__)
_node = cast(Table, InstanceNode.__table__)
_key = cast(Table, InstanceKey.__table__)


def _insert_for(dialect_name: str, table: Table) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table)


# The upserts are built once per dialect and shape (the reported columns): building one (its
# `excluded` alias above all) costs more Python than executing it.
_statements = functools.lru_cache(maxsize=512)


def _normal(value: Any) -> Any:
    return truncate_ms(value) if isinstance(value, datetime) else value


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Look-ups of one key (a single report: the common case), built once with bind parameters. A
# statement built per call costs more Python than its execution: its construction, its cache
# key, the expansion of its IN list, its result's metadata. More keys are an IN list.
_WORKSPACE_NAMED = select(_workspace.c.id, _workspace.c.name).where(
    _workspace.c.name == bindparam("name")
)
_JOB_BY_KEY = select(_job).where(
    _job.c.workspace_id == bindparam("workspace_id"), _job.c.name == bindparam("name")
)
# A single report's workspace, job and (SQLite) stored instance in one statement, the instance's
# columns prefixed.
STORED = "stored_"
KEY_LOCKED = "key_locked"
KEY_CREATED = "key_created"
KEY_INSTANCE = "key_instance_id"
KEY_PLAN = "key_plan_time"


class Place(NamedTuple):
    """PostgreSQL: what a locked `instance_key` row says of its instance (models.InstanceKey):
    `new`, the row was created by this writer, so there is no instance yet; else the instance's
    id and plan time as the last writer left them (None: not said; the table is read)."""

    new: bool
    id: int | None = None
    plan_time: datetime | None = None


def _workspace_job_and_instance(dialect_name: str) -> Any:
    condition = and_(
        _instance.c.job_id == _job.c.id,
        _instance.c.vendor_instance_id == bindparam("vendor_instance_id"),
    )
    joined = _workspace.outerjoin(
        _job, and_(_job.c.workspace_id == _workspace.c.id, _job.c.name == bindparam("job_name"))
    )
    if dialect_name == "postgresql":
        # Not the instance: it is read once its key is locked. Locked here, before the key, it
        # would be locked in the other order than a writer that holds the key takes it (a
        # deadlock), and a writer that created it meanwhile would go unseen. The key is created
        # and locked here (as `_lock_keys` does, in one statement instead of two): `KEY_LOCKED`
        # says whether it was; 0 when another writer created it after this statement's snapshot
        # (it then waited for that writer, and `_lock_keys` locks it).
        target = (
            select(_workspace.c.id.label("workspace_key"), _job)
            .select_from(joined)
            .where(_workspace.c.name == bindparam("workspace_name"))
            .cte("target")
        )
        vendor_id: Any = bindparam("vendor_instance_id")
        created = (
            postgresql.insert(_key)
            .from_select(
                ["job_id", "vendor_instance_id"],
                select(target.c.id, vendor_id).where(target.c.id.is_not(None)),
            )
            .on_conflict_do_nothing()
            .returning(_key.c.job_id)
            .cte("created")
        )
        locked = (
            select(_key.c.job_id, _key.c.instance_id, _key.c.plan_time)
            .join(target, _key.c.job_id == target.c.id)
            .where(_key.c.vendor_instance_id == vendor_id)
            .with_for_update(of=_key)
            .cte("locked")
        )
        new = select(func.count()).select_from(created).scalar_subquery()
        counted = new + select(func.count()).select_from(locked).scalar_subquery()
        return select(
            *target.c,
            counted.label(KEY_LOCKED),
            new.label(KEY_CREATED),
            select(locked.c.instance_id).scalar_subquery().label(KEY_INSTANCE),
            select(locked.c.plan_time).scalar_subquery().label(KEY_PLAN),
        )
    joined = joined.outerjoin(_instance, condition)
    return (
        select(
            _workspace.c.id.label("workspace_key"),
            _job,
            *(column.label(f"{STORED}{column.name}") for column in _instance.c),
        )
        .select_from(joined)
        .where(_workspace.c.name == bindparam("workspace_name"))
    )


_WORKSPACE_JOB_AND_INSTANCE = {
    name: _workspace_job_and_instance(name) for name in ("postgresql", "sqlite")
}
_INSTANCE_BY_KEY = select(_instance).where(
    _instance.c.job_id == bindparam("job_id"),
    _instance.c.vendor_instance_id == bindparam("vendor_instance_id"),
)
_INSTANCE_BY_KEY_LOCKED = _INSTANCE_BY_KEY.with_for_update()
# PostgreSQL: an instance where its key row says it is; the plan time keeps the read to one
# month's partition (planned for it: the other months are pruned before they are planned).
_INSTANCE_PLACED = (
    select(_instance)
    .where(_instance.c.id == bindparam("id"), _instance.c.plan_time == bindparam("plan_time"))
    .with_for_update()
)
_NODES_OF_INSTANCE = (
    select(_node)
    .where(
        _node.c.instance_id == bindparam("instance_id"),
        _node.c.instance_plan_time == bindparam("plan_time"),
    )
    .order_by(_node.c.instance_id, _node.c.position, _node.c.id)
)


def _max_lengths(table: Table) -> dict[str, int]:
    return {
        column.name: column.type.length
        for column in table.columns
        if isinstance(column.type, String) and column.type.length
    }


MAX_LENGTH = {
    "workspace": _max_lengths(_workspace),
    "job": _max_lengths(_job),
    "instance": _max_lengths(_instance),
    "node": _max_lengths(_node),
}


def _too_long(table: str, values: dict[str, Any], prefix: str = "") -> list[ItemError]:
    limits = MAX_LENGTH[table]
    return [
        ItemError(
            "INVALID_VALUE",
            f"{prefix}{column}",
            f"{prefix}{column} is longer than {limits[column]} characters.",
        )
        for column, value in values.items()
        if column in limits and isinstance(value, str) and len(value) > limits[column]
    ]


# --- workspaces ---------------------------------------------------------------------------------


async def workspace_ids(connection: AsyncConnection, names: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    found = await _workspaces_named(connection, wanted)
    missing = [name for name in wanted if name not in found]
    if missing:  # new workspaces: created (by whichever writer comes first), then read
        await connection.execute(
            _workspace_insert(connection.dialect.name), [{"name": name} for name in missing]
        )
        found.update(await _workspaces_named(connection, missing))
    return found


async def _workspaces_named(connection: AsyncConnection, names: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in _chunks(names):
        if len(part) == 1:
            rows = await connection.execute(_WORKSPACE_NAMED, {"name": part[0]})
        else:
            rows = await connection.execute(
                select(_workspace.c.id, _workspace.c.name).where(_workspace.c.name.in_(part))
            )
        found.update({name: key for key, name in rows.all()})
    return found


def _workspace_errors(name: str) -> list[ItemError]:
    return _too_long("workspace", {"name": name}, prefix="workspace.")


# --- jobs ---------------------------------------------------------------------------------------


@_statements
def _workspace_insert(dialect_name: str) -> Any:
    return _insert_for(dialect_name, _workspace).on_conflict_do_nothing(index_elements=["name"])


async def write_jobs(connection: AsyncConnection, records: Sequence[JobRecord]) -> list[ItemResult]:
    """Upsert jobs and their sub-job links; one result per record, in order."""
    results = [ItemResult(errors=_job_errors(record)) for record in records]
    spaces = await workspace_ids(
        connection, (r.workspace for r, res in zip(records, results, strict=True) if not res.errors)
    )
    keys = [(spaces.get(r.workspace, 0), r.name) for r in records]
    wanted_parents = [
        (keys[i][0], r.parent_name) for i, r in enumerate(records) if r.parent_name is not None
    ]
    existing = await _jobs_by_key(connection, [*keys, *wanted_parents])
    batch = {keys[i] for i, res in enumerate(results) if not res.errors}
    _check_parents(records, keys, existing, batch, results)

    changed: list[int] = []
    for index, (record, key) in enumerate(zip(records, keys, strict=True)):
        result = results[index]
        if result.errors:
            continue
        stored = existing.get(key)
        if stored is None:
            result.outcome = Outcome.CREATED
        elif any(_normal(v) != stored[c] for c, v in record.values.items()) or (
            record.parent_name is not None and not _same_parent(record, stored, existing, key)
        ):
            result.outcome = Outcome.UPDATED
        else:
            result.outcome = Outcome.UNCHANGED
            continue
        changed.append(index)

    await _upsert_jobs(connection, [(keys[i], records[i]) for i in changed])
    written = [keys[i] for i, res in enumerate(results) if not res.errors]
    ids = await _jobs_by_key(connection, [*written, *wanted_parents])
    for index, key in enumerate(keys):
        if not results[index].errors:
            results[index].key = ids[key]["id"]
    explicit = [(keys[i], records[i]) for i in changed if records[i].parent_name is not None]
    new_parents = await _link_explicit_parents(connection, explicit, ids)
    became_realtime = {
        keys[i]
        for i in changed
        if records[i].values.get("type") == "REALTIME"
        and (existing.get(keys[i]) or {}).get("type") != "REALTIME"
    }
    await link_sub_jobs(
        connection,
        candidates={keys[i] for i in changed if records[i].parent_name is None},
        parents=became_realtime | new_parents,
    )
    await _keep_parents_realtime(connection, [ids[keys[i]]["id"] for i in changed])
    return results


def _job_errors(record: JobRecord) -> list[ItemError]:
    errors = _workspace_errors(record.workspace)
    errors += _too_long("job", {"name": record.name, **record.values})
    if record.parent_name is not None and len(record.parent_name) > MAX_LENGTH["job"]["name"]:
        errors.append(ItemError("INVALID_VALUE", "parentName", "parentName is too long."))
    return errors


def _check_parents(
    records: Sequence[JobRecord],
    keys: Sequence[tuple[int, str]],
    existing: dict[tuple[int, str], dict[str, Any]],
    batch: set[tuple[int, str]],
    results: list[ItemResult],
) -> None:
    """Unknown parents and cycles are item errors, found before anything is written."""
    declared = {keys[i]: r.parent_name for i, r in enumerate(records) if r.parent_name is not None}
    by_id = {row["id"]: name for (_, name), row in existing.items()}
    for index, record in enumerate(records):
        if record.parent_name is None or results[index].errors:
            continue
        workspace_id = keys[index][0]
        parent = (workspace_id, record.parent_name)
        if parent not in existing and parent not in batch:
            results[index].errors.append(
                ItemError(
                    "UNKNOWN_PARENT",
                    "parentName",
                    f"No job named {record.parent_name!r} in workspace {record.workspace!r}.",
                )
            )
            continue
        # Walk up from the parent (declared links first, then stored ones): back here is a cycle.
        seen = {keys[index]}
        current: tuple[int, str] | None = parent
        while current is not None and current not in seen:
            seen.add(current)
            if current in declared:
                current = (workspace_id, declared[current] or "")
            else:
                stored_parent = (existing.get(current) or {}).get("parent_id")
                name = by_id.get(stored_parent) if stored_parent is not None else None
                current = (workspace_id, name) if name is not None else None
        if current is not None:
            results[index].errors.append(
                ItemError(
                    "INVALID_VALUE",
                    "parentName",
                    f"Making {record.parent_name!r} the parent of {record.name!r} is a cycle.",
                )
            )
    # A parent that exists only as an item of this batch lands only if that item does: refuse
    # the children of refused items, until nothing changes (found by tests/test_fuzz.py).
    refused = True
    while refused:
        refused = False
        failed = {keys[i] for i, result in enumerate(results) if result.errors}
        for index, record in enumerate(records):
            if record.parent_name is None or results[index].errors:
                continue
            parent = (keys[index][0], record.parent_name)
            if parent not in existing and parent in failed:
                results[index].errors.append(
                    ItemError(
                        "UNKNOWN_PARENT",
                        "parentName",
                        f"The parent {record.parent_name!r} is not written: its own item in "
                        "this batch was refused.",
                    )
                )
                refused = True


def _same_parent(
    record: JobRecord,
    stored: dict[str, Any],
    existing: dict[tuple[int, str], dict[str, Any]],
    key: tuple[int, str],
) -> bool:
    parent = existing.get((key[0], record.parent_name or ""))
    return (
        parent is not None
        and stored["parent_id"] == parent["id"]
        and stored["parent_explicit"]
        and stored["parent_node_name"] == _node_name(record)
    )


def _node_name(record: JobRecord) -> str | None:
    prefix = f"{record.parent_name}_"
    explicit: str | None = record.values.get("parent_node_name")
    if explicit is not None:
        return explicit
    return record.name[len(prefix) :] if record.name.startswith(prefix) else None


async def _upsert_jobs(
    connection: AsyncConnection, items: Sequence[tuple[tuple[int, str], JobRecord]]
) -> None:
    by_shape: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for (workspace_id, name), record in sorted(items, key=lambda item: item[0]):
        row = {"workspace_id": workspace_id, "name": name, "type": "BATCH", **record.values}
        by_shape[frozenset(record.values)].append(row)
    for shape, rows in by_shape.items():
        await connection.execute(_job_upsert(connection.dialect.name, shape), rows)


@_statements
def _job_upsert(dialect_name: str, shape: frozenset[str]) -> Any:
    statement = _insert_for(dialect_name, _job)
    if not shape:
        return statement.on_conflict_do_nothing(index_elements=["workspace_id", "name"])
    return statement.on_conflict_do_update(
        index_elements=["workspace_id", "name"],
        set_={column: statement.excluded[column] for column in shape},
    )


async def _jobs_by_key(
    connection: AsyncConnection, keys: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], dict[str, Any]]:
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for part in _chunks(sorted(set(keys))):
        if len(part) == 1:
            [(workspace_id, name)] = part
            rows = await connection.execute(
                _JOB_BY_KEY, {"workspace_id": workspace_id, "name": name}
            )
        else:
            rows = await connection.execute(
                select(_job).where(tuple_(_job.c.workspace_id, _job.c.name).in_(part))
            )
        found.update({(row.workspace_id, row.name): dict(row._mapping) for row in rows})
    return found


# One statement for many links (executemany); bind names differ from the column names.
_LINK = (
    update(_job)
    .where(_job.c.id == bindparam("link_key"))
    .values(parent_id=bindparam("link_parent"), parent_node_name=bindparam("link_node"))
)


def _by_key(link: Mapping[str, Any]) -> int:
    return int(link["link_key"])


async def _link_explicit_parents(
    connection: AsyncConnection,
    items: Sequence[tuple[tuple[int, str], JobRecord]],
    ids: dict[tuple[int, str], dict[str, Any]],
) -> set[tuple[int, str]]:
    """Set explicit links; their parents become real-time. Returns the parents that just did."""
    links = [
        {
            "link_key": ids[key]["id"],
            "link_parent": ids[(key[0], record.parent_name or "")]["id"],
            "link_node": _node_name(record),
        }
        for key, record in items
    ]
    if not links:
        return set()
    await connection.execute(_LINK.values(parent_explicit=True), sorted(links, key=_by_key))
    parents = {(key[0], record.parent_name or "") for key, record in items}
    turned = {p for p in parents if ids[p]["type"] != "REALTIME"}
    for part in _chunks(sorted(ids[p]["id"] for p in turned)):
        await connection.execute(update(_job).where(_job.c.id.in_(part)).values(type="REALTIME"))
    return turned


async def _keep_parents_realtime(connection: AsyncConnection, job_ids: Sequence[int]) -> None:
    """A job with sub-jobs stays real-time, whatever a later report says about its type."""
    child = _job.alias("child")
    for part in _chunks(sorted(job_ids)):
        await connection.execute(
            update(_job)
            .where(
                _job.c.id.in_(part),
                _job.c.type != "REALTIME",
                select(child.c.id).where(child.c.parent_id == _job.c.id).exists(),
            )
            .values(type="REALTIME")
        )


async def link_sub_jobs(
    connection: AsyncConnection,
    *,
    candidates: set[tuple[int, str]],
    parents: set[tuple[int, str]],
) -> None:
    """Link `<P>_<node>` jobs to the longest real-time P: the `candidates`, and every job named
    `<P>_...` below one of `parents` (real-time jobs that are new). Explicit links stay."""
    candidates = set(candidates)
    for part in _chunks(sorted(parents)):
        # LIKE may over-match (SQLite ignores case): the exact prefixes are checked below.
        ranges = [
            and_(_job.c.workspace_id == w, _job.c.name.like(_like_prefix(p), escape="\\"))
            for w, p in part
        ]
        rows = await connection.execute(
            select(_job.c.workspace_id, _job.c.name).where(or_(*ranges))
        )
        candidates.update((w, n) for w, n in rows.all())
    prefixes = sorted(
        {
            (w, name[:cut])
            for w, name in candidates
            for cut in range(1, len(name))
            if name[cut] == "_"
        }
    )
    if not prefixes:
        return
    realtime: dict[tuple[int, str], int] = {}
    for part in _chunks(prefixes):
        rows = await connection.execute(
            select(_job.c.workspace_id, _job.c.name, _job.c.id).where(
                tuple_(_job.c.workspace_id, _job.c.name).in_(part), _job.c.type == "REALTIME"
            )
        )
        realtime.update({(row.workspace_id, row.name): row.id for row in rows.all()})
    links = []
    for (workspace_id, name), row in (await _jobs_by_key(connection, list(candidates))).items():
        if row["parent_explicit"]:
            continue
        best = max(
            (
                name[:cut]
                for cut in range(1, len(name))
                if name[cut] == "_" and (workspace_id, name[:cut]) in realtime
            ),
            key=len,
            default=None,
        )
        if best is None:
            continue
        parent_id, node = realtime[(workspace_id, best)], name[len(best) + 1 :]
        if (row["parent_id"], row["parent_node_name"]) != (parent_id, node):
            links.append({"link_key": row["id"], "link_parent": parent_id, "link_node": node})
    if links:
        await connection.execute(_LINK, sorted(links, key=_by_key))


def _like_prefix(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}\\_%"


# --- instances ----------------------------------------------------------------------------------


def _rank(column: Any) -> ColumnElement[int]:
    return case(STATUS_RANK, value=column, else_=0)


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
        unordered = stored.reported_at.is_(None) if "reported_at" in shape else literal(True)
        # Rank 2 is exactly the terminal statuses (no IN lists: they cannot be executemany'd).
        conditions.append(and_(unordered, _rank(stored.status) == 2, _rank(incoming.status) < 2))
    return or_(*conditions) if conditions else false()


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
    """Upsert instances with their nodes; one result per record, in order. Invalid records write
    nothing (not even their job); the others are written in this transaction."""
    results = [ItemResult(errors=_instance_errors(record)) for record in records]
    found = (
        await _workspace_and_job(connection, records[0])
        if len(records) == 1 and not results[0].errors
        else None
    )
    stored: dict[tuple[int, int], dict[str, Any]] | None = None
    locked_already: dict[tuple[int, int], Place] = {}
    if found is not None:
        spaces, jobs, stored, locked_already = found
        job_keys = [(spaces[r.workspace], r.job_name) for r in records]
    else:
        spaces = await workspace_ids(
            connection,
            (r.workspace for r, res in zip(records, results, strict=True) if not res.errors),
        )
        job_keys = [(spaces.get(r.workspace, 0), r.job_name) for r in records]
        jobs = await _jobs_by_key(connection, job_keys)
    keys: list[tuple[int, int] | None] = [
        (jobs[k]["id"], r.instance_id) if k in jobs else None
        for r, k in zip(records, job_keys, strict=True)
    ]
    # Locked until commit (PostgreSQL): the status an event reports as previous is the one this
    # write replaces, also when another writer reports the same instance at the same moment.
    # The keys first (instance_key), as every writer does, in key order: see `_lock_keys`.
    locked = locked_already | await _lock_keys(
        connection, [k for k in keys if k is not None and k not in locked_already]
    )
    if stored is None:
        stored = await _instances_by_key(
            connection, [k for k in keys if k is not None], lock=True, places=locked
        )
    stored_nodes = await _nodes_of(
        connection,
        [
            (stored[k]["id"], stored[k]["plan_time"])
            for k, r in zip(keys, records, strict=True)
            if k in stored and r.nodes is not None
        ],
    )

    to_write: list[int] = []
    for index, (record, key) in enumerate(zip(records, keys, strict=True)):
        result = results[index]
        if result.errors:
            continue
        row = stored.get(key) if key is not None else None
        if key is None and not create_jobs:
            result.errors.append(
                ItemError(
                    "UNKNOWN_JOB",
                    "jobName",
                    f"No job named {record.job_name!r} in workspace {record.workspace!r}, and "
                    "jobs are not created automatically.",
                )
            )
            continue
        if row is None:
            for name in sorted(INSTANCE_REQUIRED - record.values.keys()):
                result.errors.append(
                    ItemError(
                        "MISSING_FIELD",
                        name,
                        f"A new instance needs {name}; {record.source or 'the record'} has none.",
                    )
                )
            _check_nodes(record, result, stored_names=set())
            if not result.errors:
                result.outcome = Outcome.CREATED
                to_write.append(index)
            continue
        result.key = row["id"]
        nodes = stored_nodes.get(row["id"], {})
        _check_nodes(record, result, stored_names=set(nodes))
        if result.errors:
            continue
        if _is_stale(record, row):
            result.outcome = Outcome.STALE
        elif _differs(record, row) or _nodes_differ(record, nodes):
            result.outcome = Outcome.UPDATED
            to_write.append(index)
        else:
            result.outcome = Outcome.UNCHANGED

    # Jobs only for what is written: a rejected or stale report changes no job either; and only
    # those that are new or change (most reports name a stored job and say nothing new of it).
    job_records = [
        job
        for job in _unique_jobs([records[i] for i in to_write])
        if not _job_unchanged(job, jobs.get((spaces.get(job.workspace, 0), job.name)))
    ]
    if job_records:
        await write_jobs(connection, job_records)
        jobs.update(await _jobs_by_key(connection, [job_keys[i] for i in to_write]))
    writes = {
        i: ((jobs[job_keys[i]]["id"], records[i].instance_id), records[i], job_keys[i][0])
        for i in to_write
    }
    # The rows as written (their columns an event reports), from the upserts' RETURNING.
    after: dict[tuple[int, int], dict[str, Any]] = {}
    outcome_of = await _upsert_instances(connection, list(writes.values()), stored, after, locked)
    plan_of = {row["id"]: row["plan_time"] for row in (*stored.values(), *after.values())}
    await _place_keys(connection, after, locked)
    for index, (key, _, _) in writes.items():
        written = outcome_of.get(key)
        if written is None:
            # Not rewritten: its values are already stored (only its nodes changed), or the guard
            # held it back because a concurrent writer stored a newer report first.
            row = after[key] = (await _instances_by_key(connection, [key]))[key]
            results[index].key = row["id"]
            plan_of[row["id"]] = row["plan_time"]
            if _is_stale(record := records[index], row) or _differs(record, row):
                results[index].outcome = Outcome.STALE
                to_write.remove(index)
            elif not _nodes_differ(record, stored_nodes.get(row["id"], {})):
                results[index].outcome = Outcome.UNCHANGED
                to_write.remove(index)
            continue
        results[index].key, inserted = written
        if inserted is not None:  # PostgreSQL says whether the row was new
            results[index].outcome = Outcome.CREATED if inserted else Outcome.UPDATED
    await _replace_nodes(
        connection,
        [
            (results[i].key or 0, records[i], job_keys[i][0])
            for i in to_write
            if records[i].nodes is not None
        ],
        stored_nodes,
        plan_of,
    )
    await _log_changes(connection, [(i, writes[i][0]) for i in to_write], results, stored, after)
    return results


async def _workspace_and_job(
    connection: AsyncConnection, record: InstanceRecord
) -> (
    tuple[
        dict[str, int],
        dict[tuple[int, str], dict[str, Any]],
        dict[tuple[int, int], Any] | None,
        dict[tuple[int, int], Place],
    ]
    | None
):
    """A single report's workspace id, stored job (none: a new job) and stored instance, as
    `workspace_ids`, `_jobs_by_key` and `_instances_by_key(lock=True)` find them, in one
    statement instead of three; None when the workspace is new (those then create and find
    it). On PostgreSQL the instance is not read here (None): `write_instances` reads it once
    its key is locked, here (the keys returned) or by `_lock_keys`."""
    row = (
        await connection.execute(
            _WORKSPACE_JOB_AND_INSTANCE[connection.dialect.name],
            {
                "workspace_name": record.workspace,
                "job_name": record.job_name,
                "vendor_instance_id": record.instance_id,
            },
        )
    ).first()
    if row is None:
        return None
    job: dict[str, Any] = {}
    instance: dict[str, Any] = {}
    for name, value in row._mapping.items():
        if name.startswith(STORED):
            instance[name[len(STORED) :]] = value
        else:
            job[name] = value
    workspace_id = job.pop("workspace_key")
    key_locked = job.pop(KEY_LOCKED, 0)
    place = Place(
        bool(job.pop(KEY_CREATED, 0)), job.pop(KEY_INSTANCE, None), job.pop(KEY_PLAN, None)
    )
    if not instance:  # PostgreSQL: read after its key is locked
        stored = None
    elif job["id"] is None or instance["id"] is None:
        stored = {}
    else:
        stored = {(job["id"], record.instance_id): instance}
    if job["id"] is None:
        return {record.workspace: workspace_id}, {}, stored, {}
    locked = {(job["id"], record.instance_id): place} if key_locked else {}
    return {record.workspace: workspace_id}, {(workspace_id, record.job_name): job}, stored, locked


async def _log_changes(
    connection: AsyncConnection,
    written: Sequence[tuple[int, tuple[int, int]]],
    results: Sequence[ItemResult],
    stored: dict[tuple[int, int], dict[str, Any]],
    after: dict[tuple[int, int], dict[str, Any]],
) -> None:
    """One event per instance this transaction created or changed (UNCHANGED and STALE items
    write none), appended to the log in this transaction: see jobql/storage/events.py. `after`:
    rows as they stand after this transaction's writes (written, or read again when only their
    nodes changed); any other is read."""
    changed = [
        (index, key)
        for index, key in written
        if results[index].outcome in (Outcome.CREATED, Outcome.UPDATED)
    ]
    if not changed:
        return
    final = dict(after)
    unread = [key for _, key in changed if key not in final]
    if unread:
        final.update(await _instances_by_key(connection, unread))
    changes: list[events.Change] = []
    for index, key in changed:
        row, before = final[key], stored.get(key)
        created = results[index].outcome is Outcome.CREATED
        # None also when a concurrent writer created the row after this one looked (PostgreSQL).
        previous = None if created or before is None else before["status"]
        if created:
            kind = InstanceEventKind.CREATED
        elif previous is not None and previous != row["status"]:
            kind = InstanceEventKind.STATUS_CHANGED
        else:
            kind = InstanceEventKind.UPDATED
        changes.append(
            events.Change(
                workspace_id=row["workspace_id"],
                job_id=row["job_id"],
                instance_id=row["id"],
                vendor_instance_id=row["vendor_instance_id"],
                kind=kind.value,
                status=row["status"],
                previous_status=previous,
                instance_type=row["instance_type"],
                plan_time=row["plan_time"],
                force_success=bool(row["force_success"]),
                ignore_success=bool(row["ignore_success"]),
            )
        )
    await events.append(connection, changes)


def _instance_errors(record: InstanceRecord) -> list[ItemError]:
    errors = _workspace_errors(record.workspace)
    errors += _too_long("job", {"name": record.job_name, **record.job_values})
    errors += _too_long("instance", record.values)
    errors += _too_early(record.values)
    for position, node in enumerate(record.nodes or ()):
        errors += _too_long("node", {"name": node.name, **node.values}, f"nodes[{position}].")
        errors += _too_early(node.values, f"nodes[{position}].")
    return errors


# PostgreSQL's driver (asyncpg) writes and reads the first instant of the year 1 as -infinity,
# which neither strategy can give back as that time: no stored time may be that early.
EARLIEST = datetime(1, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)


def _too_early(values: dict[str, Any], prefix: str = "") -> list[ItemError]:
    return [
        ItemError(
            "INVALID_VALUE",
            f"{prefix}{column}",
            f"{prefix}{column} must not be earlier than 0001-01-01T00:00:00.001Z.",
        )
        for column, value in values.items()
        if isinstance(value, datetime)
        and value.tzinfo is not None
        and truncate_ms(value) < EARLIEST
    ]


def _unique_jobs(records: Sequence[InstanceRecord]) -> list[JobRecord]:
    merged: dict[tuple[str, str], JobRecord] = {}
    for record in records:
        key = (record.workspace, record.job_name)
        if key in merged:
            merged[key].values.update(record.job_values)
        else:
            merged[key] = JobRecord(record.workspace, record.job_name, dict(record.job_values))
    return list(merged.values())


def _job_unchanged(record: JobRecord, stored: dict[str, Any] | None) -> bool:
    """The job is stored and the record changes none of its values (`write_jobs` would find it
    UNCHANGED; a record with an explicit parent is left to it)."""
    return (
        stored is not None
        and record.parent_name is None
        and all(_normal(value) == stored[column] for column, value in record.values.items())
    )


def _check_nodes(record: InstanceRecord, result: ItemResult, stored_names: set[str]) -> None:
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
        if node.name in stored_names:
            continue
        for name in sorted(NODE_REQUIRED - node.values.keys()):
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
    connection: AsyncConnection,
    keys: Sequence[tuple[int, int]],
    *,
    lock: bool = False,
    places: Mapping[tuple[int, int], Place] | None = None,
) -> dict[tuple[int, int], dict[str, Any]]:
    """Stored rows by (job id, instance id). `lock`: on PostgreSQL, lock them until the
    transaction ends (FOR UPDATE), in key order, the order every writer locks them in.
    `places` (with `lock`): what the locked keys say of their instances: none for a new key,
    and one month's read for a placed one (the table is read when it is not found there)."""
    found: dict[tuple[int, int], dict[str, Any]] = {}
    lock = lock and connection.dialect.name == "postgresql"
    if places and lock:
        found = await _placed_instances(connection, keys, places)
        keys = [key for key in keys if key not in found and not (key in places and places[key].new)]
    for part in _chunks(sorted(set(keys))):
        if len(part) == 1:
            [(job_id, instance_id)] = part
            rows = await connection.execute(
                _INSTANCE_BY_KEY_LOCKED if lock else _INSTANCE_BY_KEY,
                {"job_id": job_id, "vendor_instance_id": instance_id},
            )
        else:
            statement = select(_instance).where(
                tuple_(_instance.c.job_id, _instance.c.vendor_instance_id).in_(part)
            )
            if lock:
                statement = statement.order_by(
                    _instance.c.job_id, _instance.c.vendor_instance_id
                ).with_for_update()
            rows = await connection.execute(statement)
        found.update({(row.job_id, row.vendor_instance_id): dict(row._mapping) for row in rows})
    return found


async def _placed_instances(
    connection: AsyncConnection,
    keys: Sequence[tuple[int, int]],
    places: Mapping[tuple[int, int], Place],
) -> dict[tuple[int, int], dict[str, Any]]:
    """The instances of these keys where their key rows say they are, locked, in key order."""
    placed = sorted(
        (key, place.id, place.plan_time)
        for key in set(keys)
        if (place := places.get(key)) is not None
        and place.id is not None
        and place.plan_time is not None
    )
    found: dict[tuple[int, int], dict[str, Any]] = {}
    for part in _chunks(placed):
        if len(part) == 1:
            [(_, instance_id, plan_time)] = part
            rows = await connection.execute(
                _INSTANCE_PLACED, {"id": instance_id, "plan_time": plan_time}
            )
        else:
            rows = await connection.execute(
                select(_instance)
                .where(
                    _instance.c.id.in_([id_ for _, id_, _ in part]),
                    _instance.c.plan_time.in_(sorted({time for _, _, time in part})),
                )
                .order_by(_instance.c.job_id, _instance.c.vendor_instance_id)
                .with_for_update()
            )
        found.update({(row.job_id, row.vendor_instance_id): dict(row._mapping) for row in rows})
    return found


async def _nodes_of(
    connection: AsyncConnection, instances: Sequence[tuple[int, datetime]]
) -> dict[int, dict[str, dict[str, Any]]]:
    """Stored nodes per (instance id, plan time), by instance id and name, in position order;
    the plan times keep PostgreSQL to those months of nodes."""
    nodes: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for part in _chunks(sorted(set(instances))):
        if len(part) == 1:
            [(instance_id, plan_time)] = part
            rows = await connection.execute(
                _NODES_OF_INSTANCE, {"instance_id": instance_id, "plan_time": plan_time}
            )
        else:
            rows = await connection.execute(
                select(_node)
                .where(
                    _node.c.instance_id.in_([key for key, _ in part]),
                    _node.c.instance_plan_time.in_(sorted({time for _, time in part})),
                )
                .order_by(_node.c.instance_id, _node.c.position, _node.c.id)
            )
        for row in rows:
            nodes[row.instance_id][row.name] = dict(row._mapping)
    return nodes


# `_lock_keys`' two statements, built once: the keys as two arrays (one text and one prepared
# plan whatever their number). Built per call, with the keys as an IN list of tuples and a
# VALUES list, their construction cost more than a single report's other statements together
# (py-spy of recordInstances of one instance: a quarter of its CPU).
_KEYS = (
    "unnest(CAST(:jobs AS BIGINT[]), CAST(:ids AS BIGINT[])) AS wanted(job_id, vendor_instance_id)"
)
_KEYS_CREATE = text(
    f"INSERT INTO instance_key (job_id, vendor_instance_id) SELECT * FROM {_KEYS} "
    "ON CONFLICT DO NOTHING RETURNING job_id, vendor_instance_id"
)
_KEYS_LOCK = text(
    "SELECT instance_key.job_id, instance_key.vendor_instance_id, instance_key.instance_id, "
    f"instance_key.plan_time FROM instance_key JOIN {_KEYS} "
    "USING (job_id, vendor_instance_id) "
    "ORDER BY instance_key.job_id, instance_key.vendor_instance_id FOR UPDATE OF instance_key"
)


async def _lock_keys(
    connection: AsyncConnection, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], Place]:
    """PostgreSQL: create (if missing) and lock until commit the `instance_key` rows of these
    (job id, instance id) keys, in key order, so that two writers of one instance wait for each
    other here, whatever plan times (partitions) they report; the partitioned `instance` cannot
    keep the pair unique by itself (docs/partitioning.md). A key new to both writers serialises
    them at its INSERT, before either locks anything else of the chunk. Returns the keys locked,
    each with what its row says of its instance (none on SQLite, whose writes are serialised)."""
    if connection.dialect.name != "postgresql" or not keys:
        return {}
    locked: dict[tuple[int, int], Place] = {}
    for part in _chunks(sorted(set(keys))):
        arrays = {"jobs": [j for j, _ in part], "ids": [v for _, v in part]}
        created: set[tuple[int, int]] = set()
        rows: list[Any] = []
        # Again when prune's clean-up removed a key between the two statements (rare).
        while len(rows) < len(part):
            created.update(
                (row[0], row[1]) for row in await connection.execute(_KEYS_CREATE, arrays)
            )
            rows = list((await connection.execute(_KEYS_LOCK, arrays)).all())
        for job_id, vendor_id, instance_id, plan_time in rows:
            key = (job_id, vendor_id)
            locked[key] = Place(key in created, instance_id, plan_time)
    return locked


# Where the instances written now are, for their key rows (see models.InstanceKey): one key per
# execution (a generic plan; arrays through unnest were planned again on every call).
_KEY_PLACE = (
    update(_key)
    .where(
        _key.c.job_id == bindparam("key_job_id"),
        _key.c.vendor_instance_id == bindparam("key_vendor_instance_id"),
    )
    .values(instance_id=bindparam("key_instance_id"), plan_time=bindparam("key_plan_time"))
)


async def _place_keys(
    connection: AsyncConnection,
    after: Mapping[tuple[int, int], Mapping[str, Any]],
    places: Mapping[tuple[int, int], Place],
) -> None:
    """PostgreSQL: the key rows of the instances written (`after`) say where they now are,
    where they said otherwise (a new instance, a plan time moved). The keys are locked."""
    if connection.dialect.name != "postgresql":
        return
    moved = sorted(
        (key, row["id"], row["plan_time"])
        for key, row in after.items()
        if (place := places.get(key)) is None
        or (place.id, place.plan_time) != (row["id"], row["plan_time"])
    )
    if moved:
        await connection.execute(
            _KEY_PLACE,
            [
                {
                    "key_job_id": job_id,
                    "key_vendor_instance_id": vendor_id,
                    "key_instance_id": instance_id,
                    "key_plan_time": plan_time,
                }
                for (job_id, vendor_id), instance_id, plan_time in moved
            ],
        )


async def _move_plan_time(
    connection: AsyncConnection, row: dict[str, Any], plan_time: datetime
) -> dict[str, Any]:
    """A stored instance's new plan time, with its nodes' copy of it. An UPDATE, because
    PostgreSQL's ON CONFLICT DO UPDATE cannot move a row to another partition (and UPDATE can)."""
    moved = await connection.execute(
        update(_instance)
        .where(_instance.c.id == row["id"], _instance.c.plan_time == row["plan_time"])
        .values(plan_time=plan_time)
        .returning(*(_instance.c[name] for name in _EVENT_COLUMNS))
    )
    await connection.execute(
        update(_node)
        .where(_node.c.instance_id == row["id"], _node.c.instance_plan_time == row["plan_time"])
        .values(instance_plan_time=plan_time)
    )
    return dict(moved.one()._mapping)


async def _upsert_instances(
    connection: AsyncConnection,
    items: Sequence[tuple[tuple[int, int], InstanceRecord, int]],
    stored: dict[tuple[int, int], dict[str, Any]],
    after: dict[tuple[int, int], dict[str, Any]],
    locked: dict[tuple[int, int], Place],
) -> dict[tuple[int, int], tuple[int, bool | None]]:
    """Write rows; returns, per key written, its id and (PostgreSQL only) whether it was new.
    A key missing from the answer was held back by the guard, or had no column to write (a
    report of its nodes only). `stored` gains the rows a concurrent writer created meanwhile
    (PostgreSQL: found once their keys are locked)."""
    postgres = connection.dialect.name == "postgresql"
    written: dict[tuple[int, int], tuple[int, bool | None]] = {}
    late = [key for key, _, _ in items if key not in locked]
    if postgres and late:  # instances of jobs this transaction created or found created
        locked.update(await _lock_keys(connection, late))
        stored.update(
            await _instances_by_key(
                connection, [k for k in late if k not in stored], lock=True, places=locked
            )
        )
    by_shape: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for key, record, workspace_id in sorted(items, key=lambda item: item[0]):
        job_id, instance_id = key
        existing = stored.get(key) or {}
        plan_time = record.values.get("plan_time")
        if existing and plan_time is not None and truncate_ms(plan_time) != existing["plan_time"]:
            if _is_stale(record, existing):
                # Held back by the guard below; its conflict must find the stored row.
                record = replace(record, values={**record.values})
                record.values["plan_time"] = existing["plan_time"]
            else:
                after[key] = await _move_plan_time(connection, existing, truncate_ms(plan_time))
                written[key] = (after[key]["id"], False)
        row = {
            **INSTANCE_DEFAULTS,
            # The insert's row must satisfy NOT NULL before the conflict turns it into an update
            # of the reported columns only: a report of a stored instance may leave these out.
            **{column: existing[column] for column in INSTANCE_REQUIRED if column in existing},
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
    for shape, rows in by_shape.items():
        if not shape:
            continue  # nothing of the row itself is reported (its nodes only): no row to write
        statement = _instance_upsert(connection.dialect.name, shape)
        result = await connection.execute(statement, rows)
        for answer in result.all():
            key = (answer.job_id, answer.vendor_instance_id)
            # PostgreSQL: the key is locked, so the stored rows are all there is (a partitioned
            # table cannot return xmax, which said so before).
            written[key] = (answer.id, key not in stored if postgres else None)
            after[key] = answer._asdict()
    return written


_EVENT_COLUMNS = (
    "id",
    "job_id",
    "vendor_instance_id",
    "workspace_id",
    "status",
    "instance_type",
    "plan_time",
    "force_success",
    "ignore_success",
)


# The conflict targets: PostgreSQL's unique keys of partitioned tables hold the partition key.
_INSTANCE_KEY = (["job_id", "vendor_instance_id"], ["job_id", "vendor_instance_id", "plan_time"])
_NODE_KEY = (["instance_id", "name"], ["instance_id", "name", "instance_plan_time"])


@_statements
def _instance_upsert(dialect_name: str, shape: frozenset[str]) -> Any:
    statement = _insert_for(dialect_name, _instance)
    incoming = statement.excluded
    # Only when something changes: an identical row is not rewritten.
    changes = or_(*(_instance.c[c].is_distinct_from(incoming[c]) for c in sorted(shape)))
    statement = statement.on_conflict_do_update(
        index_elements=_INSTANCE_KEY[dialect_name == "postgresql"],
        set_={column: incoming[column] for column in shape},
        where=and_(not_(_stale_condition(shape, incoming)), changes),
    )
    # The key, and what an event of the change reports (see `_log_changes`).
    returned: list[ColumnElement[Any]] = [_instance.c[name] for name in _EVENT_COLUMNS]
    return statement.returning(*returned)


async def _replace_nodes(
    connection: AsyncConnection,
    items: Sequence[tuple[int, InstanceRecord, int]],
    stored: dict[int, dict[str, dict[str, Any]]],
    plan_of: dict[int, datetime],
) -> None:
    """Nodes as listed: upserted by name with their position; stored nodes not listed go.
    `plan_of`: each instance's plan time as it now stands (the nodes' `instance_plan_time`)."""
    if not items:
        return
    gone = sorted(
        row["id"]
        for key, record, _ in items
        for name, row in stored.get(key, {}).items()
        if name not in {node.name for node in record.nodes or ()}
    )
    for part in _chunks(gone):
        await connection.execute(delete(_node).where(_node.c.id.in_(part)))
    by_shape: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for key, record, workspace_id in sorted(items, key=lambda item: item[0]):
        for position, node in sorted(enumerate(record.nodes or ()), key=lambda pair: pair[1].name):
            row = _node_row(key, workspace_id, position, node)
            row["instance_plan_time"] = plan_of[key]
            by_shape[frozenset(node.values)].append(row)
    for shape, rows in by_shape.items():
        await connection.execute(_node_upsert(connection.dialect.name, shape), rows)


@_statements
def _node_upsert(dialect_name: str, shape: frozenset[str]) -> Any:
    statement = _insert_for(dialect_name, _node)
    return statement.on_conflict_do_update(
        index_elements=_NODE_KEY[dialect_name == "postgresql"],
        set_={c: statement.excluded[c] for c in {*shape, "position", "instance_plan_time"}},
    )


@dataclass(frozen=True)
class StoredInstance:
    """What the store holds of a record's instance: its status, and whether a value the record
    reports (or a fact about its job) differs from the stored one."""

    status: str
    differs: bool


async def stored_instances(
    connection: AsyncConnection, records: Sequence[InstanceRecord]
) -> list[StoredInstance | None]:
    """For each record, its stored instance (None: not stored), compared value by value and node
    by node as `write_instances` compares them (report times aside). Writes nothing."""
    names = sorted({record.workspace for record in records})
    spaces: dict[str, int] = {}
    for part in _chunks(names):
        rows = await connection.execute(
            select(_workspace.c.id, _workspace.c.name).where(_workspace.c.name.in_(part))
        )
        spaces.update({name: key for key, name in rows.all()})
    job_keys = [(spaces.get(r.workspace, 0), r.job_name) for r in records]
    jobs = await _jobs_by_key(connection, [k for k in job_keys if k[0]])
    keys = [
        (jobs[k]["id"], r.instance_id) if k in jobs else None
        for r, k in zip(records, job_keys, strict=True)
    ]
    stored = await _instances_by_key(connection, [k for k in keys if k is not None])
    nodes = await _nodes_of(
        connection,
        [
            (stored[k]["id"], stored[k]["plan_time"])
            for k, r in zip(keys, records, strict=True)
            if k in stored and r.nodes is not None
        ],
    )
    found: list[StoredInstance | None] = []
    for record, job_key, key in zip(records, job_keys, keys, strict=True):
        row = stored.get(key) if key is not None else None
        if row is None:
            found.append(None)
            continue
        job = jobs[job_key]
        differs = (
            any(_normal(v) != row[c] for c, v in record.values.items())
            or any(_normal(v) != job[c] for c, v in record.job_values.items())
            or _nodes_differ(record, nodes.get(row["id"], {}))
        )
        found.append(StoredInstance(status=row["status"], differs=differs))
    return found


def _node_row(key: int, workspace_id: int, position: int, node: NodeRecord) -> dict[str, Any]:
    # type and status stand in only for the insert of a new node (which must report them).
    row: dict[str, Any] = {"type": "", "status": "", **node.values}
    row.update(workspace_id=workspace_id, instance_id=key, position=position, name=node.name)
    return row


__all__ = [
    "ItemError",
    "ItemResult",
    "Outcome",
    "StoredInstance",
    "link_sub_jobs",
    "stored_instances",
    "write_instances",
    "write_jobs",
]
