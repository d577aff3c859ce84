"""The offset window the REST lists use is a resolvers use case beside GraphQL's keyset one."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.errors import BadUserInput
from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers.context import RequestContext
from jobql.resolvers.pagination import PageArgs
from jobql.settings import DEFAULT_CURSOR_SECRET
from jobql.storage.identifiers import CursorCodec
from tests.factories import make_instance, make_job, new_workspace


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (1001, 0), (10, -1)])
async def test_offset_window_bounds(engine: AsyncEngine, limit: int, offset: int) -> None:
    ctx = RequestContext.open(engine, CursorCodec(DEFAULT_CURSOR_SECRET), "anywhere")
    try:
        with pytest.raises(BadUserInput):
            await instance_use_cases.list_instances_offset(
                ctx,
                instance_use_cases.build_filter(),
                instance_use_cases.build_order(),
                limit,
                offset,
            )
    finally:
        await ctx.close()


async def test_offset_and_keyset_windows_list_the_same_rows(engine: AsyncEngine) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace)
    for _ in range(5):
        await make_instance(engine, job)
    ctx = RequestContext.open(engine, CursorCodec(DEFAULT_CURSOR_SECRET), workspace.name)
    try:
        spec = instance_use_cases.build_filter(job_name=job.name)
        order = instance_use_cases.build_order()
        keyset = await instance_use_cases.list_instances(ctx, spec, order, PageArgs(first=5))
        rows, total = await instance_use_cases.list_instances_offset(ctx, spec, order, 3, 2)
    finally:
        await ctx.close()
    assert total == 5
    assert [row.id for row in rows] == [row.id for row in keyset.items][2:]
