"""Percentiles, minimum, maximum and mean from each database against plain Python, on random
data: nulls, single values, ties, groups without any value, jobs without runs.

Every value is an instance's duration (`endTime - startTime`), its lateness (`startTime -
planTime`) and the duration of its one node, so that one drawn data set checks instanceStats'
groups, Job.stats (batched, with a timeline) and Instance.nodeStats. Both databases must give
PostgreSQL's `percentile_cont` exactly: SQLite computes the same doubles the same way.

Hypothesis profile (tests/profiles.py): JOBQL_STATS_PROFILE=ci (default, 60 derandomized data
sets per backend) or full (1000, random)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.schema import schema
from jobql.storage.models import InstanceNode, Job
from tests.factories import BASE_TIME, data_of, insert_instances, new_workspace
from tests.profiles import profile
from tests.stats.reference import mean, percentile_cont

PROFILE = profile("stats", "JOBQL_STATS_PROFILE", ci=60, full=1000)
MS = timedelta(milliseconds=1)
# Plan times within one day of BASE_TIME (2019-03-04T03:53Z), so that a DAY timeline holds them
# all in one bucket and a run's default node window (30 days) reaches every earlier run.
DAY_AFTER = BASE_TIME.replace(hour=0, minute=0) - MS
DAY_BEFORE = DAY_AFTER + timedelta(days=1) + MS

millis = st.one_of(
    st.integers(-5, 5),  # ties
    st.sampled_from([0, 1000, 60_000]),
    st.integers(-(10**9), 10**9),
    st.integers(0, 2**40),  # 34 years
)
# A run: None (never started), (lateness, None) (running), (lateness, duration).
runs = st.one_of(st.none(), st.tuples(millis, st.none()), st.tuples(millis, millis))
jobs = st.lists(st.lists(runs, max_size=9), min_size=1, max_size=4)  # [] is a job without runs

STATS = """
query($window: StatsWindow) {
  instanceStats(groupBy: [JOB]) {
    jobName count
    durationMs { count min avg p50 p90 p95 p99 max }
    latenessMs { count p50 p95 }
  }
  jobs {
    nodes {
      name
      stats(window: $window, bucket: DAY) {
        count durationMs { count p50 p95 } timeline { count durationMs { count p50 p95 } }
      }
      instances(first: 1) { nodes { nodeStats { runs durationMs { count p50 p95 } } } }
    }
  }
}
"""


async def store(engine: AsyncEngine, drawn: list[list[Any]]) -> str:
    space = await new_workspace(engine)
    async with engine.begin() as connection:
        for n, job_runs in enumerate(drawn):
            job_id = await connection.scalar(
                insert(Job)
                .values(workspace_id=space.id, name=f"job{n}", type="BATCH")
                .returning(Job.id)
            )
            if not job_runs:
                continue
            rows = []
            for k, run in enumerate(job_runs):
                plan = BASE_TIME + k * timedelta(minutes=1)
                start = None if run is None else plan + run[0] * MS
                end = None if run is None or run[1] is None else start + run[1] * MS
                rows.append(
                    {
                        "workspace_id": space.id,
                        "job_id": job_id,
                        "vendor_instance_id": k,
                        "status": "SUCCESS",
                        "instance_type": "GENERAL",
                        "plan_time": plan,
                        "start_time": start,
                        "end_time": end,
                        "force_success": False,
                        "ignore_success": False,
                    }
                )
            keys = [(key,) for key in await insert_instances(connection, rows)]
            await connection.execute(
                insert(InstanceNode),
                [
                    {
                        "workspace_id": space.id,
                        "instance_id": key[0],
                        "position": 0,
                        "name": "step",
                        "type": "SQL",
                        "status": "SUCCESS",
                        "start_time": row["start_time"],
                        "end_time": row["end_time"],
                        "instance_plan_time": row["plan_time"],
                    }
                    for key, row in zip(keys, rows, strict=True)
                ],
            )
    return space.name


def durations_of(job_runs: list[Any]) -> list[int | None]:
    return [None if run is None else run[1] for run in job_runs]


def latenesses_of(job_runs: list[Any]) -> list[int | None]:
    return [None if run is None else run[0] for run in job_runs]


def short(values: list[int | None]) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    return {
        "count": len(present),
        "p50": percentile_cont(values, 0.5),
        "p95": percentile_cont(values, 0.95),
    }


async def check(engine: AsyncEngine, drawn: list[list[Any]]) -> None:
    workspace = await store(engine, drawn)
    window = {"planTimeAfter": DAY_AFTER.isoformat(), "planTimeBefore": DAY_BEFORE.isoformat()}
    data = await data_of(engine, STATS, {"window": window}, workspace=workspace, using=schema)
    groups = {g["jobName"]: g for g in data["instanceStats"]}
    assert set(groups) == {f"job{n}" for n, runs in enumerate(drawn) if runs}
    for n, job_runs in enumerate(drawn):
        durations, lateness = durations_of(job_runs), latenesses_of(job_runs)
        present = [d for d in durations if d is not None]
        job = data["jobs"]["nodes"][n]
        assert job["name"] == f"job{n}"
        stats = job["stats"]
        assert stats["count"] == len(job_runs)
        assert stats["durationMs"] == short(durations)
        bucket = {"count": len(job_runs), "durationMs": short(durations)}
        assert stats["timeline"] == [bucket]
        if not job_runs:
            assert job["instances"]["nodes"] == []
            continue
        group = groups[f"job{n}"]
        assert group["count"] == len(job_runs)
        assert group["durationMs"] == {
            "count": len(present),
            "min": min(present, default=None),
            "avg": mean(durations),
            "p50": percentile_cont(durations, 0.5),
            "p90": percentile_cont(durations, 0.9),
            "p95": percentile_cont(durations, 0.95),
            "p99": percentile_cont(durations, 0.99),
            "max": max(present, default=None),
        }
        assert group["latenessMs"] == short(lateness)
        # The newest run's node statistics cover every run of the job (one node each).
        (latest,) = job["instances"]["nodes"]
        assert latest["nodeStats"] == [{"runs": len(job_runs), "durationMs": short(durations)}]


async def test_percentiles_equal_pythons(engine: AsyncEngine) -> None:
    loop = asyncio.get_running_loop()

    @PROFILE
    @given(drawn=jobs)
    def compare(drawn: list[list[Any]]) -> None:
        asyncio.run_coroutine_threadsafe(check(engine, drawn), loop).result()

    await asyncio.to_thread(compare)


def test_the_reference_is_postgresqls_definition() -> None:
    """percentile_cont's documented examples: the median of an even count is the mean of the
    middle two; a fraction between ranks interpolates."""
    assert percentile_cont([1, 2, 3, 4], 0.5) == 2.5
    assert percentile_cont([10, 20, 30, 40, 50], 0.9) == 46.0
    assert percentile_cont([None, 7, None], 0.99) == 7.0
    assert percentile_cont([None], 0.5) is None
    assert percentile_cont([3, 1, 2], 0.0) == 1.0
    assert percentile_cont([3, 1, 2], 1.0) == 3.0
