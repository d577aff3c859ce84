"""Use cases over instances: list, look up, and the instances of a job."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row

from jobql.errors import BadUserInput, NotFound
from jobql.resolvers.context import RequestContext
from jobql.resolvers.pagination import (
    MAX_PAGE_SIZE,
    Connection,
    PageArgs,
    keyset_window,
    to_connection,
)
from jobql.resolvers.validation import text
from jobql.storage import instances
from jobql.storage.enums import InstanceOrderField, InstanceStatus, InstanceType, OrderDirection
from jobql.storage.identifiers import CursorContext
from jobql.storage.instances import InstanceFilter, InstanceOrder
from jobql.storage.paging import OffsetWindow, Position

__all__ = [
    "InstanceFilter",
    "InstanceOrder",
    "build_filter",
    "build_order",
    "facets_of",
    "get_instance",
    "list_instances",
    "list_instances_offset",
    "list_job_instances",
    "load_instance",
]

CURSOR_KIND = "instance"


def build_filter(
    *,
    job_name: str | None = None,
    statuses: list[InstanceStatus] | None = None,
    instance_types: list[InstanceType] | None = None,
    plan_time_after: datetime | None = None,
    plan_time_before: datetime | None = None,
    force_success: bool | None = None,
    ignore_success: bool | None = None,
    run_ids: list[str] | None = None,
) -> InstanceFilter:
    if (
        plan_time_after is not None
        and plan_time_before is not None
        and plan_time_after >= plan_time_before
    ):
        raise BadUserInput(
            "`planTimeAfter` must be earlier than `planTimeBefore` (both bounds are exclusive)."
        )
    return InstanceFilter(
        job_name=text("jobName", job_name),
        statuses=None if statuses is None else tuple(sorted({s.name for s in statuses})),
        instance_types=(
            None if instance_types is None else tuple(sorted({t.name for t in instance_types}))
        ),
        plan_time_after=plan_time_after,
        plan_time_before=plan_time_before,
        force_success=force_success,
        ignore_success=ignore_success,
        run_ids=None if run_ids is None else _run_ids(run_ids),
    )


def _run_ids(values: list[str]) -> tuple[str, ...]:
    """Canonical (lower-case) UUIDs, as `runId` is stored."""
    if len(values) > MAX_PAGE_SIZE:
        raise BadUserInput(f"`runIds` takes at most {MAX_PAGE_SIZE} ids, got {len(values)}.")
    found: set[str] = set()
    for index, value in enumerate(values):
        try:
            found.add(str(uuid.UUID(value)))
        except ValueError:
            raise BadUserInput(f"`runIds[{index}]` is not a UUID: {value!r}.") from None
    return tuple(sorted(found))


def facets_of(text: str | None) -> Any:
    """An instance's stored OpenLineage facets (JSON text) as a value; None when it has none."""
    return None if text is None else orjson.loads(text)


def build_order(
    field: InstanceOrderField | None = None, direction: OrderDirection | None = None
) -> InstanceOrder:
    default = InstanceOrder()
    return InstanceOrder(field or default.field, direction or default.direction)


def cursor_context(ctx: RequestContext, order: InstanceOrder) -> CursorContext:
    return CursorContext(CURSOR_KIND, ctx.workspace, order.field.value, order.direction.value)


def _position_of(order: InstanceOrder) -> Any:
    def position(row: Row[Any]) -> Position:
        return Position(order.value_of(row), row.id)

    return position


def _prime(ctx: RequestContext, rows: list[Row[Any]]) -> None:
    """Rows already read answer later `InstanceNode.instance` look-ups without a statement."""
    for row in rows:
        ctx.loaders.instance_by_id.prime(row.id, row)


async def list_instances(
    ctx: RequestContext, spec: InstanceFilter, order: InstanceOrder, page: PageArgs
) -> Connection[Row[Any]]:
    context = cursor_context(ctx, order)
    window = keyset_window(page, ctx.cursors, context, order.value_kind)
    found = await instances.list_instances(ctx.reader, ctx.workspace, spec, order, window)
    _prime(ctx, found.rows)

    async def count() -> int:
        return await instances.count_instances(ctx.reader, ctx.workspace, spec)

    return to_connection(found, ctx.cursors, context, _position_of(order), count)


async def list_instances_offset(
    ctx: RequestContext, spec: InstanceFilter, order: InstanceOrder, limit: int, offset: int
) -> tuple[list[Row[Any]], int]:
    """`limit` instances from `offset` on, and how many match: the offset window of the source
    REST endpoints, whose contracts define `limit`, `offset` and `total`. The same storage query
    as `list_instances` (one query path, two windows)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadUserInput(f"`limit` must be between 1 and {MAX_PAGE_SIZE}, got {limit}.")
    if offset < 0:
        raise BadUserInput(f"`offset` must not be negative, got {offset}.")
    total = await instances.count_instances(ctx.reader, ctx.workspace, spec)
    if offset >= total:
        return [], total
    window = OffsetWindow(limit=limit, offset=offset)
    found = await instances.list_instances(
        ctx.reader, ctx.workspace, spec, order, window, total=total
    )
    _prime(ctx, found.rows)
    return found.rows, total


async def list_job_instances(
    ctx: RequestContext, job_id: int, spec: InstanceFilter, order: InstanceOrder, page: PageArgs
) -> Connection[Row[Any]]:
    context = cursor_context(ctx, order)
    window = keyset_window(page, ctx.cursors, context, order.value_kind)
    found = await ctx.loaders.instances_by_job_id.load((job_id, (spec, order, window)))
    _prime(ctx, found.rows)

    async def count() -> int:
        return int(await ctx.loaders.instance_count_by_job_id.load((job_id, spec)))

    return to_connection(found, ctx.cursors, context, _position_of(order), count)


async def get_instance(ctx: RequestContext, job_name: str, instance_id: int) -> Row[Any]:
    row = await instances.get_instance(
        ctx.reader, ctx.workspace, text("jobName", job_name), instance_id
    )
    if row is None:
        raise NotFound(f"Job {job_name!r} has no instance {instance_id} in this workspace.")
    _prime(ctx, [row])
    return row


async def load_instance(ctx: RequestContext, key: int) -> Row[Any]:
    row = await ctx.loaders.instance_by_id.load(key)
    if row is None:  # only when deleted mid-request
        raise NotFound(f"Instance {key} no longer exists.")
    return row  # type: ignore[no-any-return]
