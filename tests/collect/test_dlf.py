"""DLF collected through Huawei Cloud's SDK from a live upstream jobql: windows, pages, details,
open instances re-read until they end; the collecting jobql then answers as the upstream does."""

from __future__ import annotations

import random
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.collect.runner import Collector
from tests.collect.compare import assert_same_jobs, workspace_answer
from tests.collect.conftest import unique
from tests.collect.data import DlfUpstream
from tests.collect.support import dlf_source
from tests.collect.upstream import Server


async def test_dlf_is_collected_exactly_and_incrementally(
    engine: AsyncEngine, upstream: Server, mirror: httpx.AsyncClient
) -> None:
    up = DlfUpstream(upstream.http, unique("dlf"), random.Random(1))
    up.seed(jobs=3, per_job=12, span=timedelta(hours=30))
    await up.push()
    target = unique("mirror")
    source = dlf_source(
        unique("dlf"),
        upstream.url,
        up.workspace,
        target,
        page_size=5,
        window=6 * 3600.0,
        overlap=600.0,
        lookback=48 * 3600.0,
    )

    collector = Collector([source], engine)
    assert await collector.run(once=True)
    first = collector.reports[-1]
    assert first.stats.counts["created"] == 36
    assert first.stats.windows == 8
    await assert_same_jobs(upstream.http, up.workspace, mirror, target, up.job_names)
    assert await workspace_answer(mirror, target) == await workspace_answer(
        upstream.http, up.workspace
    )

    # Again: nothing is written.
    assert await collector.run(once=True)
    again = collector.reports[-1]
    assert (again.stats.counts["created"], again.stats.counts["updated"]) == (0, 0)

    # Runs end (also those long out of the overlap), new ones appear.
    changed = up.progress(new=6)
    await up.push(changed)
    assert await collector.run(once=True)
    third = collector.reports[-1]
    assert third.stats.counts["created"] == 6
    assert third.stats.counts["updated"] >= len(changed) - 6 - 1
    await assert_same_jobs(upstream.http, up.workspace, mirror, target, up.job_names)
    assert await workspace_answer(mirror, target) == await workspace_answer(
        upstream.http, up.workspace
    )
