"""What OpenLineage ingestion (`jobql/resolvers/lineage.py`) reads and locks before it writes
through `ingest.write_instances`: an instance by its run id, the next instance id of a job, and a
per-run and per-job lock that makes both race-free between concurrent posts."""

from __future__ import annotations

import hashlib
from typing import Any, cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from jobql.storage.models import Instance, Job, Workspace

_workspace = cast(Table, Workspace.__table__)
_job = cast(Table, Job.__table__)
_instance = cast(Table, Instance.__table__)


async def lock_run(connection: AsyncConnection, workspace: str, run_id: str, job_name: str) -> None:
    """Serialise, until this transaction ends, every lineage write to this run and to runs of
    this job: the state of a run is read, merged and written back (two events of one run may
    name its job apart: a child's parent facet and the run's own events), and a new run's id is
    the job's largest plus one. Always the run first, then the job: no two writers wait for
    each other in opposite orders. PostgreSQL: transaction-level advisory locks keyed on a
    hash of the names (a collision only serialises more); SQLite: its writes are already
    serialised (BEGIN IMMEDIATE)."""
    if connection.dialect.name != "postgresql":
        return
    for kind, name in (("run", run_id), ("job", job_name)):
        digest = hashlib.sha256(f"jobql-lineage\0{kind}\0{workspace}\0{name}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _instances_with_job() -> Any:
    return (
        select(_instance, _job.c.name.label("job_name"))
        .join(_job, _job.c.id == _instance.c.job_id)
        .join(_workspace, _workspace.c.id == _instance.c.workspace_id)
    )


async def instance_by_run(
    connection: AsyncConnection, workspace: str, run_id: str
) -> dict[str, Any] | None:
    """The stored instance of an OpenLineage run (with its job's name), or None."""
    row = (
        await connection.execute(
            _instances_with_job().where(
                _workspace.c.name == workspace, _instance.c.run_id == run_id
            )
        )
    ).first()
    return None if row is None else dict(row._mapping)


async def instance_at(
    connection: AsyncConnection, workspace: str, job_name: str, instance_id: int
) -> dict[str, Any] | None:
    """The stored instance `instance_id` of a job (with its job's name), or None."""
    row = (
        await connection.execute(
            _instances_with_job().where(
                _workspace.c.name == workspace,
                _job.c.name == job_name,
                _instance.c.vendor_instance_id == instance_id,
            )
        )
    ).first()
    return None if row is None else dict(row._mapping)


async def next_instance_id(connection: AsyncConnection, workspace: str, job_name: str) -> int:
    """The job's largest instance id plus one (1 for a job without instances)."""
    largest = await connection.scalar(
        select(func.max(_instance.c.vendor_instance_id))
        .join(_job, _job.c.id == _instance.c.job_id)
        .join(_workspace, _workspace.c.id == _job.c.workspace_id)
        .where(_workspace.c.name == workspace, _job.c.name == job_name)
    )
    return int(largest or 0) + 1


__all__ = ["instance_at", "instance_by_run", "lock_run", "next_instance_id"]
