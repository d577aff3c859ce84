"""Instance.nodeStats: per node name across the job's runs, on the hand-made data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.schema import schema
from tests.conftest import StatementCounter
from tests.factories import data_of, make_instance, make_job, new_workspace
from tests.stats.conftest import World, add_nodes, at
from tests.stats.test_instance_stats import lerp

NODE_STATS = """
query($id: Long!, $window: StatsWindow, $order: NodeStatsOrder! = SLOWEST, $first: Int) {
  instance(jobName: "alpha", instanceId: $id) {
    nodeStats(window: $window, orderBy: $order, first: $first) {
      name runs failures failureRate retries retriedRuns durationMs { count p50 p95 }
    }
  }
}
"""

# Over a1, a2, a3 (the runs of alpha planned up to a3, within 30 days):
# extract 1000 (retry 0), 2000 (retry 1), 500 FAIL (retry 3); load 3000 (no retryTimes), 4000 FAIL
# (retry 2), and a3's load never started.
EXTRACT = {
    "name": "extract",
    "runs": 3,
    "failures": 1,
    "failureRate": 1 / 3,
    "retries": 4,
    "retriedRuns": 2,
    "durationMs": {"count": 3, "p50": 1000.0, "p95": lerp(1000, 2000, 0.95 * 2)},
}
LOAD = {
    "name": "load",
    "runs": 3,
    "failures": 1,
    "failureRate": 1 / 3,
    "retries": 2,
    "retriedRuns": 1,
    "durationMs": {"count": 2, "p50": 3500.0, "p95": lerp(3000, 4000, 0.95)},
}


async def node_stats(engine: AsyncEngine, world: World, run: str, **variables: Any) -> Any:
    data = await data_of(
        engine, NODE_STATS, {"id": world.instances[run], **variables}, workspace=world.workspace
    )
    return data["instance"]["nodeStats"]


async def test_default_window_is_the_30_days_up_to_the_run(
    engine: AsyncEngine, world: World
) -> None:
    # Slowest first: load's p95 (3950) is above extract's (1900).
    assert await node_stats(engine, world, "a3") == [LOAD, EXTRACT]
    # a1 is the first run: only itself.
    first = await node_stats(engine, world, "a1")
    assert [(n["name"], n["runs"], n["durationMs"]["p50"]) for n in first] == [
        ("load", 1, 3000.0),
        ("extract", 1, 1000.0),
    ]
    # a5 has no nodes of its own; the runs before it do (a4's extract never ended).
    latest = await node_stats(engine, world, "a5")
    assert [(n["name"], n["runs"], n["durationMs"]["count"]) for n in latest] == [
        ("load", 3, 2),
        ("extract", 3, 3),
    ]


async def test_orders_and_first(engine: AsyncEngine, world: World) -> None:
    assert await node_stats(engine, world, "a3", order="NAME") == [EXTRACT, LOAD]
    # Ties (one failure in three each) go by name.
    assert await node_stats(engine, world, "a3", order="MOST_FAILING") == [EXTRACT, LOAD]
    assert await node_stats(engine, world, "a3", first=1) == [LOAD]
    assert await node_stats(engine, world, "a3", order="NAME", first=1) == [EXTRACT]


async def test_an_explicit_window(engine: AsyncEngine, world: World) -> None:
    # Every run of the week, whichever run asks: a4's extract ran without ending.
    window = {"planTimeAfter": "2019-03-04T00:00:00Z", "planTimeBefore": "2019-03-12T00:00:00Z"}
    found = await node_stats(engine, world, "a1", window=window, order="NAME")
    assert found == [{**EXTRACT, "runs": 4, "failureRate": 1 / 4}, LOAD]
    # A window without a2 and a3.
    window = {"planTimeBefore": "2019-03-04T02:00:00Z"}
    found = await node_stats(engine, world, "a3", window=window, order="NAME")
    assert [(n["name"], n["runs"]) for n in found] == [("extract", 1), ("load", 1)]
    window = {"planTimeAfter": "2019-03-20T00:00:00Z"}
    assert await node_stats(engine, world, "a3", window=window) == []


async def test_runs_older_than_30_days_are_left_out(engine: AsyncEngine) -> None:
    space = await new_workspace(engine)
    job = await make_job(engine, space, "alpha")
    plans = {
        1: at(0) - timedelta(days=30),  # exactly 30 days before: out (exclusive)
        2: at(0) - timedelta(days=30) + timedelta(milliseconds=1),  # in
        3: at(0),  # the run that asks: in
        4: at(0) + timedelta(milliseconds=1),  # after it: out
    }
    for vendor_id, plan in plans.items():
        ref = await make_instance(engine, job, vendor_instance_id=vendor_id, plan_time=plan)
        await add_nodes(engine, ref, plan, [("step", "SUCCESS", vendor_id * 1000, vendor_id)])
    data = await data_of(engine, NODE_STATS, {"id": 3}, workspace=space.name)
    assert data["instance"]["nodeStats"] == [
        {
            "name": "step",
            "runs": 2,
            "failures": 0,
            "failureRate": 0.0,
            "retries": 5,
            "retriedRuns": 2,
            "durationMs": {"count": 2, "p50": 2500.0, "p95": lerp(2000, 3000, 0.95)},
        }
    ]


MANY = """
{
  instances(first: 50) {
    nodes { nodeStats { name runs } nodes { countsByStatus { count } } }
  }
}
"""


async def test_one_statement_for_the_node_stats_of_many_instances(
    engine: AsyncEngine, world: World, statements: StatementCounter
) -> None:
    statements.reset()
    data = await data_of(engine, MANY, workspace=world.workspace, using=schema)
    # instances, their pages of nodes, their nodes' counts, and every instance's node statistics.
    assert statements.count == 4, statements.statements
    assert len(data["instances"]["nodes"]) == 7


async def test_node_stats_never_cross_workspaces(engine: AsyncEngine, world: World) -> None:
    from tests.stats.conftest import make_world

    await make_world(engine)  # the same jobs, runs and nodes in another workspace
    assert await node_stats(engine, world, "a3") == [LOAD, EXTRACT]


async def test_a_run_planned_in_the_year_one_has_its_node_stats(engine: AsyncEngine) -> None:
    """The default window's 30 days before the year 1 are before the earliest time there is:
    its bound is then the earliest time (the differential test found an INTERNAL there)."""
    space = await new_workspace(engine)
    job = await make_job(engine, space, "alpha")
    plan = datetime(1, 1, 1, 0, 0, 1, tzinfo=UTC)
    ref = await make_instance(engine, job, vendor_instance_id=1, plan_time=plan)
    await add_nodes(engine, ref, plan, [("step", "SUCCESS", 1000, 0)])
    data = await data_of(engine, NODE_STATS, {"id": 1}, workspace=space.name)
    assert [(n["name"], n["runs"]) for n in data["instance"]["nodeStats"]] == [("step", 1)]
