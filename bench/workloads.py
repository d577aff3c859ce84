"""The workloads W1-W7: documents, variables, and the data-dependent parameters."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from jobql.settings import DEFAULT_CURSOR_SECRET
from jobql.storage.identifiers import CursorCodec, CursorContext
from jobql.storage.models import Instance, InstanceNode, Job, Workspace
from jobql.storage.paging import Position
from jobql.storage.types import format_utc

QUERIES = Path(__file__).resolve().parent / "queries"
WORKSPACE = "default"
PAGE = 50
DEEP_PAGE = 10_000
# W7: the dashboard's default statistics window (DEFAULT_STATS_WINDOW in
# examples/dashboard/queries.js), by day, and the jobs whose charts are asked in one request.
STATS_DAYS = 30
STATS_JOBS = 10


def document(name: str, dialect: str = "") -> str:
    folder = QUERIES / dialect if dialect else QUERIES
    return (folder / f"{name}.graphql").read_text(encoding="utf-8")


@dataclass
class Case:
    """One measured request: a workload with its variables."""

    name: str  # W1, W2-page1, W2-deep, W3, W4, W4-count, W5, W7
    workload: str  # W1..W5, W7: the document
    variables: dict[str, Any]
    stock_variables: dict[str, Any] | None = None  # when stock needs other values
    postgraphile_variables: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class Parameters:
    instances: int
    deep_page: int
    deep_offset: int
    jobql_cursor: str
    w3_job: str
    w3_instance: int
    w3_nodes: int
    w4_after: str
    w4_before: str
    w7_after: str
    w7_before: str
    w7_instances: int
    notes: list[str] = field(default_factory=list)


async def _parameters(url: str, deep_page: int) -> Parameters:
    engine = create_async_engine(url)
    i, n, j, w = Instance, InstanceNode, Job, Workspace
    try:
        async with engine.connect() as conn:
            ws = await conn.scalar(select(w.id).where(w.name == WORKSPACE))
            total = int(await conn.scalar(select(func.count()).where(i.workspace_id == ws)) or 0)
            if total < 2 * PAGE:
                raise ValueError(f"only {total} instances in {WORKSPACE!r}: seed more")
            page = min(deep_page, total // PAGE)
            offset = (page - 1) * PAGE
            row = (
                await conn.execute(
                    select(i.id, i.plan_time)
                    .where(i.workspace_id == ws)
                    .order_by(i.plan_time.desc(), i.id.desc())
                    .offset(offset - 1)
                    .limit(1)
                )
            ).one()
            codec = CursorCodec(DEFAULT_CURSOR_SECRET)
            cursor = codec.encode(
                CursorContext("instance", WORKSPACE, "PLAN_TIME", "DESC"),
                Position(row.plan_time, row.id),
            )
            middle = int(
                await conn.scalar(
                    select(i.id)
                    .where(i.workspace_id == ws)
                    .order_by(i.id)
                    .offset(total // 2)
                    .limit(1)
                )
                or 0
            )
            nodes = func.count(n.id).label("nodes")
            target = (
                await conn.execute(
                    select(j.name, i.vendor_instance_id, nodes)
                    .join_from(i, j, j.id == i.job_id)
                    .join(n, n.instance_id == i.id)
                    .where(i.workspace_id == ws, i.id.between(middle, middle + 200))
                    .group_by(i.id, j.name, i.vendor_instance_id)
                    .order_by(nodes.desc(), i.id)
                    .limit(1)
                )
            ).one()
            low, high = (
                await conn.execute(
                    select(func.min(i.plan_time), func.max(i.plan_time)).where(i.workspace_id == ws)
                )
            ).one()
            # W7's window as the dashboard's statsWindow() makes it: STATS_DAYS whole UTC days
            # ending with the day of the latest planned run, both bounds exclusive.
            day = timedelta(days=1)
            end = high.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + day
            start = end - STATS_DAYS * day
            w7_after, w7_before = start - timedelta(milliseconds=1), end
            w7_instances = int(
                await conn.scalar(
                    select(func.count()).where(
                        i.workspace_id == ws, i.plan_time > w7_after, i.plan_time < w7_before
                    )
                )
                or 0
            )
    finally:
        await engine.dispose()
    if low > w7_after:
        raise ValueError(f"W7: the data starts at {low}, after its {STATS_DAYS}-day window")
    span = high - low
    notes = []
    if page < deep_page:
        notes.append(
            f"W2: the data holds {total:,} instances, so the deep page is page {page:,} "
            f"({PAGE} per page, offset {offset:,}), not page {deep_page:,}: the deepest it allows"
        )
    return Parameters(
        instances=total,
        deep_page=page,
        deep_offset=offset,
        jobql_cursor=cursor,
        w3_job=target.name,
        w3_instance=int(target.vendor_instance_id),
        w3_nodes=int(target.nodes),
        w4_after=format_utc(low + span * 0.4),
        w4_before=format_utc(low + span * 0.6),
        w7_after=format_utc(w7_after),
        w7_before=format_utc(w7_before),
        w7_instances=w7_instances,
        notes=notes,
    )


def parameters(url: str, deep_page: int = DEEP_PAGE) -> Parameters:
    return asyncio.run(_parameters(url, deep_page))


def stock_cursor(offset: int) -> str:
    """Strawberry ListConnection's cursor of the item at `offset` (its own offset cursors)."""
    return base64.b64encode(f"arrayconnection:{offset}".encode()).decode("ascii")


def cases(p: Parameters) -> list[Case]:
    w4 = {
        "statuses": ["SUCCESS"],
        "instanceTypes": ["GENERAL"],
        "after": p.w4_after,
        "before": p.w4_before,
    }
    w7 = {"planTimeAfter": p.w7_after, "planTimeBefore": p.w7_before}
    return [
        Case("W1", "W1", {"statuses": ["FAIL"]}, postgraphile_variables={"statuses": ["FAIL"]}),
        Case("W2-page1", "W2", {"after": None}, postgraphile_variables={"after": None}),
        Case(
            "W2-deep",
            "W2",
            {"after": p.jobql_cursor},
            stock_variables={"after": stock_cursor(p.deep_offset - 1)},
            # PostGraphile's own cursor is fetched from it before the gate (W2-cursor.graphql).
            postgraphile_variables={"after": None, "_offset": p.deep_offset - 1},
            note=f"page {p.deep_page}",
        ),
        Case(
            "W3",
            "W3",
            {"jobName": p.w3_job, "instanceId": p.w3_instance},
            postgraphile_variables={"jobName": p.w3_job, "instanceId": str(p.w3_instance)},
            note=f"{p.w3_nodes} nodes",
        ),
        Case(
            "W4",
            "W4",
            {**w4, "withCount": False},
            postgraphile_variables={**w4, "withCount": False},
        ),
        Case(
            "W4-count",
            "W4",
            {**w4, "withCount": True},
            postgraphile_variables={**w4, "withCount": True},
        ),
        Case("W5", "W5", {}, postgraphile_variables={}),
        Case(
            "W7",
            "W7",
            {"filter": w7, "window": w7, "jobs": STATS_JOBS},
            note=f"{p.w7_instances:,} instances in the window",
        ),
    ]
