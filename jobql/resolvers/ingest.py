"""Use cases that write: records from imports and from the push mutations -> storage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobql import metrics
from jobql.errors import BadUserInput
from jobql.resolvers.context import RequestContext
from jobql.resolvers.validation import text
from jobql.storage import engine as storage_engine
from jobql.storage.ingest import ItemError, ItemResult, Outcome, write_instances, write_jobs
from jobql.storage.records import InstanceRecord, JobRecord, NodeRecord

__all__ = [
    "MAX_BATCH",
    "ImportSummary",
    "ItemError",
    "ItemResult",
    "Outcome",
    "import_instances",
    "instance_record",
    "job_record",
    "record_instances",
    "upsert_jobs",
]

# Items per mutation call; also what an import writes per transaction.
MAX_BATCH = 1000
IMPORT_CHUNK = 500
BULK_TABLES = ("job", "instance", "instance_node")

R = TypeVar("R", InstanceRecord, JobRecord)


@dataclass
class ImportSummary:
    counts: Counter[str] = field(default_factory=Counter)
    rejected: list[str] = field(default_factory=list)

    def add(self, records: Sequence[InstanceRecord], results: Sequence[ItemResult]) -> None:
        for record, result in zip(records, results, strict=True):
            if result.errors:
                self.counts["rejected"] += 1
                self.rejected.extend(
                    f"{record.source or record.job_name}: {e.message}" for e in result.errors
                )
            elif result.outcome is not None:
                self.counts[result.outcome.value.lower()] += 1
        _count("instance", results)

    def line(self) -> str:
        names = ("created", "updated", "unchanged", "stale", "rejected")
        return ", ".join(f"{self.counts[name]} {name}" for name in names)


def instance_record(
    workspace: str,
    *,
    job_name: str,
    instance_id: int,
    fields: dict[str, Any],
    dispatch: dict[str, Any] | None = None,
    runtime: dict[str, Any] | None = None,
    nodes: list[tuple[str, dict[str, Any]]] | None = None,
    reported_at: datetime | None = None,
    source: str = "",
) -> InstanceRecord:
    """An ingest record from a mutation's input: fields by column name; null means not reported
    (the stored value stays)."""
    values = _reported(fields)
    values.update({f"dispatch_{k}": v for k, v in _reported(dispatch or {}).items()})
    reported_runtime = _reported(runtime or {})
    if isinstance(reported_runtime.get("packages"), list):
        reported_runtime["packages"] = ",".join(reported_runtime["packages"])
    values.update({f"runtime_{k}": v for k, v in reported_runtime.items()})
    return InstanceRecord(
        workspace=workspace,
        job_name=text("jobName", job_name),
        instance_id=instance_id,
        values=values,
        nodes=None
        if nodes is None
        else [NodeRecord(text("name", name), _reported(node)) for name, node in nodes],
        reported_at=reported_at,
        source=source,
    )


def job_record(
    workspace: str, *, name: str, fields: dict[str, Any], parent_name: str | None
) -> JobRecord:
    return JobRecord(
        workspace=workspace,
        name=text("name", name),
        values=_reported(fields),
        parent_name=text("parentName", parent_name),
    )


def _reported(fields: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, Enum):
            value = value.name
        elif isinstance(value, str):
            value = text(name, value)
        values[name] = value
    return values


async def import_instances(
    engine: AsyncEngine,
    records: Sequence[InstanceRecord],
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Write imported records in transactions of IMPORT_CHUNK instances (each instance lands
    whole, with its nodes); jobs are created as needed."""
    summary = ImportSummary()
    analyzed_at = 0
    for start in range(0, len(records), IMPORT_CHUNK):
        if start >= 2 * analyzed_at and start > 0:
            # A large import doubles the tables it writes: keep the planner's statistics up with
            # it (a log number of ANALYZE runs).
            await storage_engine.analyze(engine, BULK_TABLES)
            analyzed_at = start
        chunk = list(records[start : start + IMPORT_CHUNK])
        try:
            results = await _write_instances(engine, chunk, create_jobs=True)
        except DBAPIError as exc:
            # Not expected (records are checked first); this chunk is rolled back, earlier
            # chunks stay, and the report says which records did not land.
            summary.counts["rejected"] += len(chunk)
            metrics.INGEST_ITEMS.labels("instance", "rejected").inc(len(chunk))
            first, last = chunk[0].source or str(start), chunk[-1].source or str(start + len(chunk))
            summary.rejected.append(f"{first} .. {last}: the database refused them: {exc.orig}")
        else:
            summary.add(chunk, results)
        if progress is not None:
            progress(len(chunk))
    return summary


