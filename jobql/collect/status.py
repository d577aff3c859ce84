"""`jobql collect --status`: each source's last success, lag and last error, from the database.

One line per source, then one per job or instance whose last read failed. A source is healthy
when its last pass succeeded (no error since its last success).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.collect.checkpoints import SOURCE_SCOPE
from jobql.resolvers.checkpoints import load_checkpoints
from jobql.storage.records import CheckpointRecord

HEADER = ("SOURCE", "KIND", "LAST SUCCESS", "LAG", "PASSES", "GAPS", "LAST ERROR")


async def status_lines(
    engines: AsyncEngine | Sequence[AsyncEngine],
    sources: Sequence[tuple[str, str]] | None,
    now: datetime,
    *,
    names: Sequence[str] | None = None,
) -> tuple[list[str], bool]:
    """The report's lines and whether every source is healthy. `sources`: (name, kind) of the
    configured sources (listed even before their first pass); None: every source stored, or
    those of `names`. Several engines: the checkpoints of every database (workspaces in several
    databases keep their sources' checkpoints each in its own)."""
    rows: dict[str, list[CheckpointRecord]] = defaultdict(list)
    for engine in [engines] if isinstance(engines, AsyncEngine) else engines:
        for row in await load_checkpoints(engine):
            rows[row.source].append(row)
    wanted = list(sources) if sources is not None else _stored_sources(rows)
    if sources is None and names:
        wanted = [(name, kind) for name, kind in wanted if name in names]
    table: list[tuple[str, ...]] = [HEADER]
    details: list[str] = []
    healthy = True
    for name, kind in wanted:
        own = next((r for r in rows.get(name, []) if r.scope == SOURCE_SCOPE), None)
        if own is None:
            table.append((name, kind, "never", "-", "0", "-", "no pass yet"))
            healthy = False
            continue
        ok = own.last_success_at is not None and (
            own.last_error_at is None or own.last_error_at <= own.last_success_at
        )
        healthy = healthy and ok
        position = _position(own)
        table.append(
            (
                name,
                own.kind,
                _time(own.last_success_at),
                _lag(own.high_water, now),
                str(position.get("passes", 0)),
                str(position.get("gaps", 0)) if own.kind == "schedulerx" else "-",
                "-" if ok else f"{_time(own.last_error_at)}: {own.last_error}",
            )
        )
        for scope in rows.get(name, []):
            failed_at = scope.last_error_at
            if scope.scope == SOURCE_SCOPE or failed_at is None:
                continue
            if scope.last_success_at is None or failed_at > scope.last_success_at:
                details.append(
                    f"  {name} {scope.scope}: {_time(scope.last_error_at)}: {scope.last_error}"
                )
    return _columns(table) + details, healthy


def _stored_sources(rows: dict[str, list[CheckpointRecord]]) -> list[tuple[str, str]]:
    return [(name, own[0].kind) for name, own in sorted(rows.items())]


def _position(row: CheckpointRecord) -> dict[str, object]:
    try:
        data = json.loads(row.position or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _time(value: datetime | None) -> str:
    return "never" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _lag(high_water: datetime | None, now: datetime) -> str:
    if high_water is None:
        return "-"
    seconds = max(0.0, (now - high_water).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _columns(table: list[tuple[str, ...]]) -> list[str]:
    """Aligned columns; the last (the error) as long as it is."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in table
    ]
