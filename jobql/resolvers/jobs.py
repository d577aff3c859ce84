"""Use cases over jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from jobql.errors import NotFound
from jobql.resolvers.context import RequestContext
from jobql.resolvers.pagination import Connection, PageArgs, keyset_window, to_connection
from jobql.resolvers.validation import text
from jobql.storage import jobs
from jobql.storage.enums import JobType
from jobql.storage.identifiers import CursorContext, ValueKind
from jobql.storage.jobs import JobFilter
from jobql.storage.paging import Position

__all__ = ["JobFilter", "build_filter", "get_job", "list_jobs", "load_job"]

CURSOR_KIND = "job"


def build_filter(
    *,
    name_starts_with: str | None = None,
    types: list[JobType] | None = None,
    parent_name: str | None = None,
) -> JobFilter:
    return JobFilter(
        name_starts_with=text("nameStartsWith", name_starts_with),
        types=None if types is None else tuple(sorted({t.name for t in types})),
        parent_name=text("parentName", parent_name),
    )


def _position(row: Row[Any]) -> Position:
    return Position(row.name, row.id)


async def list_jobs(ctx: RequestContext, spec: JobFilter, page: PageArgs) -> Connection[Row[Any]]:
    cursor_context = CursorContext(CURSOR_KIND, ctx.workspace, "NAME", "ASC")
    window = keyset_window(page, ctx.cursors, cursor_context, ValueKind.TEXT)
    found = await jobs.list_jobs(ctx.reader, ctx.workspace, spec, window)
    for row in found.rows:
        ctx.loaders.job_by_id.prime(row.id, row)

    async def count() -> int:
        return await jobs.count_jobs(ctx.reader, ctx.workspace, spec)

    return to_connection(found, ctx.cursors, cursor_context, _position, count)


async def get_job(ctx: RequestContext, name: str) -> Row[Any]:
    row = await jobs.get_job_by_name(ctx.reader, ctx.workspace, text("name", name))
    if row is None:
        raise NotFound(f"No job named {name!r} in this workspace.")
    return row


async def load_job(ctx: RequestContext, key: int) -> Row[Any]:
    row = await ctx.loaders.job_by_id.load(key)
    if row is None:  # only when deleted mid-request
        raise NotFound(f"Job {key} no longer exists.")
    return row  # type: ignore[no-any-return]