async def record_instances(
    ctx: RequestContext, records: Sequence[InstanceRecord], *, create_jobs: bool
) -> list[ItemResult]:
    """The recordInstances mutation: one transaction for the whole batch; invalid items are
    reported and not written, the valid ones land together."""
    ctx.require("write")
    _check_batch(records)
    results = [ItemResult(errors=_instance_errors(r)) for r in records]
    _mark_duplicates(
        records, results, key=lambda r: (r.job_name, r.instance_id), field="instanceId"
    )
    valid = [i for i, result in enumerate(results) if not result.errors]
    written = await _write_instances(
        ctx.engine, [records[i] for i in valid], create_jobs=create_jobs
    )
    for index, result in zip(valid, written, strict=True):
        results[index] = result
    _count("instance", results)
    return results


async def upsert_jobs(ctx: RequestContext, records: Sequence[JobRecord]) -> list[ItemResult]:
    ctx.require("write")
    _check_batch(records)
    results = [ItemResult() for _ in records]
    _mark_duplicates(records, results, key=lambda r: r.name, field="name")
    for record, result in zip(records, results, strict=True):
        if record.parent_name is not None and record.parent_name == record.name:
            result.errors.append(
                ItemError("INVALID_VALUE", "parentName", "A job cannot be its own parent.")
            )
    valid = [i for i, result in enumerate(results) if not result.errors]
    chosen = [records[i] for i in valid]

    async def work(connection: AsyncConnection) -> list[ItemResult]:
        return await write_jobs(connection, chosen)

    written = await storage_engine.write(ctx.engine, work) if chosen else []
    for index, result in zip(valid, written, strict=True):
        results[index] = result
    _count("job", results)
    return results


def _count(kind: str, results: Sequence[ItemResult]) -> None:
    """Items by outcome, for /metrics (`jobql_ingest_items_total`)."""
    outcomes: Counter[str] = Counter()
    for result in results:
        if result.errors:
            outcomes["rejected"] += 1
        elif result.outcome is not None:
            outcomes[result.outcome.value.lower()] += 1
    for outcome, count in outcomes.items():
        metrics.INGEST_ITEMS.labels(kind, outcome).inc(count)


async def _write_instances(
    engine: AsyncEngine, records: list[InstanceRecord], *, create_jobs: bool
) -> list[ItemResult]:
    if not records:
        return []

    async def work(connection: AsyncConnection) -> list[ItemResult]:
        return await write_instances(connection, records, create_jobs=create_jobs)

    return await storage_engine.write(engine, work)


def _check_batch(records: Sequence[object]) -> None:
    if len(records) > MAX_BATCH:
        raise BadUserInput(
            f"A batch takes at most {MAX_BATCH} items, got {len(records)}; split it."
        )


def _instance_errors(record: InstanceRecord) -> list[ItemError]:
    errors: list[ItemError] = []
    start, end = record.values.get("start_time"), record.values.get("end_time")
    if start is not None and end is not None and end < start:
        errors.append(ItemError("INVALID_VALUE", "endTime", "endTime is before startTime."))
    for position, node in enumerate(record.nodes or ()):
        start, end = node.values.get("start_time"), node.values.get("end_time")
        if start is not None and end is not None and end < start:
            errors.append(
                ItemError(
                    "INVALID_VALUE",
                    f"nodes[{position}].endTime",
                    f"Node {node.name!r} ends before it starts.",
                )
            )
    return errors


def _mark_duplicates(
    records: Sequence[R],
    results: list[ItemResult],
    *,
    key: Callable[[R], object],
    field: str,
) -> None:
    first_seen: dict[object, int] = {}
    for index, record in enumerate(records):
        seen = first_seen.setdefault(key(record), index)
        if seen != index:
            results[index].errors.append(
                ItemError(
                    "DUPLICATE_KEY",
                    field,
                    f"Item {index} repeats the key of item {seen} in this batch.",
                )
            )
