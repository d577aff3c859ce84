"""Realtime Compute collected through its SDK (`aliyun-python-sdk-foas` on `AcsClient`) from a
live upstream jobql: each followed instance read until it ends, then never again."""

from __future__ import annotations

import random

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.collect.runner import Collector
from tests.collect.compare import assert_same_jobs
from tests.collect.conftest import unique
from tests.collect.data import FlinkUpstream
from tests.collect.support import flink_source
from tests.collect.upstream import Server


async def test_followed_instances_are_read_until_they_end(
    engine: AsyncEngine, upstream: Server, mirror: httpx.AsyncClient
) -> None:
    up = FlinkUpstream(upstream.http, unique("flink"), random.Random(5))
    for status in ("RUNNING", "RUNNING", "PAUSE", "SUCCESS"):
        up.add_instance("orders_stream", status)
    up.add_instance("daily_batch", "FAIL", job_type="BATCH")
    await up.push()
    target = unique("mirror")
    followed = sorted(up.instances)
    source = flink_source(unique("flink"), upstream.url, up.workspace, target, followed)

    collector = Collector([source], engine)
    assert await collector.run(once=True)
    assert collector.reports[-1].stats.counts["created"] == 5
    await assert_same_jobs(upstream.http, up.workspace, mirror, target, up.job_names)

    assert await collector.run(once=True)
    again = collector.reports[-1]
    assert again.requests == 3  # the ended ones are not read again
    assert (again.stats.counts["created"], again.stats.counts["updated"]) == (0, 0)

    await up.push(up.progress())
    assert await collector.run(once=True)
    assert collector.reports[-1].stats.counts["updated"] == 3
    await assert_same_jobs(upstream.http, up.workspace, mirror, target, up.job_names)
    assert await collector.run(once=True)
    assert collector.reports[-1].requests == 0


async def test_an_unknown_instance_is_reported_and_the_others_are_still_read(
    engine: AsyncEngine, upstream: Server
) -> None:
    up = FlinkUpstream(upstream.http, unique("flink"), random.Random(6))
    up.add_instance("orders_stream", "RUNNING")
    await up.push()
    followed = [*up.instances, ("orders_stream", 1)]
    source = flink_source(unique("flink"), upstream.url, up.workspace, unique("mirror"), followed)
    collector = Collector([source], engine)
    assert not await collector.run(once=True)
    report = collector.reports[-1]
    assert report.stats.counts["created"] == 1
    assert report.error is not None
    assert "knows no instance 1 of job 'orders_stream'" in report.error
