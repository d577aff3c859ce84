"""SchedulerX collected through its SDK (`alibabacloud-schedulerx220190430`) from a live upstream
jobql: each job's latest 10 instances, gaps counted, unknown jobs reported."""

from __future__ import annotations

import json
import random

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.collect.runner import Collector
from jobql.resolvers.checkpoints import load_checkpoints
from tests.collect.compare import assert_same_jobs, workspace_answer
from tests.collect.conftest import unique
from tests.collect.data import SchedulerxUpstream, now_ms
from tests.collect.support import schedulerx_source
from tests.collect.upstream import Server


async def test_schedulerx_is_collected_exactly(
    engine: AsyncEngine, upstream: Server, mirror: httpx.AsyncClient
) -> None:
    up = SchedulerxUpstream(upstream.http, unique("sx"), random.Random(2))
    up.seed(jobs=3, per_job=6)
    await up.push()
    target = unique("mirror")
    job_ids = [int(name) for name in up.job_names]
    source = schedulerx_source(unique("sx"), upstream.url, up.workspace, target, job_ids)

    collector = Collector([source], engine)
    assert await collector.run(once=True)
    assert collector.reports[-1].stats.counts["created"] == 18
    await assert_same_jobs(upstream.http, up.workspace, mirror, target, up.job_names)

    assert await collector.run(once=True)
    again = collector.reports[-1]
    assert (again.stats.counts["created"], again.stats.counts["updated"]) == (0, 0)
    assert again.requests == 3

    changed = up.progress(new_per_job=3)  # 9 per job: all within the latest 10
    await up.push(changed)
    assert await collector.run(once=True)
    third = collector.reports[-1]
    assert third.stats.counts["created"] == 9
    assert third.stats.gaps == 0
    await assert_same_jobs(upstream.http, up.workspace, mirror, target, up.job_names)
    assert await workspace_answer(mirror, target) == await workspace_answer(
        upstream.http, up.workspace
    )


async def test_a_poll_that_finds_only_new_instances_counts_a_possible_gap(
    engine: AsyncEngine, upstream: Server
) -> None:
    up = SchedulerxUpstream(upstream.http, unique("sx"), random.Random(3))
    up.seed(jobs=1, per_job=3)  # the last two not ended
    await up.push()
    name = unique("sx")
    source = schedulerx_source(
        name, upstream.url, up.workspace, unique("mirror"), [int(up.job_names[0])]
    )
    collector = Collector([source], engine)
    assert await collector.run(once=True)
    assert collector.reports[-1].stats.gaps == 0  # a first poll is no gap

    job = up.job_names[0]
    now = now_ms()
    from datetime import timedelta

    new = [up.add_instance(job, now - timedelta(seconds=12 - i), "SUCCESS") for i in range(12)]
    await up.push(new)
    assert await collector.run(once=True)
    report = collector.reports[-1]
    assert report.stats.gaps == 1
    assert report.stats.left_open == 2
    assert report.stats.counts["created"] == 10
    rows = {row.scope: row for row in await load_checkpoints(engine, name)}
    assert json.loads(rows[job].position or "")["gaps"] == 1
    assert json.loads(rows[""].position or "")["gaps"] == 1


async def test_an_unknown_job_is_reported_and_the_others_are_still_read(
    engine: AsyncEngine, upstream: Server, mirror: httpx.AsyncClient
) -> None:
    up = SchedulerxUpstream(upstream.http, unique("sx"), random.Random(4))
    up.seed(jobs=1, per_job=2)
    await up.push()
    name, target = unique("sx"), unique("mirror")
    source = schedulerx_source(name, upstream.url, up.workspace, target, [1, int(up.job_names[0])])
    collector = Collector([source], engine)
    assert not await collector.run(once=True)
    report = collector.reports[-1]
    assert report.error is not None
    assert "SchedulerX knows no job 1 in namespace" in report.error
    assert report.stats.counts["created"] == 2
    await assert_same_jobs(upstream.http, up.workspace, mirror, target, up.job_names)
    rows = {row.scope: row for row in await load_checkpoints(engine, name)}
    assert rows["1"].last_error is not None
    assert rows[""].last_success_at is None
    assert rows[up.job_names[0]].last_success_at is not None
