"""Relay connections: edges, nodes, pageInfo and totalCount, shared by every list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, Self, TypeVar

import strawberry

from jobql.resolvers.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageArgs
from jobql.resolvers.pagination import Connection as PageResult
from jobql.schema.catalogue import known_resolver

T = TypeVar("T")

FIRST = (
    f"Return the first n items (1..{MAX_PAGE_SIZE}) after `after`. Without `first` and `last`, "
    f"`first: {DEFAULT_PAGE_SIZE}`."
)
AFTER = "Cursor (`endCursor` or an edge's `cursor`) of this connection to page forwards from."
LAST = f"Return the last n items (1..{MAX_PAGE_SIZE}) before `before`. Not with `first`."
BEFORE = "Cursor (`startCursor` or an edge's `cursor`) of this connection to page backwards from."


def page_args(
    first: int | None, after: str | None, last: int | None, before: str | None
) -> PageArgs:
    return PageArgs(first=first, after=after, last=last, before=before)


@strawberry.type(description="Where a page sits in its connection (Relay cursor connections).")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description=(
            "More items follow this page. Exact when paging with `first`; with `last`, true "
            "whenever `before` was given."
        )
    )
    has_previous_page: bool = strawberry.field(
        description=(
            "Items precede this page. Exact when paging with `last`; with `first`, true whenever "
            "`after` was given."
        )
    )
    start_cursor: str | None = strawberry.field(description="Cursor of the first item, if any.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last item, if any.")


@strawberry.type(description="An item of a connection with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(
        description=(
            "Opaque keyset cursor of this item: valid only for the same connection, workspace "
            "and order. It keeps its place even if the item is deleted."
        )
    )
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of items with Relay cursor pagination.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page with cursors.")
    nodes: list[T] = strawberry.field(description="The items of this page, without cursors.")
    page_info: PageInfo = strawberry.field(description="How to reach the neighbouring pages.")
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(
        description=(
            "Number of items in the whole connection with its filters, ignoring paging. Counted "
            "only when selected; costs a count over the matching rows."
        )
    )
    @known_resolver
    async def total_count(self) -> int:
        return await self.count()


def to_graphql(result: PageResult[Any], convert: Callable[[Any], T]) -> Connection[T]:
    nodes = [convert(item) for item in result.items]
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(result.cursors, nodes, strict=True)],
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=result.has_next,
            has_previous_page=result.has_previous,
            start_cursor=result.start_cursor,
            end_cursor=result.end_cursor,
        ),
        count=result.count,
    )


StatusCounts = Callable[[], Awaitable[list[tuple[str, int]]]]


@strawberry.type(description="A page of items, and counts by status over all the items it matches.")
class CountedConnection(Connection[T]):
    """A connection whose `countsByStatus` (each subclass's own field: the count types differ)
    reads `read_status_counts` when selected; `item` turns a stored row into the item type."""

    read_status_counts: strawberry.Private[StatusCounts]

    @staticmethod
    def item(row: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def of(cls, result: PageResult[Any], read_status_counts: StatusCounts) -> Self:
        page = to_graphql(result, cls.item)
        return cls(
            edges=page.edges,
            nodes=page.nodes,
            page_info=page.page_info,
            count=page.count,
            read_status_counts=read_status_counts,
        )
