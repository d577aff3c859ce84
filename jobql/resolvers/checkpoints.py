"""Use cases of `jobql collect`: what is stored of what a source lists, and a page of records
stored together with the checkpoint that covers it.

A page goes through the one ingest path (`write_instances`: field-wise merge, the stale guard,
the importers' records and storage's rejections, as `jobql import` writes them) and its
checkpoints are written in the same transaction: after a crash either both are stored or
neither, so a restart resumes exactly where the stored data ends.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobql.resolvers.ingest import ImportSummary
from jobql.storage import engine as storage_engine
from jobql.storage.checkpoints import read_checkpoints, write_checkpoints
from jobql.storage.ingest import StoredInstance, stored_instances, write_instances
from jobql.storage.records import CheckpointRecord, InstanceRecord

__all__ = [
    "StoredInstance",
    "load_checkpoints",
    "save_checkpoints",
    "store_page",
    "stored_state",
]


async def load_checkpoints(
    engine: AsyncEngine, source: str | None = None
) -> list[CheckpointRecord]:
    async with engine.connect() as connection:
        return await read_checkpoints(connection, source)


async def save_checkpoints(engine: AsyncEngine, checkpoints: Sequence[CheckpointRecord]) -> None:
    """Checkpoints alone: a pass's outcome (success, lag, error) when it stored no data."""
    if not checkpoints:
        return

    async def work(connection: AsyncConnection) -> None:
        await write_checkpoints(connection, checkpoints)

    await storage_engine.write(engine, work)


async def stored_state(
    engine: AsyncEngine, records: Sequence[InstanceRecord]
) -> list[StoredInstance | None]:
    """Per record: not stored (None), or its stored status and whether the record changes it."""
    if not records:
        return []
    async with engine.connect() as connection:
        return await stored_instances(connection, records)


async def store_page(
    engine: AsyncEngine,
    records: Sequence[InstanceRecord],
    checkpoints: Sequence[CheckpointRecord],
) -> ImportSummary:
    """Write `records` (jobs created as needed) and `checkpoints` in one transaction."""

    async def work(connection: AsyncConnection) -> ImportSummary:
        summary = ImportSummary()
        if records:
            summary.add(records, await write_instances(connection, records, create_jobs=True))
        await write_checkpoints(connection, checkpoints)
        return summary

    return await storage_engine.write(engine, work)
