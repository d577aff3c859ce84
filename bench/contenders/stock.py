"""Stock Strawberry: what the Strawberry documentation leads to.

The same type and field names as jobql, `relay.Node` types, `relay.ListConnection` connections fed
by a sliceable query (LIMIT/OFFSET, the way Strawberry's docs slice a Django QuerySet), plain
resolvers and no loaders: one statement per parent for `jobName` and for `nodes`. Strawberry's
own `datetime` scalar (ISO 8601 with offset) and offset cursors (`arrayconnection:N`); the
benchmark normalises both before comparing with jobql.

Run: BENCH_DATABASE_URL=postgresql+asyncpg://... uvicorn bench.contenders.stock:create_app --factory
"""

from __future__ import annotations

import enum
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, NewType, Self

import strawberry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql import Select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry import relay
from strawberry.asgi import GraphQL
from strawberry.schema.config import StrawberryConfig

from jobql.storage.models import Instance as InstanceRow
from jobql.storage.models import InstanceNode as NodeRow
from jobql.storage.models import Job as JobRow
from jobql.storage.models import Workspace as WorkspaceRow

WORKSPACE = "default"
ENGINE: AsyncEngine | None = None

Long = strawberry.scalar(
    NewType("Long", int), name="Long", serialize=int, parse_value=int, description="64-bit integer"
)


def engine() -> AsyncEngine:
    assert ENGINE is not None
    return ENGINE


@strawberry.enum
class InstanceStatus(enum.Enum):
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    RUNNING_EXCEPTION = "RUNNING_EXCEPTION"
    SKIP_BY_DEPEND = "SKIP_BY_DEPEND"
    FREEZE = "FREEZE"
    PAUSE = "PAUSE"
    MANUAL_STOP = "MANUAL_STOP"
    REJECTED = "REJECTED"


@strawberry.enum
class InstanceType(enum.Enum):
    GENERAL = "GENERAL"
    MANUAL = "MANUAL"
    PATCH_DATA = "PATCH_DATA"
    SUBJOB = "SUBJOB"
    ONE_OFF = "ONE_OFF"


@strawberry.enum
class NodeStatus(enum.Enum):
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    SKIP = "SKIP"
    PAUSE = "PAUSE"
    MANUAL_STOP = "MANUAL_STOP"


class SlicedQuery:
    """A query that ListConnection slices into LIMIT/OFFSET, then iterates asynchronously."""

    def __init__(self, query: Select[Any], wrap: Any) -> None:
        self.query = query
        self.wrap = wrap

    def __getitem__(self, window: slice) -> AsyncIterator[Any]:
        query = self.query.offset(window.start or 0)
        if window.stop is not None:
            query = query.limit(window.stop - (window.start or 0))
        return self._rows(query)

    async def _rows(self, query: Select[Any]) -> AsyncIterator[Any]:
        async with engine().connect() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            yield self.wrap(row)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._rows(self.query)


@strawberry.type
class NodesConnection(relay.ListConnection[relay.NodeType]):
    """ListConnection plus the `nodes` shortcut jobql's documents use."""

    @strawberry.field
    def nodes(self) -> list[relay.NodeType]:
        return [edge.node for edge in self.edges]


@strawberry.type
class CountedConnection(NodesConnection[relay.NodeType]):
    """ListConnection plus totalCount, as in Strawberry's custom-connection example."""

    query: strawberry.Private[Select[Any] | None] = None

    @strawberry.field
    async def total_count(self) -> int:
        assert self.query is not None
        count_query = select(func.count()).select_from(self.query.order_by(None).subquery())
        async with engine().connect() as conn:
            return int(await conn.scalar(count_query) or 0)

    @classmethod
    def resolve_connection(  # type: ignore[override]
        cls, nodes: Iterable[Any], **kwargs: Any
    ) -> Any:
        result = super().resolve_connection(nodes, **kwargs)

        async def with_query() -> Self:
            connection = await result  # type: ignore[misc]
            connection.query = nodes.query if isinstance(nodes, SlicedQuery) else None
            return connection  # type: ignore[no-any-return]

        return with_query()


