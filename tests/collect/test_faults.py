"""The sources' faults, through a fault-injecting proxy in front of the upstream: 5xx, each
vendor's throttling answer, timeouts, resets, slow and malformed answers are retried with backoff
and nothing is lost or written twice; a source that stays down is reported and the others go on;
the rate limit holds; a reply that cannot be read is logged and its window read again."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.collect.caller import Caller
from jobql.collect.checkpoints import ALL_JOBS
from jobql.collect.config import SourceConfig
from jobql.collect.runner import Collector
from jobql.resolvers.checkpoints import load_checkpoints
from tests.collect.compare import assert_same_jobs
from tests.collect.conftest import unique
from tests.collect.data import DlfUpstream, FlinkUpstream, SchedulerxUpstream, Upstream
from tests.collect.proxy import FAULTS, Exchange, FaultProxy, every, mostly
from tests.collect.support import TEST_PACE, dlf_source, flink_source, schedulerx_source
from tests.collect.upstream import Server

# A timeout fault costs the whole client timeout: short ones (the proxy holds 1 s).
PACE = dataclasses.replace(TEST_PACE, timeout=0.6)


async def vendor_data(kind: str, upstream: Server, seed: int) -> tuple[Any, list[int]]:
    """A workspace of `kind`'s data in the upstream, and (SchedulerX) its job ids."""
    rng = random.Random(seed)
    up: Upstream
    if kind == "dlf":
        dlf = DlfUpstream(upstream.http, unique("dlf"), rng)
        dlf.seed(jobs=2, per_job=6, span=timedelta(hours=20))
        up = dlf
    elif kind == "schedulerx":
        sx = SchedulerxUpstream(upstream.http, unique("sx"), rng)
        sx.seed(jobs=6, per_job=4)
        up = sx
    else:
        rc = FlinkUpstream(upstream.http, unique("flink"), rng)
        for status in ("RUNNING", "SUCCESS", "FAIL", "PAUSE", "RUNNING", "WAITING", "SUCCESS"):
            rc.add_instance(f"stream_{rng.randint(1, 2)}", status)
        up = rc
    await up.push()
    return up, [int(name) for name in up.job_names] if kind == "schedulerx" else []


def source_for(
    kind: str, up: Upstream, endpoint: str, target: str, job_ids: list[int]
) -> SourceConfig:
    name = unique(kind)
    if kind == "dlf":
        return dlf_source(
            name,
            endpoint,
            up.workspace,
            target,
            PACE,
            page_size=4,
            window=12 * 3600.0,
            overlap=600.0,
            lookback=24 * 3600.0,
        )
    if kind == "schedulerx":
        return schedulerx_source(name, endpoint, up.workspace, target, job_ids, PACE)
    return flink_source(name, endpoint, up.workspace, target, sorted(up.instances), PACE)


@pytest.mark.parametrize("kind", ["dlf", "schedulerx", "flink"])
async def test_every_fault_is_retried_and_nothing_is_lost(
    kind: str,
    sqlite_engine: AsyncEngine,
    sqlite_mirror: httpx.AsyncClient,
    upstream: Server,
    proxy: FaultProxy,
) -> None:
    up, job_ids = await vendor_data(kind, upstream, seed=11)
    target = unique("mirror")
    source = source_for(kind, up, proxy.url, target, job_ids)
    # Two of three requests fail (DLF, with many more requests: every other), each kind in turn.
    proxy.decide = every(2) if kind == "dlf" else mostly()
    collector = Collector([source], sqlite_engine)
    assert await collector.run(once=True)
    report = collector.reports[-1]
    assert set(proxy.injected()) == set(FAULTS)
    assert report.retries >= len(FAULTS) - 2  # `slow` is an answer, and may come first
    assert report.throttled >= 1
    assert report.malformed >= 1
    assert report.stats.counts["created"] == len(up.instances)
    await assert_same_jobs(upstream.http, up.workspace, sqlite_mirror, target, up.job_names)

    # Faults again, and changes: a second pass writes exactly the changes.
    if kind == "dlf":
        changed = up.progress(new=3)
    elif kind == "schedulerx":
        changed = up.progress(new_per_job=1)
    else:
        changed = up.progress()
    await up.push(changed)
    assert await collector.run(once=True)
    counts = collector.reports[-1].stats.counts
    assert counts["created"] + counts["updated"] == len(changed)
    await assert_same_jobs(upstream.http, up.workspace, sqlite_mirror, target, up.job_names)


