"""Instance queries. Every function takes the workspace and confines itself to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, false, func, select
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import KeyedColumnElement

from jobql.storage.engine import Reader
from jobql.storage.enums import InstanceOrderField, OrderDirection
from jobql.storage.identifiers import ValueKind
from jobql.storage.models import Instance, Job
from jobql.storage.paging import (
    KeysetWindow,
    Page,
    SortKey,
    Window,
    apply_window,
    group_pages,
    page_from_rows,
    per_parent_window,
)
from jobql.storage.scope import in_workspace, workspace_key


@dataclass(frozen=True, slots=True)
class _SortColumn:
    attribute: str
    nullable: bool
    value_kind: ValueKind

    @property
    def column(self) -> KeyedColumnElement[Any]:
        return Instance.__table__.c[self.attribute]


SORT_COLUMNS = {
    InstanceOrderField.PLAN_TIME: _SortColumn("plan_time", False, ValueKind.TIME),
    InstanceOrderField.START_TIME: _SortColumn("start_time", True, ValueKind.TIME),
    InstanceOrderField.END_TIME: _SortColumn("end_time", True, ValueKind.TIME),
    InstanceOrderField.INSTANCE_ID: _SortColumn("vendor_instance_id", False, ValueKind.INT64),
}


@dataclass(frozen=True, slots=True)
class InstanceFilter:
    """Conditions on instances; tuples so that it can be part of a loader key."""

    job_name: str | None = None
    statuses: tuple[str, ...] | None = None
    instance_types: tuple[str, ...] | None = None
    plan_time_after: datetime | None = None
    plan_time_before: datetime | None = None
    force_success: bool | None = None
    ignore_success: bool | None = None
    run_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class InstanceOrder:
    field: InstanceOrderField = InstanceOrderField.PLAN_TIME
    direction: OrderDirection = OrderDirection.DESC

    def sort_key(self) -> SortKey:
        sort = SORT_COLUMNS[self.field]
        return SortKey(
            column=sort.column,
            id=Instance.__table__.c.id,
            descending=self.direction is OrderDirection.DESC,
            nullable=sort.nullable,
        )

    def value_of(self, row: Any) -> Any:
        return getattr(row, SORT_COLUMNS[self.field].attribute)

    @property
    def value_kind(self) -> ValueKind:
        return SORT_COLUMNS[self.field].value_kind


# The job of an instance row, under its own name: a subquery of it never correlates to a `job`
# table of an enclosing statement (a job's nested instances), only to `instance`.
_owner = Job.__table__.alias("owner")


def base_query(workspace: str) -> Select[Any]:
    """Instance rows with their job's name. The name is a correlated subquery, not a join: a
    page reads it for the rows it keeps (after its LIMIT) only, and a prepared statement's generic
    plan walks the plan-time index and stops at the page's end, where with a join it estimated
    few rows, joined all that matched and sorted them (W4: 7x the database's time)."""
    job_name = (
        select(_owner.c.name)
        .where(_owner.c.id == Instance.job_id)
        .correlate_except(_owner)
        .scalar_subquery()
    )
    return select(Instance.__table__, job_name.label("job_name")).where(
        in_workspace(Instance.workspace_id, workspace)  # type: ignore[arg-type]
    )


def job_key(workspace: str, job_name: str) -> Any:
    """The id of the job named `job_name` in the workspace (null if none), as a subquery."""
    return (
        select(Job.id)
        .where(Job.workspace_id == workspace_key(workspace), Job.name == job_name)
        .scalar_subquery()
    )


def filter_conditions(workspace: str, spec: InstanceFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if spec.job_name is not None:
        conditions.append(Instance.job_id == job_key(workspace, spec.job_name))
    if spec.statuses is not None:
        conditions.append(Instance.status.in_(spec.statuses) if spec.statuses else false())
    if spec.instance_types is not None:
        conditions.append(
            Instance.instance_type.in_(spec.instance_types) if spec.instance_types else false()
        )
    if spec.plan_time_after is not None:
        conditions.append(Instance.plan_time > spec.plan_time_after)
    if spec.plan_time_before is not None:
        conditions.append(Instance.plan_time < spec.plan_time_before)
    if spec.force_success is not None:
        conditions.append(Instance.force_success.is_(spec.force_success))
    if spec.ignore_success is not None:
        conditions.append(Instance.ignore_success.is_(spec.ignore_success))
    if spec.run_ids is not None:
        conditions.append(Instance.run_id.in_(spec.run_ids) if spec.run_ids else false())
    return conditions


async def list_instances(
    reader: Reader,
    workspace: str,
    spec: InstanceFilter,
    order: InstanceOrder,
    window: Window,
    *,
    total: int | None = None,
) -> Page[Row[Any]]:
    """One query path for both windows: keyset (GraphQL) and offset (source REST endpoints)."""
    statement = apply_window(
        base_query(workspace).where(*filter_conditions(workspace, spec)), order.sort_key(), window
    )
    return page_from_rows(await reader.execute(statement), window, total=total)


async def count_instances(reader: Reader, workspace: str, spec: InstanceFilter) -> int:
    statement = (
        select(func.count())
        .select_from(Instance)
        .where(
            in_workspace(Instance.workspace_id, workspace),  # type: ignore[arg-type]
            *filter_conditions(workspace, spec),
        )
    )
    return int(await reader.scalar(statement))


def lookup_query(workspace: str, job_name: str, vendor_instance_id: int) -> Select[Any]:
    return base_query(workspace).where(
        Instance.job_id == job_key(workspace, job_name),
        Instance.vendor_instance_id == vendor_instance_id,
    )


async def get_instance(
    reader: Reader, workspace: str, job_name: str, vendor_instance_id: int
) -> Row[Any] | None:
    rows = await reader.execute(lookup_query(workspace, job_name, vendor_instance_id))
    return rows[0] if rows else None


async def instances_by_ids(
    reader: Reader, workspace: str, ids: Sequence[int]
) -> dict[int, Row[Any]]:
    rows = await reader.execute(base_query(workspace).where(Instance.id.in_(ids)))
    return {row.id: row for row in rows}


async def instances_for_jobs(
    reader: Reader,
    workspace: str,
    job_ids: Sequence[int],
    spec: InstanceFilter,
    order: InstanceOrder,
    window: KeysetWindow,
) -> dict[int, Page[Row[Any]]]:
    """A page of instances for each job, in one statement."""
    statement = per_parent_window(
        base_query(workspace).where(
            Instance.job_id.in_(job_ids),
            *filter_conditions(workspace, spec),
        ),
        Instance.job_id,  # type: ignore[arg-type]
        "job_id",
        order.sort_key(),
        window,
    )
    return group_pages(await reader.execute(statement), job_ids, "job_id", window)


async def count_instances_for_jobs(
    reader: Reader, workspace: str, job_ids: Sequence[int], spec: InstanceFilter
) -> dict[int, int]:
    statement = (
        select(Instance.job_id, func.count())
        .where(
            in_workspace(Instance.workspace_id, workspace),  # type: ignore[arg-type]
            Instance.job_id.in_(job_ids),
            *filter_conditions(workspace, spec),
        )
        .group_by(Instance.job_id)
    )
    counts = {job_id: 0 for job_id in job_ids}
    counts.update({row[0]: int(row[1]) for row in await reader.execute(statement)})
    return counts
