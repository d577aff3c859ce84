"""Where the collector stands, as data: one checkpoint per source and scope.

A scope is what one bookmark covers: for DLF the walked jobs (`*`: every job of the workspace, or
one job's name), for SchedulerX a job id, for Realtime Compute `job/instance`. The source's own
row (scope "") carries the outcome of its last pass: last success, last error, and the time its
data is complete up to (the least high-water mark of its scopes; lag = now - that).

Positions (JSON in the row):
- DLF: `{"high_water": ms, "window": [start_ms, end_ms, offset] | null, "open": [[job, id,
  plan_ms], ...]}`: every instance planned before `high_water` is stored; `window` is the
  plan-time window being walked (`[start, end)`) and the row offset its next page starts at;
  `open` the instances last seen not yet ended, read again every pass until they end.
- SchedulerX: `{"latest": [ids], "open": [ids], "gaps": n}`: the ids of the last reply, those of
  them not ended, and how many polls found only new instances (a possible gap).
- Realtime Compute: `{"status": "RUNNING", "ended": false}`.

Rows are written by `jobql.resolvers.checkpoints.store_page` in the transaction that stores the
records they cover.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from jobql.collect.config import SourceConfig
from jobql.storage.records import CheckpointRecord

SOURCE_SCOPE = ""
ALL_JOBS = "*"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(milliseconds=1)


def from_ms(value: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=value)


@dataclass
class DlfPosition:
    high_water: int | None = None
    window: tuple[int, int, int] | None = None
    # (job name, instance id) -> plan time (ms)
    open: dict[tuple[str, int], int] = field(default_factory=dict)

    @classmethod
    def read(cls, data: dict[str, Any]) -> DlfPosition:
        window = data.get("window")
        return cls(
            high_water=data.get("high_water"),
            window=None if window is None else (int(window[0]), int(window[1]), int(window[2])),
            open={(str(job), int(key)): int(plan) for job, key, plan in data.get("open", [])},
        )

    def data(self) -> dict[str, Any]:
        return {
            "high_water": self.high_water,
            "window": None if self.window is None else list(self.window),
            "open": [[job, key, plan] for (job, key), plan in sorted(self.open.items())],
        }


@dataclass
class SchedulerxPosition:
    latest: list[int] = field(default_factory=list)
    open: list[int] = field(default_factory=list)
    gaps: int = 0
    polled: bool = False

    @classmethod
    def read(cls, data: dict[str, Any]) -> SchedulerxPosition:
        return cls(
            latest=[int(i) for i in data.get("latest", [])],
            open=[int(i) for i in data.get("open", [])],
            gaps=int(data.get("gaps", 0)),
            polled=bool(data),
        )

    def data(self) -> dict[str, Any]:
        return {"latest": self.latest, "open": self.open, "gaps": self.gaps}


@dataclass
class FlinkPosition:
    status: str | None = None
    ended: bool = False

    @classmethod
    def read(cls, data: dict[str, Any]) -> FlinkPosition:
        return cls(status=data.get("status"), ended=bool(data.get("ended", False)))

    def data(self) -> dict[str, Any]:
        return {"status": self.status, "ended": self.ended}


class SourceCheckpoints:
    """A source's checkpoints as loaded at the start of a pass, kept up to date as the pass
    stores pages (the collector is the only writer of its sources' rows)."""

    def __init__(self, source: SourceConfig, rows: Iterable[CheckpointRecord]) -> None:
        self.source = source
        self.rows = {row.scope: row for row in rows if row.source == source.name}

    def position(self, scope: str) -> dict[str, Any]:
        row = self.rows.get(scope)
        if row is None or not row.position:
            return {}
        data = json.loads(row.position)
        return data if isinstance(data, dict) else {}

    def record(
        self,
        scope: str,
        position: dict[str, Any],
        *,
        high_water: datetime | None = None,
        success_at: datetime | None = None,
        error: str | None = None,
        at: datetime | None = None,
    ) -> CheckpointRecord:
        """The scope's row with a new position (and, when given, high-water mark, success or
        error), to be written with the data it covers; `commit` it once written."""
        row = self.rows.get(scope) or CheckpointRecord(
            source=self.source.name, scope=scope, kind=self.source.kind
        )
        return replace(
            row,
            kind=self.source.kind,
            position=json.dumps(position, sort_keys=True),
            high_water=high_water if high_water is not None else row.high_water,
            last_success_at=success_at if success_at is not None else row.last_success_at,
            last_error=error if error is not None else row.last_error,
            last_error_at=at if error is not None else row.last_error_at,
        )

    def commit(self, records: Iterable[CheckpointRecord]) -> None:
        for record in records:
            self.rows[record.scope] = record

    def outcome(
        self,
        *,
        at: datetime,
        error: str | None,
        high_water: datetime | None,
        gaps: int,
    ) -> CheckpointRecord:
        """The source's own row after a pass."""
        row = self.rows.get(SOURCE_SCOPE) or CheckpointRecord(
            source=self.source.name, scope=SOURCE_SCOPE, kind=self.source.kind
        )
        data = self.position(SOURCE_SCOPE)
        data["gaps"] = int(data.get("gaps", 0)) + gaps
        data["passes"] = int(data.get("passes", 0)) + 1
        return replace(
            row,
            kind=self.source.kind,
            position=json.dumps(data, sort_keys=True),
            high_water=high_water if high_water is not None else row.high_water,
            last_success_at=at if error is None else row.last_success_at,
            last_error=error if error is not None else row.last_error,
            last_error_at=at if error is not None else row.last_error_at,
        )

    def high_water(self, scopes: Iterable[str]) -> datetime | None:
        """The least high-water mark of `scopes`: the source's data is complete up to it."""
        marks = [self.rows[s].high_water for s in scopes if s in self.rows]
        if not marks or any(mark is None for mark in marks):
            return None
        return min(mark for mark in marks if mark is not None)