async def test_a_source_that_stays_down_is_reported_and_the_others_go_on(
    sqlite_engine: AsyncEngine, upstream: Server, proxy: FaultProxy
) -> None:
    down_data, _ = await vendor_data("dlf", upstream, seed=12)
    up, _ = await vendor_data("flink", upstream, seed=13)
    pace = dataclasses.replace(PACE, retries=2)
    down = dlf_source(
        unique("down"),
        proxy.url,
        down_data.workspace,
        unique("mirror"),
        pace,
        window=12 * 3600.0,
        overlap=600.0,
        lookback=24 * 3600.0,
    )
    fine = flink_source(
        unique("fine"), upstream.url, up.workspace, unique("mirror"), sorted(up.instances)
    )
    proxy.decide = lambda exchange: "503"
    collector = Collector([down, fine], sqlite_engine)
    assert not await collector.run(once=True)
    reports = {report.source: report for report in collector.reports}
    assert reports[fine.name].ok
    assert reports[fine.name].stats.counts["created"] == len(up.instances)
    failed = reports[down.name]
    assert not failed.ok
    assert failed.error is not None
    assert "transient after 3 attempts" in failed.error
    assert "HTTP 503 DLF.0500" in failed.error
    rows = {row.scope: row for row in await load_checkpoints(sqlite_engine, down.name)}
    assert rows[""].last_error == failed.error
    assert rows[""].last_success_at is None
    assert ALL_JOBS not in rows  # nothing was read, so nothing moved

    proxy.decide = lambda exchange: None  # back: the next pass reads everything
    assert await Collector([down], sqlite_engine).run(once=True)


async def test_the_rate_limit_is_honoured(
    sqlite_engine: AsyncEngine,
    upstream: Server,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    up, job_ids = await vendor_data("schedulerx", upstream, seed=14)
    pace = dataclasses.replace(PACE, rate_limit=10.0)
    source = schedulerx_source(
        unique("sx"), proxy.url, up.workspace, unique("mirror"), job_ids, pace
    )
    proxy.decide = every(3, ["throttle", "503"])  # retries are paced too
    # When the collector lets each request go (arrival times at the proxy carry the machine's
    # scheduling jitter, which says nothing about the collector's pacing).
    released: list[float] = []
    paced = Caller._paced

    async def recording(self: Caller) -> None:
        await paced(self)
        released.append(time.monotonic())

    monkeypatch.setattr(Caller, "_paced", recording)
    collector = Collector([source], sqlite_engine)
    assert await collector.run(once=True)
    assert len(proxy.seen) == len(released) == collector.reports[-1].requests >= 8
    gaps = [later - earlier for earlier, later in itertools.pairwise(released)]
    assert min(gaps) >= 0.1 - 0.01, gaps  # 10 requests per second at most


async def test_a_malformed_reply_is_logged_and_its_window_read_again_never_skipped(
    sqlite_engine: AsyncEngine,
    sqlite_mirror: httpx.AsyncClient,
    upstream: Server,
    proxy: FaultProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    up, _ = await vendor_data("dlf", upstream, seed=15)
    target = unique("mirror")
    pace = dataclasses.replace(PACE, retries=1)
    source = dlf_source(
        unique("dlf"),
        proxy.url,
        up.workspace,
        target,
        pace,
        page_size=3,
        window=12 * 3600.0,
        overlap=600.0,
        lookback=24 * 3600.0,
    )
    lists = 0

    def second_page_broken(exchange: Exchange) -> str | None:
        nonlocal lists
        if "instances/detail" in exchange.target and "offset=3" in exchange.target:
            lists += 1
            return "malformed"
        return None

    proxy.decide = second_page_broken
    collector = Collector([source], sqlite_engine)
    with caplog.at_level(logging.ERROR, logger="jobql.collect"):
        assert not await collector.run(once=True)
    assert lists == 2  # the first try and its one retry
    logged = [r.getMessage() for r in caplog.records if "offset=3" in r.getMessage()]
    assert logged, caplog.text
    assert source.name in logged[0]
    assert "ListJobInstances(jobName=*" in logged[0]
    assert "truncated or invalid JSON" in logged[0]
    rows = {row.scope: row for row in await load_checkpoints(sqlite_engine, source.name)}
    assert rows[ALL_JOBS].high_water is None  # the window is not passed

    proxy.decide = lambda exchange: None
    assert await collector.run(once=True)
    await assert_same_jobs(upstream.http, up.workspace, sqlite_mirror, target, up.job_names)
