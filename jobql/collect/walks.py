"""The incremental logic of each kind of source, on the adapters' records (never an SDK type).

Common to all: every request goes through the `Caller` (rate limit, backoff); what a reply holds
is compared with what jobql stores, and only new or changed instances are written, through the
one ingest path, each page together with the checkpoint that covers it (`Store.write`); the
records carry the time their reply came as `reported_at`, so a newer report stored by anyone
else is never overwritten by an older read (the stale guard). Reading twice changes nothing.

- DLF (`DlfWalk`): plan-time windows `[start, end)` of at most `window` seconds, from the
  high-water mark minus `overlap` (first pass: `lookback` before now) to now; each window paged
  with limit/offset until its `total` is read; the detail (nodes) of every listed instance that
  is new, changed or not ended is fetched, and the instance written with it. The checkpoint after
  each page holds the window and the next offset; after the window's last page the high-water
  mark moves to its end. Instances seen not ended are kept `open` and read again (their list item
  and detail) every pass until they end, also once they are older than the overlap.
- SchedulerX (`SchedulerxWalk`): each job's latest 10 instances (the API gives no more): a poll
  that finds all 10 new may have missed some between polls; it is logged and counted (`gaps`).
  An instance that leaves the 10 before it ends is logged: its end cannot be read.
- Realtime Compute (`FlinkWalk`): each followed instance, read every pass until it ends.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from jobql import metrics
from jobql.collect.caller import Caller
from jobql.collect.checkpoints import (
    ALL_JOBS,
    DlfPosition,
    FlinkPosition,
    SchedulerxPosition,
    SourceCheckpoints,
    from_ms,
    to_ms,
)
from jobql.collect.config import DlfScope, FlinkScope, SchedulerxScope, SourceConfig
from jobql.collect.faults import Malformed, Refused, Stopped, Unavailable
from jobql.collect.sources import Listing
from jobql.resolvers.checkpoints import StoredInstance, store_page, stored_state
from jobql.storage.enums import TERMINAL_INSTANCE_STATUSES
from jobql.storage.records import CheckpointRecord, InstanceRecord

logger = logging.getLogger("jobql.collect")

TERMINAL = frozenset(status.name for status in TERMINAL_INSTANCE_STATUSES)
# SchedulerX's GetJobInstanceList answers a job's latest 10 instances.
LATEST = 10
Clock = Callable[[], datetime]
_UNCHANGED = metrics.INGEST_ITEMS.labels("instance", "unchanged")


@dataclass
class PassStats:
    windows: int = 0
    read: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    gaps: int = 0
    left_open: int = 0
    # Scopes read to the end this pass; scopes that failed on their own, with the problem.
    succeeded: list[str] = field(default_factory=list)
    scope_errors: dict[str, str] = field(default_factory=dict)
    # The scopes whose high-water marks bound the source's lag.
    lag_scopes: list[str] = field(default_factory=list)


class Store:
    """Records into jobql, each page with its checkpoint, within one pass of one source."""

    def __init__(
        self, engine: AsyncEngine, checkpoints: SourceCheckpoints, stats: PassStats
    ) -> None:
        self.engine = engine
        self.checkpoints = checkpoints
        self.stats = stats

    async def stored(self, records: Sequence[InstanceRecord]) -> list[StoredInstance | None]:
        return await stored_state(self.engine, records)

    async def changed(self, records: Sequence[InstanceRecord]) -> list[InstanceRecord]:
        """The records that are new or change a stored value or node; the rest count as
        unchanged."""
        states = await self.stored(records)
        changed = [r for r, s in zip(records, states, strict=True) if s is None or s.differs]
        unchanged = len(records) - len(changed)
        if unchanged:
            self.stats.counts["unchanged"] += unchanged
            # Never written, so the ingest path does not count them: the process's metrics
            # (`--metrics-address`) agree with the pass lines.
            _UNCHANGED.inc(unchanged)
        return changed

    async def write(
        self, records: Sequence[InstanceRecord], checkpoints: Sequence[CheckpointRecord]
    ) -> None:
        summary = await store_page(self.engine, records, checkpoints)
        self.checkpoints.commit(checkpoints)
        self.stats.counts.update(summary.counts)
        for problem in summary.rejected:
            logger.error("%s: rejected: %s", self.checkpoints.source.name, problem)


class Walk(Protocol):
    async def run(self, checkpoints: SourceCheckpoints, store: Store, stats: PassStats) -> None:
        """One pass over the source's scope; raises `Unavailable` when the source fails
        (scopes that failed on their own are in `stats.scope_errors`) and `Stopped` on a
        stop request, both after storing what was read to the end."""


class DlfApi(Protocol):
    def list_instances(
        self, *, job_name: str | None, min_plan_ms: int, max_plan_ms: int, offset: int, limit: int
    ) -> Listing: ...

    def instance_detail(self, job_name: str, instance_id: int) -> InstanceRecord | None: ...


class SchedulerxApi(Protocol):
    def latest_instances(self, job_id: int) -> list[InstanceRecord] | None: ...


class FlinkApi(Protocol):
    def instance(self, job_name: str, instance_id: int) -> InstanceRecord | None: ...


def _status(record: InstanceRecord) -> str | None:
    status = record.values.get("status")
    return status if isinstance(status, str) else None


def _scope_fault(exc: Unavailable) -> bool:
    """A failure of one job or instance (refused, or a reply that never reads), not of the
    source: the others are still read."""
    return isinstance(exc.fault, Refused | Malformed)


class DlfWalk:
    def __init__(self, source: SourceConfig, api: DlfApi, caller: Caller, clock: Clock) -> None:
        assert isinstance(source.scope, DlfScope)
        self.name = source.name
        self.scope = source.scope
        self.api = api
        self.call = caller
        self.clock = clock

    async def run(self, checkpoints: SourceCheckpoints, store: Store, stats: PassStats) -> None:
        scopes = list(self.scope.jobs) or [ALL_JOBS]
        stats.lag_scopes = scopes
        for scope in scopes:
            await self._scope(scope, checkpoints, store, stats)
            stats.succeeded.append(scope)

    async def _scope(
        self, scope: str, checkpoints: SourceCheckpoints, store: Store, stats: PassStats
    ) -> None:
        position = DlfPosition.read(checkpoints.position(scope))
        job_name = None if scope == ALL_JOBS else scope
        now = to_ms(self.clock())
        window = round(self.scope.window * 1000)
        seen: set[tuple[str, int]] = set()
        if position.window is not None:
            start, end, offset = position.window
        else:
            if position.high_water is None:
                start = now - round(self.scope.lookback * 1000)
            else:
                start = position.high_water - round(self.scope.overlap * 1000)
            end, offset = min(start + window, now), 0
        while start < end:
            await self._window(scope, position, job_name, (start, end, offset), seen, store, stats)
            start, offset = end, 0
            end = min(start + window, now)
        for (job, key), plan in sorted(position.open.items()):
            if (job, key) not in seen:
                await self._reread(scope, position, job, key, plan, store, stats)

    async def _window(
        self,
        scope: str,
        position: DlfPosition,
        job_name: str | None,
        bounds: tuple[int, int, int],
        seen: set[tuple[str, int]],
        store: Store,
        stats: PassStats,
    ) -> None:
        start, end, offset = bounds
        limit = self.scope.page_size
        while True:
            request = (
                f"{self.name}: ListJobInstances(jobName={job_name or '*'}, "
                f"plan times [{start}, {end}), offset={offset})"
            )
            listing = await self.call(
                request,
                partial(
                    self.api.list_instances,
                    job_name=job_name,
                    min_plan_ms=start - 1,  # DLF's bounds are exclusive
                    max_plan_ms=end,
                    offset=offset,
                    limit=limit,
                ),
            )
            records = listing.records
            stats.read += len(records)
            seen.update((r.job_name, r.instance_id) for r in records)
            handled, merged, failure = await self._details(records, store)
            for record in handled:
                key = (record.job_name, record.instance_id)
                if _status(record) in TERMINAL or key not in merged:
                    position.open.pop(key, None)
                else:
                    position.open[key] = to_ms(record.values["plan_time"])
            done = False
            if failure is None:
                offset += len(records)
                if not records or offset >= listing.total:
                    done = True
                    position.window = None
                    position.high_water = max(end, position.high_water or end)
                else:
                    position.window = (start, end, offset)
            else:
                # This page is read again (from its start) by the next pass.
                position.window = (start, end, offset)
            checkpoint = _checkpoint(store, scope, position)
            await store.write(await store.changed(list(merged.values())), [checkpoint])
            if failure is not None:
                raise failure
            if done:
                stats.windows += 1
                return

    async def _details(
        self, records: list[InstanceRecord], store: Store
    ) -> tuple[list[InstanceRecord], dict[tuple[str, int], InstanceRecord], Exception | None]:
        """Each listed record that is new, changed or not ended, with its detail (nodes).

        Returns the records dealt with (in order, up to a failure), the merged records to
        write by key, and the failure that stopped it (`Unavailable`, `Stopped`), if any.
        """
        states = await store.stored(records)
        handled: list[InstanceRecord] = []
        merged: dict[tuple[str, int], InstanceRecord] = {}
        for record, state in zip(records, states, strict=True):
            key = (record.job_name, record.instance_id)
            if state is not None and not state.differs and _status(record) in TERMINAL:
                handled.append(record)
                store.stats.counts["unchanged"] += 1
                continue
            try:
                detail = await self._detail(record.job_name, record.instance_id)
            except (Unavailable, Stopped) as exc:
                return handled, merged, exc
            handled.append(record)
            if detail is None:
                logger.warning(
                    "%s: instance %d of job %r was listed, but DLF no longer knows it",
                    self.name,
                    record.instance_id,
                    record.job_name,
                )
                continue
            merged[key] = _merge(record, detail, self.clock())
        return handled, merged, None

    async def _detail(self, job: str, key: int) -> InstanceRecord | None:
        return await self.call(
            f"{self.name}: ShowJobInstance(jobName={job}, instanceId={key})",
            partial(self.api.instance_detail, job, key),
        )

    async def _reread(
        self,
        scope: str,
        position: DlfPosition,
        job: str,
        key: int,
        plan: int,
        store: Store,
        stats: PassStats,
    ) -> None:
        """An instance not ended when last seen and now older than the walked windows: its list
        item (a window of its plan time) and its detail."""
        listing = await self.call(
            f"{self.name}: ListJobInstances(jobName={job}, plan time {plan})",
            partial(
                self.api.list_instances,
                job_name=job,
                min_plan_ms=plan - 1,
                max_plan_ms=plan + 1,
                offset=0,
                limit=self.scope.page_size,
            ),
        )
        listed = next((r for r in listing.records if r.instance_id == key), None)
        detail = await self._detail(job, key)
        stats.read += 1
        records: list[InstanceRecord] = []
        if detail is None:
            logger.warning(
                "%s: instance %d of job %r is no longer known to DLF; no longer followed",
                self.name,
                key,
                job,
            )
            position.open.pop((job, key), None)
        else:
            record = _merge(listed, detail, self.clock())
            if _status(listed or detail) in TERMINAL:
                position.open.pop((job, key), None)
            records = await store.changed([record])
        await store.write(records, [_checkpoint(store, scope, position)])


def _checkpoint(store: Store, scope: str, position: DlfPosition) -> CheckpointRecord:
    high_water = None if position.high_water is None else from_ms(position.high_water)
    return store.checkpoints.record(scope, position.data(), high_water=high_water)


def _merge(
    listed: InstanceRecord | None, detail: InstanceRecord, received: datetime
) -> InstanceRecord:
    """The list item's fields with the detail's over them (newer, and with nodes)."""
    if listed is None:
        detail.reported_at = received
        return detail
    return InstanceRecord(
        workspace=detail.workspace,
        job_name=detail.job_name,
        instance_id=detail.instance_id,
        values={**listed.values, **detail.values},
        nodes=detail.nodes,
        reported_at=received,
        job_values={**listed.job_values, **detail.job_values},
        source=detail.source,
    )


class SchedulerxWalk:
    def __init__(
        self, source: SourceConfig, api: SchedulerxApi, caller: Caller, clock: Clock
    ) -> None:
        assert isinstance(source.scope, SchedulerxScope)
        self.name = source.name
        self.scope = source.scope
        self.api = api
        self.call = caller
        self.clock = clock

    async def run(self, checkpoints: SourceCheckpoints, store: Store, stats: PassStats) -> None:
        stats.lag_scopes = [str(job_id) for job_id in self.scope.job_ids]
        for job_id in self.scope.job_ids:
            scope = str(job_id)
            try:
                records = await self.call(
                    f"{self.name}: GetJobInstanceList(JobId={job_id})",
                    partial(self.api.latest_instances, job_id),
                )
            except Unavailable as exc:
                if not _scope_fault(exc):
                    raise
                stats.scope_errors[scope] = str(exc)
                continue
            if records is None:
                stats.scope_errors[scope] = (
                    f"{self.name}: SchedulerX knows no job {job_id} in namespace "
                    f"{self.scope.namespace!r}, group {self.scope.group_id!r}"
                )
                continue
            await self._job(scope, records, checkpoints, store, stats)
            stats.succeeded.append(scope)

    async def _job(
        self,
        scope: str,
        records: list[InstanceRecord],
        checkpoints: SourceCheckpoints,
        store: Store,
        stats: PassStats,
    ) -> None:
        received = self.clock()
        stats.read += len(records)
        position = SchedulerxPosition.read(checkpoints.position(scope))
        states = await store.stored(records)
        ids = [record.instance_id for record in records]
        if position.polled and len(records) >= LATEST and all(s is None for s in states):
            position.gaps += 1
            stats.gaps += 1
            logger.warning(
                "%s: job %s: all %d instances of the reply are new: instances that started and "
                "left the latest %d between two polls are missed; poll more often",
                self.name,
                scope,
                len(records),
                LATEST,
            )
        left = [key for key in position.open if key not in ids]
        if left:
            stats.left_open += len(left)
            logger.warning(
                "%s: job %s: instances %s left the latest %d before they ended; their end "
                "cannot be read",
                self.name,
                scope,
                ", ".join(map(str, left)),
                LATEST,
            )
        for record in records:
            record.reported_at = received
        changed = [r for r, s in zip(records, states, strict=True) if s is None or s.differs]
        stats.counts["unchanged"] += len(records) - len(changed)
        position.latest = ids
        position.open = [r.instance_id for r in records if _status(r) not in TERMINAL]
        checkpoint = checkpoints.record(scope, position.data(), high_water=received)
        await store.write(changed, [checkpoint])


class FlinkWalk:
    def __init__(self, source: SourceConfig, api: FlinkApi, caller: Caller, clock: Clock) -> None:
        assert isinstance(source.scope, FlinkScope)
        self.name = source.name
        self.scope = source.scope
        self.api = api
        self.call = caller
        self.clock = clock

    async def run(self, checkpoints: SourceCheckpoints, store: Store, stats: PassStats) -> None:
        for followed in self.scope.instances:
            scope = f"{followed.job}/{followed.id}"
            position = FlinkPosition.read(checkpoints.position(scope))
            if position.ended:
                stats.succeeded.append(scope)
                continue
            stats.lag_scopes.append(scope)
            try:
                record = await self.call(
                    f"{self.name}: GetInstance(jobName={followed.job}, instanceId={followed.id})",
                    partial(self.api.instance, followed.job, followed.id),
                )
            except Unavailable as exc:
                if not _scope_fault(exc):
                    raise
                stats.scope_errors[scope] = str(exc)
                continue
            if record is None:
                stats.scope_errors[scope] = (
                    f"{self.name}: Realtime Compute knows no instance {followed.id} of job "
                    f"{followed.job!r} in project {self.scope.project!r}"
                )
                continue
            received = self.clock()
            record.reported_at = received
            stats.read += 1
            position.status = _status(record)
            position.ended = position.status in TERMINAL
            changed = await store.changed([record])
            await store.write(
                changed, [checkpoints.record(scope, position.data(), high_water=received)]
            )
            stats.succeeded.append(scope)
