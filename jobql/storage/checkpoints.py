"""The collector's checkpoints (`collect_checkpoint`): read, and upserted whole by (source, scope).

They are written with the connection of the transaction that stores the data they cover (see
`jobql.resolvers.checkpoints`), never on their own ahead of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from jobql.storage.models import CollectCheckpoint
from jobql.storage.records import CheckpointRecord

_checkpoint = cast(Table, CollectCheckpoint.__table__)
_FIELDS = (
    "kind",
    "position",
    "high_water",
    "last_success_at",
    "last_error",
    "last_error_at",
)


async def read_checkpoints(
    connection: AsyncConnection, source: str | None = None
) -> list[CheckpointRecord]:
    """Every checkpoint of `source` (None: of every source), by source and scope."""
    statement = select(_checkpoint).order_by(_checkpoint.c.source, _checkpoint.c.scope)
    if source is not None:
        statement = statement.where(_checkpoint.c.source == source)
    rows = await connection.execute(statement)
    return [
        CheckpointRecord(
            source=row.source, scope=row.scope, **{name: getattr(row, name) for name in _FIELDS}
        )
        for row in rows
    ]


async def write_checkpoints(
    connection: AsyncConnection, records: Sequence[CheckpointRecord]
) -> None:
    """Upsert each record whole (every column as given), in key order."""
    if not records:
        return
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "source": record.source,
            "scope": record.scope,
            **{name: getattr(record, name) for name in _FIELDS},
            "updated_at": now,
        }
        for record in sorted(records, key=lambda r: (r.source, r.scope))
    ]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_checkpoint)
    statement = statement.on_conflict_do_update(
        index_elements=["source", "scope"],
        set_={name: statement.excluded[name] for name in (*_FIELDS, "updated_at")},
    )
    await connection.execute(statement, rows)
