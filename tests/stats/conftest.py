"""Hand-made data for the statistics tests: two jobs whose every number is worked out by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.storage.models import InstanceNode
from tests.factories import (
    Ref,
    make_instance,
    make_job,
    new_workspace,
    with_instance_plan_times,
)

MONDAY = datetime(2019, 3, 4, tzinfo=UTC)  # 2019-03-04 is a Monday
SECOND = timedelta(seconds=1)
MS = timedelta(milliseconds=1)


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A time in the week of MONDAY (day 0 = Monday 2019-03-04)."""
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


@dataclass(frozen=True)
class Run:
    """One instance: its status, type, plan time, lateness and duration (ms; None: no time)."""

    job: str
    status: str
    instance_type: str
    plan: datetime
    late_ms: int | None
    duration_ms: int | None


# alpha: a1..a5; beta: b1, b2. Durations: a1 10000, a2 20000, a3 40000, b1 5000, b2 5000 (a4 is
# running, a5 waiting). Lateness: a1 1000, a2 3000, a3 0, a4 2000, b1 -500, b2 1000.
RUNS = {
    "a1": Run("alpha", "SUCCESS", "GENERAL", at(0, 1), 1000, 10_000),
    "a2": Run("alpha", "SUCCESS", "GENERAL", at(0, 2, 30), 3000, 20_000),
    "a3": Run("alpha", "FAIL", "MANUAL", at(1, 10), 0, 40_000),
    "a4": Run("alpha", "RUNNING", "GENERAL", at(7), 2000, None),
    "a5": Run("alpha", "WAITING", "GENERAL", at(7) - MS, None, None),  # Sunday 23:59:59.999
    "b1": Run("beta", "SUCCESS", "PATCH_DATA", at(0, 1, 30), -500, 5_000),
    "b2": Run("beta", "FAIL", "GENERAL", at(2), 1000, 5_000),
}

# Nodes of alpha's runs: (name, status, duration ms or None, retryTimes).
NODES: dict[str, list[tuple[str, str, int | None, int | None]]] = {
    "a1": [("extract", "SUCCESS", 1000, 0), ("load", "SUCCESS", 3000, None)],
    "a2": [("extract", "SUCCESS", 2000, 1), ("load", "FAIL", 4000, 2)],
    "a3": [("extract", "FAIL", 500, 3), ("load", "WAITING", None, None)],
    "a4": [("extract", "RUNNING", None, 0)],
}


@dataclass(frozen=True)
class World:
    workspace: str
    jobs: dict[str, Ref]
    instances: dict[str, int]  # run name -> vendor instance id
    keys: dict[str, Ref]


async def add_nodes(
    engine: AsyncEngine,
    instance: Ref,
    plan: datetime,
    nodes: list[tuple[str, str, int | None, int | None]],
) -> None:
    rows: list[dict[str, Any]] = []
    for position, (name, status, duration, retries) in enumerate(nodes):
        start = plan + SECOND
        rows.append(
            {
                "workspace_id": instance.workspace_id,
                "instance_id": instance.id,
                "position": position,
                "name": name,
                "type": "SQL",
                "status": status,
                "start_time": start if duration is not None or status == "RUNNING" else None,
                "end_time": None if duration is None else start + duration * MS,
                "retry_times": retries,
            }
        )
    async with engine.begin() as connection:
        await connection.execute(
            insert(InstanceNode), await with_instance_plan_times(connection, rows)
        )


async def make_world(engine: AsyncEngine, workspace: str | None = None) -> World:
    space = await new_workspace(engine, workspace)
    jobs = {name: await make_job(engine, space, name) for name in ("alpha", "beta", "idle")}
    instances: dict[str, int] = {}
    keys: dict[str, Ref] = {}
    for n, (name, run) in enumerate(RUNS.items(), start=1):
        start = None if run.late_ms is None else run.plan + run.late_ms * MS
        end = None if start is None or run.duration_ms is None else start + run.duration_ms * MS
        ref = await make_instance(
            engine,
            jobs[run.job],
            vendor_instance_id=n,
            status=run.status,
            instance_type=run.instance_type,
            plan_time=run.plan,
            start_time=start,
            end_time=end,
        )
        instances[name] = n
        keys[name] = ref
        if name in NODES:
            await add_nodes(engine, ref, run.plan, NODES[name])
    return World(space.name, jobs, instances, keys)


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    return await make_world(engine)
