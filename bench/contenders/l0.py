"""L0: the hand-written limit. Starlette + SQLAlchemy Core + orjson, one endpoint.

POST /graphql with `{"op": "W1".."W5" | "W7", "variables": {...}}` (the variables of the jobql
document of that workload) answers exactly the JSON jobql answers, built from real queries:
one statement for the instances, one for all their nodes (window function per parent), one for
totalCount when asked. Ids and cursors come from jobql's own codec, so they are identical.
W7's statistics are two hand-written statements for PostgreSQL (`percentile_cont`), one per
panel: the whole window with its days (GROUPING SETS), and the page of jobs with theirs.

Run: BENCH_DATABASE_URL=postgresql+asyncpg://... uvicorn bench.contenders.l0:create_app --factory
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobql.settings import DEFAULT_CURSOR_SECRET
from jobql.storage.enums import InstanceStatus
from jobql.storage.identifiers import CursorCodec, CursorContext, ValueKind, encode_global_id
from jobql.storage.models import Instance, InstanceNode, Job, Workspace
from jobql.storage.paging import Position
from jobql.storage.types import format_utc, parse_utc

INST = Instance.__table__
N = InstanceNode.__table__
J = Job.__table__
W = Workspace.__table__
WORKSPACE = "default"
CODEC = CursorCodec(os.environ.get("JOBQL_CURSOR_SECRET", DEFAULT_CURSOR_SECRET))
CURSOR_CONTEXT = CursorContext("instance", WORKSPACE, "PLAN_TIME", "DESC")

INSTANCE_COLUMNS = {
    "id": INST.c.id,
    "instanceId": INST.c.vendor_instance_id,
    "jobInstanceName": INST.c.job_instance_name,
    "status": INST.c.status,
    "instanceType": INST.c.instance_type,
    "planTime": INST.c.plan_time,
    "startTime": INST.c.start_time,
    "endTime": INST.c.end_time,
    "submitTime": INST.c.submit_time,
    "executeTime": INST.c.execute_time,
    "forceSuccess": INST.c.force_success,
}
NODE_COLUMNS = {
    "id": N.c.id,
    "name": N.c.name,
    "type": N.c.type,
    "status": N.c.status,
    "planTime": N.c.plan_time,
    "startTime": N.c.start_time,
    "endTime": N.c.end_time,
    "submitTime": N.c.submit_time,
    "retryTimes": N.c.retry_times,
    "logPath": N.c.log_path,
}
TIMES = {"planTime", "startTime", "endTime", "submitTime"}

# Field lists per workload, in the order of bench/queries/W*.graphql.
W1_INSTANCE = ["id", "instanceId", "jobName", "status", "planTime", "startTime", "endTime"]
W1_NODE = ["id", "name", "type", "status", "startTime", "endTime"]
W2_INSTANCE = ["id", "instanceId", "jobName", "status", "planTime"]
W3_INSTANCE = [
    "id", "instanceId", "jobName", "jobInstanceName", "status", "instanceType", "planTime",
    "startTime", "endTime", "submitTime", "executeTime", "forceSuccess",
]  # fmt: skip
FULL_NODE = list(NODE_COLUMNS)
W4_INSTANCE = ["id", "instanceId", "jobName", "status", "instanceType", "planTime", "endTime"]
W5_INSTANCE = W3_INSTANCE[:-1]

# W7: per status a count column, `n_<STATUS>`, in the enum's order (the order jobql lists them).
STATUSES = [s.name for s in InstanceStatus]
_COUNTS = ",\n       ".join(
    f"count(*) FILTER (WHERE m.status = '{s}') AS \"n_{s}\"" for s in STATUSES
)
# Durations as jobql defines them (whole milliseconds of end - start), p50/p95 by percentile_cont.
_MEASURED = """
  SELECT i.plan_time, i.status,
         round(extract(epoch FROM i.end_time - i.start_time) * 1000)::float8 AS duration
  FROM instance i"""
_DAY = "date_trunc('day', m.plan_time, 'UTC')"
_AGGREGATES = f"""count(m.plan_time) AS n,
       {_COUNTS},
       count(m.duration) AS durations,
       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY m.duration) AS p"""
# The window (grouping ()) and its days (grouping (day)): counts by status, success rate, p50/p95.
W7_WINDOW_SQL = f"""
SELECT {_DAY} AS day, grouping({_DAY}) AS whole,
       {_AGGREGATES}
FROM ({_MEASURED}
  WHERE i.workspace_id = :ws AND i.plan_time > :after AND i.plan_time < :before
) m
GROUP BY GROUPING SETS ((), ({_DAY}))
ORDER BY whole DESC, day"""
# The first jobs by name, each with its window and its days; a job without runs in the window
# keeps its (job) row with n = 0 (LEFT JOIN), and a (job, day) row with a null day, skipped.
W7_JOBS_SQL = f"""
WITH page AS (
  SELECT j.id, j.name FROM job j WHERE j.workspace_id = :ws ORDER BY j.name, j.id LIMIT :jobs
)
SELECT page.id, page.name, {_DAY} AS day, grouping({_DAY}) AS whole,
       {_AGGREGATES}
