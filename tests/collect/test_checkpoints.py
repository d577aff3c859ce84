"""Checkpoints are data written with the page they cover: both land or neither; a stop finishes
the request in flight, stores what it read with its checkpoint, and the next run resumes there."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.collect.caller import Caller
from jobql.collect.checkpoints import ALL_JOBS
from jobql.collect.runner import Collector
from jobql.collect.sources import Listing
from jobql.collect.sources.dlf import DlfSource
from jobql.collect.walks import DlfWalk
from jobql.resolvers import checkpoints as use_cases
from jobql.resolvers.checkpoints import load_checkpoints, store_page, stored_state
from jobql.storage.records import CheckpointRecord, InstanceRecord, NodeRecord
from tests.collect.compare import assert_same_jobs
from tests.collect.conftest import unique
from tests.collect.data import DlfUpstream
from tests.collect.support import dlf_source
from tests.collect.upstream import Server

PLAN = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def record(workspace: str, instance_id: int) -> InstanceRecord:
    return InstanceRecord(
        workspace=workspace,
        job_name="job_a",
        instance_id=instance_id,
        values={"status": "SUCCESS", "plan_time": PLAN},
        nodes=[NodeRecord("n1", {"type": "Shell", "status": "SUCCESS"})],
    )


async def test_a_page_and_its_checkpoint_are_stored_together_or_not_at_all(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, source = unique("ws"), unique("src")
    page = [record(workspace, 1), record(workspace, 2)]
    checkpoint = CheckpointRecord(source=source, scope="*", kind="dlf", position='{"n": 1}')

    async def broken(*_args: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(use_cases, "write_checkpoints", broken)
    with pytest.raises(RuntimeError, match="disk is full"):
        await store_page(engine, page, [checkpoint])
    assert await stored_state(engine, page) == [None, None]
    monkeypatch.undo()

    summary = await store_page(engine, page, [checkpoint])
    assert summary.counts["created"] == 2
    assert [row.position for row in await load_checkpoints(engine, source)] == ['{"n": 1}']
    # The same page again changes nothing.
    again = await store_page(engine, page, [checkpoint])
    assert again.counts["unchanged"] == 2


class StopDuringDetail:
    """The DLF adapter, with a stop request (SIGTERM) arriving while a detail is in flight."""

    def __init__(self, api: DlfSource, stop: asyncio.Event) -> None:
        self.api = api
        self.stop = stop
        self.details = 0

    def list_instances(self, **kwargs: Any) -> Listing:
        return self.api.list_instances(**kwargs)

    def instance_detail(self, job_name: str, instance_id: int) -> InstanceRecord | None:
        self.details += 1
        if self.details == 2:
            self.stop.set()
        return self.api.instance_detail(job_name, instance_id)


async def test_a_stop_finishes_the_request_in_flight_and_the_next_run_resumes_there(
    engine: AsyncEngine, upstream: Server, mirror: httpx.AsyncClient
) -> None:
    up = DlfUpstream(upstream.http, unique("dlf"), random.Random(21))
    up.seed(jobs=1, per_job=6, span=timedelta(hours=3), open_share=0.0)
    await up.push()
    target = unique("mirror")
    source = dlf_source(
        unique("dlf"), upstream.url, up.workspace, target, page_size=4, window=86400.0
    )
    stop = asyncio.Event()
    caller = Caller(source.name, source.pace, stop)
    api = StopDuringDetail(DlfSource(source), stop)
    walk = DlfWalk(source, api, caller, lambda: datetime.now(UTC))
    collector = Collector([source], engine, stop=stop, walks={source.name: (walk, caller)})
    assert not await collector.run(once=True)
    report = collector.reports[-1]
    assert report.stopped
    assert report.requests == 3  # the list page and two details; nothing after the stop
    assert report.stats.counts["created"] == 2  # both details read are stored
    rows = {row.scope: row for row in await load_checkpoints(engine, source.name)}
    position = json.loads(rows[ALL_JOBS].position or "")
    assert position["window"][2] == 0  # the page is read again, from its start
    assert position["high_water"] is None

    resumed = Collector([source], engine)
    assert await resumed.run(once=True)
    assert resumed.reports[-1].stats.counts["created"] == 4
    assert resumed.reports[-1].stats.counts["unchanged"] == 2
    await assert_same_jobs(upstream.http, up.workspace, mirror, target, up.job_names)
