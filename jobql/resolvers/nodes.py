"""Use cases over instance nodes (the steps inside a run)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row

from jobql.resolvers.context import RequestContext
from jobql.resolvers.pagination import Connection, PageArgs, keyset_window, to_connection
from jobql.storage.enums import NodeStatus
from jobql.storage.identifiers import CursorContext, ValueKind
from jobql.storage.paging import Position

CURSOR_KIND = "node"


def _position(row: Row[Any]) -> Position:
    return Position(row.position, row.id)


def status_names(statuses: list[NodeStatus] | None) -> tuple[str, ...] | None:
    return None if statuses is None else tuple(sorted({s.name for s in statuses}))


async def list_instance_nodes(
    ctx: RequestContext,
    instance: tuple[int, datetime],
    statuses: list[NodeStatus] | None,
    page: PageArgs,
) -> Connection[Row[Any]]:
    """`instance`: its key and plan time (the nodes' partition key on PostgreSQL)."""
    cursor_context = CursorContext(CURSOR_KIND, ctx.workspace, "POSITION", "ASC")
    window = keyset_window(page, ctx.cursors, cursor_context, ValueKind.INT32)
    names = status_names(statuses)
    found = await ctx.loaders.nodes_by_instance_id.load((instance, (names, window)))

    async def count() -> int:
        return int(await ctx.loaders.node_count_by_instance_id.load((instance, names)))

    return to_connection(found, ctx.cursors, cursor_context, _position, count)