FROM page LEFT JOIN LATERAL ({_MEASURED}
  WHERE i.job_id = page.id AND i.plan_time > :after AND i.plan_time < :before
) m ON true
GROUP BY GROUPING SETS ((page.name, page.id), (page.name, page.id, {_DAY}))
ORDER BY page.name, page.id, whole DESC, day"""
DAY = timedelta(days=1)
MS = timedelta(milliseconds=1)


def _value(name: str, value: Any, type_name: str) -> Any:
    if name == "id":
        return encode_global_id(type_name, value)
    if name in TIMES and value is not None:
        return format_utc(value)
    return value


def _object(row: Any, fields: list[str], type_name: str) -> dict[str, Any]:
    mapping = row._mapping
    return {name: _value(name, mapping[name], type_name) for name in fields}


class L0:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.workspace_id: int | None = None

    async def _workspace(self, conn: AsyncConnection) -> int:
        if self.workspace_id is None:
            self.workspace_id = await conn.scalar(select(W.c.id).where(W.c.name == WORKSPACE))
        assert self.workspace_id is not None
        return self.workspace_id

    def _instances(self, fields: list[str], ws: int) -> Any:
        columns: list[Any] = [INSTANCE_COLUMNS[f].label(f) for f in fields if f != "jobName"]
        if "id" not in fields:
            columns.append(INST.c.id)
        columns.append(INST.c.plan_time.label("_plan_time"))
        query = select(*columns).where(INST.c.workspace_id == ws)
        if "jobName" in fields:
            query = query.add_columns(J.c.name.label("jobName")).join_from(
                INST, J, J.c.id == INST.c.job_id
            )
        return query.order_by(INST.c.plan_time.desc(), INST.c.id.desc())

    async def _nodes(
        self, conn: AsyncConnection, ids: list[int], fields: list[str], first: int
    ) -> dict[int, list[dict[str, Any]]]:
        by_instance: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        if not ids:
            return by_instance
        rank = (
            func.row_number()
            .over(partition_by=N.c.instance_id, order_by=(N.c.position, N.c.id))
            .label("_rank")
        )
        inner = (
            select(N.c.instance_id.label("_instance"), *[NODE_COLUMNS[f].label(f) for f in fields])
            .add_columns(rank, N.c.position.label("_position"))
            .where(N.c.instance_id.in_(ids))
            .subquery()
        )
        query = (
            select(inner)
            .where(inner.c._rank <= first)
            .order_by(inner.c._instance, inner.c._position, inner.c.id)
        )
        for row in await conn.execute(query):
            by_instance[row._instance].append(_object(row, fields, "InstanceNode"))
        return by_instance

    async def w1(self, conn: AsyncConnection, variables: dict[str, Any]) -> Any:
        ws = await self._workspace(conn)
        query = self._instances(W1_INSTANCE, ws).limit(50)
        if variables.get("statuses") is not None:
            query = query.where(INST.c.status.in_(variables["statuses"]))
        rows = (await conn.execute(query)).all()
        nodes = await self._nodes(conn, [r.id for r in rows], W1_NODE, 20)
        return {
            "instances": {
                "nodes": [
                    {**_object(r, W1_INSTANCE, "Instance"), "nodes": {"nodes": nodes[r.id]}}
                    for r in rows
                ]
            }
        }

    async def w2(self, conn: AsyncConnection, variables: dict[str, Any]) -> Any:
        ws = await self._workspace(conn)
        query = self._instances(W2_INSTANCE, ws).limit(51)
        if variables.get("after"):
            position = CODEC.decode(CURSOR_CONTEXT, variables["after"], kind=ValueKind.TIME)
            query = query.where(
                tuple_(INST.c.plan_time, INST.c.id) < tuple_(position.value, position.id)
            )
        rows = (await conn.execute(query)).all()
        page = rows[:50]
        edges = [
            {
                "cursor": CODEC.encode(CURSOR_CONTEXT, Position(r._plan_time, r.id)),
                "node": _object(r, W2_INSTANCE, "Instance"),
            }
            for r in page
        ]
        return {
            "instances": {
                "edges": edges,
                "pageInfo": {
                    "hasNextPage": len(rows) > 50,
                    "endCursor": edges[-1]["cursor"] if edges else None,
                },
            }
        }

    async def w3(self, conn: AsyncConnection, variables: dict[str, Any]) -> Any:
        ws = await self._workspace(conn)
        query = self._instances(W3_INSTANCE, ws).where(
            J.c.workspace_id == ws,
            J.c.name == variables["jobName"],
            INST.c.vendor_instance_id == variables["instanceId"],
        )
        row = (await conn.execute(query)).first()
        if row is None:
            return {"instance": None}
        nodes = await self._nodes(conn, [row.id], FULL_NODE, 100)
        return {
            "instance": {**_object(row, W3_INSTANCE, "Instance"), "nodes": {"nodes": nodes[row.id]}}
        }

    async def w4(self, conn: AsyncConnection, variables: dict[str, Any]) -> Any:
        ws = await self._workspace(conn)
        conditions = [INST.c.workspace_id == ws]
        if variables.get("statuses") is not None:
            conditions.append(INST.c.status.in_(variables["statuses"]))
        if variables.get("instanceTypes") is not None:
            conditions.append(INST.c.instance_type.in_(variables["instanceTypes"]))
        if variables.get("after") is not None:
            conditions.append(INST.c.plan_time > parse_utc(variables["after"]))
        if variables.get("before") is not None:
            conditions.append(INST.c.plan_time < parse_utc(variables["before"]))
        query = self._instances(W4_INSTANCE, ws).where(and_(*conditions)).limit(50)
        rows = (await conn.execute(query)).all()
        result: dict[str, Any] = {}
        if variables.get("withCount"):
            result["totalCount"] = await conn.scalar(
                select(func.count()).select_from(INST).where(and_(*conditions))
            )
        result["nodes"] = [_object(r, W4_INSTANCE, "Instance") for r in rows]
        return {"instances": result}

    async def w5(self, conn: AsyncConnection, variables: dict[str, Any]) -> Any:
        ws = await self._workspace(conn)
        rows = (await conn.execute(self._instances(W5_INSTANCE, ws).limit(1000))).all()
        nodes = await self._nodes(conn, [r.id for r in rows], FULL_NODE, 10)
        return {
            "instances": {
                "nodes": [
                    {**_object(r, W5_INSTANCE, "Instance"), "nodes": {"nodes": nodes[r.id]}}
                    for r in rows
                ]
            }
        }

    async def w7(self, conn: AsyncConnection, variables: dict[str, Any]) -> Any:
        ws = await self._workspace(conn)
        window = variables["filter"]
        after, before = parse_utc(window["planTimeAfter"]), parse_utc(window["planTimeBefore"])
        # Every day of the exclusive range (after, before), empty ones included.
        first = _midnight(after + MS)
        days = [first + n * DAY for n in range((_midnight(before - MS) - first) // DAY + 1)]
        bounds = {"ws": ws, "after": after, "before": before}
        rows = (await conn.execute(text(W7_WINDOW_SQL), bounds)).all()
        whole, timeline = _panel(rows, days)
        job_rows = (
            await conn.execute(text(W7_JOBS_SQL), {**bounds, "jobs": variables["jobs"]})
        ).all()
        jobs: dict[int, list[Any]] = {}
        for row in job_rows:
            jobs.setdefault(row.id, []).append(row)
        job_nodes = []
        for found in jobs.values():
            summary, job_timeline = _panel(found, days)
            job_nodes.append(
                {"name": found[0].name, "stats": {**_summary(summary), "timeline": job_timeline}}
            )
        return {
            "instances": {
                "countsByStatus": [
                    {"status": s, "count": whole._mapping[f"n_{s}"]} for s in STATUSES
                ]
            },
            "instanceStats": [{**_summary(whole), "timeline": timeline}],
            "jobs": {"nodes": job_nodes},
        }


def _midnight(time: datetime) -> datetime:
    return time.replace(hour=0, minute=0, second=0, microsecond=0)


def _percentiles(row: Any) -> dict[str, Any]:
    p50, p95 = row.p if row.p is not None else (None, None)
    return {"p50": p50, "p95": p95}


def _summary(row: Any) -> dict[str, Any]:
    success = row._mapping["n_SUCCESS"]
    return {
        "count": row.n,
        "successRate": success / row.n if row.n else None,
        "durationMs": _percentiles(row),
    }


def _panel(rows: Sequence[Any], days: list[datetime]) -> tuple[Any, list[dict[str, Any]]]:
    """The window's row (grouping 1), and its timeline over `days` (absent days: zero)."""
    by_day = {row.day: row for row in rows if not row.whole and row.day is not None}
    timeline = []
    for day in days:
        row = by_day.get(day)
        timeline.append(
            {
                "start": format_utc(day),
                "count": row.n if row else 0,
                "durationMs": _percentiles(row) if row else {"p50": None, "p95": None},
                "countsByStatus": [
                    {"status": s, "count": row._mapping[f"n_{s}"] if row else 0} for s in STATUSES
                ],
            }
        )
    return next(row for row in rows if row.whole), timeline


def create_app() -> Starlette:
    url = os.environ["BENCH_DATABASE_URL"]
    engine = create_async_engine(
        url, pool_size=int(os.environ.get("BENCH_POOL_SIZE", "10")), max_overflow=0
    ).execution_options(isolation_level="AUTOCOMMIT")
    l0 = L0(engine)
    handlers = {
        "W1": l0.w1, "W2": l0.w2, "W3": l0.w3, "W4": l0.w4, "W5": l0.w5, "W7": l0.w7,
    }  # fmt: skip

    async def graphql(request: Request) -> Response:
        body = orjson.loads(await request.body())
        handler = handlers.get(body.get("op"))
        if handler is None:
            return Response(b'{"errors":[{"message":"unknown op"}]}', 400)
        async with engine.connect() as conn:
            data = await handler(conn, body.get("variables") or {})
        return Response(orjson.dumps({"data": data}), media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return Response(b"ok")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", healthz)],
        lifespan=lifespan,
    )