@strawberry.type
class InstanceNode(relay.Node):
    id: relay.NodeID[int]
    name: str
    type: str
    status: NodeStatus
    plan_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    submit_time: datetime | None
    retry_times: int | None
    input_row_count: Long | None  # type: ignore[valid-type]
    speed: float | None
    log_path: str | None

    @classmethod
    def from_row(cls, row: Any) -> InstanceNode:
        return cls(
            id=row.id,
            name=row.name,
            type=row.type,
            status=NodeStatus[row.status],
            plan_time=row.plan_time,
            start_time=row.start_time,
            end_time=row.end_time,
            submit_time=row.submit_time,
            retry_times=row.retry_times,
            input_row_count=row.input_row_count,
            speed=row.speed,
            log_path=row.log_path,
        )


@strawberry.type
class Instance(relay.Node):
    id: relay.NodeID[int]
    instance_id: Long  # type: ignore[valid-type]
    job_id: strawberry.Private[int]
    job_instance_name: str | None
    status: InstanceStatus
    instance_type: InstanceType
    plan_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    submit_time: datetime | None
    execute_time: float | None
    force_success: bool
    ignore_success: bool
    version: int | None

    @strawberry.field
    async def job_name(self) -> str:
        async with engine().connect() as conn:
            name = await conn.scalar(select(JobRow.name).where(JobRow.id == self.job_id))
        return str(name)

    @relay.connection(NodesConnection[InstanceNode], max_results=1000)
    def nodes(self) -> Iterable[InstanceNode]:
        query = (
            select(NodeRow.__table__)
            .where(NodeRow.instance_id == self.id)
            .order_by(NodeRow.position, NodeRow.id)
        )
        return SlicedQuery(query, InstanceNode.from_row)  # type: ignore[return-value]

    @classmethod
    def from_row(cls, row: Any) -> Instance:
        return cls(
            id=row.id,
            instance_id=row.vendor_instance_id,
            job_id=row.job_id,
            job_instance_name=row.job_instance_name,
            status=InstanceStatus[row.status],
            instance_type=InstanceType[row.instance_type],
            plan_time=row.plan_time,
            start_time=row.start_time,
            end_time=row.end_time,
            submit_time=row.submit_time,
            execute_time=row.execute_time,
            force_success=row.force_success,
            ignore_success=row.ignore_success,
            version=row.version,
        )


@strawberry.input
class InstanceFilter:
    statuses: list[InstanceStatus] | None = None
    instance_types: list[InstanceType] | None = None
    plan_time_after: datetime | None = None
    plan_time_before: datetime | None = None


def _workspace_id() -> Any:
    return select(WorkspaceRow.id).where(WorkspaceRow.name == WORKSPACE).scalar_subquery()


@strawberry.type
class Query:
    @relay.connection(CountedConnection[Instance], max_results=1000)
    def instances(self, filter: InstanceFilter | None = None) -> Iterable[Instance]:
        query = select(InstanceRow.__table__).where(InstanceRow.workspace_id == _workspace_id())
        if filter is not None:
            if filter.statuses is not None:
                query = query.where(InstanceRow.status.in_([s.name for s in filter.statuses]))
            if filter.instance_types is not None:
                query = query.where(
                    InstanceRow.instance_type.in_([t.name for t in filter.instance_types])
                )
            if filter.plan_time_after is not None:
                query = query.where(InstanceRow.plan_time > filter.plan_time_after)
            if filter.plan_time_before is not None:
                query = query.where(InstanceRow.plan_time < filter.plan_time_before)
        query = query.order_by(InstanceRow.plan_time.desc(), InstanceRow.id.desc())
        return SlicedQuery(query, Instance.from_row)  # type: ignore[return-value]

    @strawberry.field
    async def instance(self, job_name: str, instance_id: Long) -> Instance | None:  # type: ignore[valid-type]
        query = (
            select(InstanceRow.__table__)
            .join(JobRow, JobRow.id == InstanceRow.job_id)
            .where(
                JobRow.workspace_id == _workspace_id(),
                JobRow.name == job_name,
                InstanceRow.vendor_instance_id == instance_id,
            )
        )
        async with engine().connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Instance.from_row(row)


schema = strawberry.Schema(query=Query, config=StrawberryConfig(relay_max_results=1000))


def create_app() -> Starlette:
    global ENGINE
    ENGINE = create_async_engine(
        os.environ["BENCH_DATABASE_URL"],
        pool_size=int(os.environ.get("BENCH_POOL_SIZE", "10")),
        max_overflow=0,
    )

    async def healthz(_request: Request) -> Response:
        return Response(b"ok")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await engine().dispose()

    return Starlette(
        routes=[
            Route("/graphql", GraphQL(schema, graphql_ide=None)),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
