"""Job queries, confined to one workspace. Jobs are ordered by name, then id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, false, func, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select

from jobql.storage.engine import Reader
from jobql.storage.models import Job
from jobql.storage.paging import Page, SortKey, Window, apply_window, page_from_rows
from jobql.storage.scope import in_workspace

_job = Job.__table__.c
JOB_ORDER = SortKey(column=_job.name, id=_job.id, descending=False, nullable=False)


@dataclass(frozen=True, slots=True)
class JobFilter:
    name_starts_with: str | None = None
    types: tuple[str, ...] | None = None
    parent_name: str | None = None


def base_query(workspace: str) -> Select[Any]:
    return select(Job.__table__).where(in_workspace(Job.workspace_id, workspace))  # type: ignore[arg-type]


def filter_conditions(spec: JobFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if spec.name_starts_with is not None:
        prefix = spec.name_starts_with
        conditions.append(Job.name.startswith(prefix, autoescape=True))
        # SQLite's LIKE folds ASCII case: the prefix itself, compared exactly, decides.
        conditions.append(func.substr(Job.name, 1, len(prefix)) == prefix)
    if spec.types is not None:
        conditions.append(Job.type.in_(spec.types) if spec.types else false())
    if spec.parent_name is not None:
        parent = aliased(Job)
        conditions.append(
            Job.parent_id.in_(
                select(parent.id).where(
                    parent.workspace_id == Job.workspace_id, parent.name == spec.parent_name
                )
            )
        )
    return conditions


async def list_jobs(
    reader: Reader, workspace: str, spec: JobFilter, window: Window
) -> Page[Row[Any]]:
    statement = apply_window(
        base_query(workspace).where(*filter_conditions(spec)), JOB_ORDER, window
    )
    return page_from_rows(await reader.execute(statement), window)


async def count_jobs(reader: Reader, workspace: str, spec: JobFilter) -> int:
    statement = (
        select(func.count())
        .select_from(Job)
        .where(in_workspace(Job.workspace_id, workspace), *filter_conditions(spec))  # type: ignore[arg-type]
    )
    return int(await reader.scalar(statement))


async def get_job_by_name(reader: Reader, workspace: str, name: str) -> Row[Any] | None:
    rows = await reader.execute(base_query(workspace).where(Job.name == name))
    return rows[0] if rows else None


async def jobs_by_ids(reader: Reader, workspace: str, ids: Sequence[int]) -> dict[int, Row[Any]]:
    rows = await reader.execute(base_query(workspace).where(Job.id.in_(ids)))
    return {row.id: row for row in rows}
