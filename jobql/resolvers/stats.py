"""Use cases over statistics: counts by status, instance statistics with timelines, node statistics.

Each stats field costs one statement: a nested one (`Job.stats`, `Job.instances.countsByStatus`,
`Instance.nodeStats`, ...) is batched across its parents by a per-request loader, and the timelines
of all groups of one `instanceStats` are read together, once, when first selected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobql.errors import BadUserInput
from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers.context import RequestContext
from jobql.storage import stats
from jobql.storage.enums import (
    InstanceStatus,
    InstanceType,
    NodeStatsOrder,
    StatsGroup,
    TimeBucket,
)
from jobql.storage.instances import InstanceFilter
from jobql.storage.stats import (
    DURATION_FRACTIONS,
    SHORT_FRACTIONS,
    BucketStats,
    GroupStats,
    NodeStats,
    Percentiles,
    Window,
)

__all__ = [
    "DURATION_FRACTIONS",
    "MAX_BUCKETS",
    "MAX_GROUPS",
    "MAX_NODE_STATS",
    "SHORT_FRACTIONS",
    "BucketStats",
    "GroupStats",
    "InstanceFilter",
    "NodeStats",
    "Percentiles",
    "Stats",
    "bucket_count",
    "build_window",
    "instance_stats",
    "instance_status_counts",
    "job_stats",
    "job_status_counts",
    "node_stats",
    "node_status_counts",
]

# An instanceStats answer with more groups is refused (BAD_USER_INPUT), before it is read whole.
MAX_GROUPS = 10_000
# A timeline with more buckets is refused (BAD_USER_INPUT) before any SQL runs.
MAX_BUCKETS = 1000
# Instance.nodeStats(first:): 1..MAX_NODE_STATS, DEFAULT_NODE_STATS when absent.
MAX_NODE_STATS = 1000
DEFAULT_NODE_STATS = 100

_STEP = {
    TimeBucket.HOUR: timedelta(hours=1),
    TimeBucket.DAY: timedelta(days=1),
    TimeBucket.WEEK: timedelta(weeks=1),
}
_MS = timedelta(milliseconds=1)


@dataclass(slots=True)
class Stats:
    """One group of instance statistics; its timeline is read when first asked (None: no
    bucket was asked for)."""

    group: GroupStats
    timeline: Callable[[], Awaitable[list[BucketStats]]] | None

    @property
    def success_rate(self) -> float | None:
        return None if self.group.count == 0 else self.group.successes / self.group.count


# -- windows and buckets -------------------------------------------------------------------------


def build_window(after: datetime | None, before: datetime | None) -> InstanceFilter:
    """A plan time window, validated as InstanceFilter's bounds are (the same error)."""
    return instance_use_cases.build_filter(plan_time_after=after, plan_time_before=before)


def truncate(bucket: TimeBucket, time: datetime) -> datetime:
    """The start of the UTC bucket holding `time` (weeks start on Monday)."""
    time = time.astimezone(UTC)
    if bucket is TimeBucket.HOUR:
        return time.replace(minute=0, second=0, microsecond=0)
    day = time.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket is TimeBucket.DAY:
        return day
    return day - timedelta(days=day.weekday())


def _bounds(bucket: TimeBucket, after: datetime, before: datetime) -> tuple[datetime, datetime]:
    """The first and last bucket starts of the exclusive range (after, before); first > last
    when no millisecond fits in it."""
    if before - after < 2 * _MS:
        return truncate(bucket, before), truncate(bucket, after)
    return truncate(bucket, after + _MS), truncate(bucket, before - _MS)


def bucket_count(bucket: TimeBucket, after: datetime, before: datetime) -> int:
    """How many buckets cover the exclusive plan time range (after, before)."""
    first, last = _bounds(bucket, after, before)
    if first > last:
        return 0
    return (last - first) // _STEP[bucket] + 1


def bucket_starts(spec: InstanceFilter, bucket: TimeBucket, where: str) -> list[datetime]:
    """Every bucket start of the filter's plan time range; BAD_USER_INPUT without both bounds or
    with more than MAX_BUCKETS buckets. `where` names the argument holding the bounds."""
    after, before = spec.plan_time_after, spec.plan_time_before
    if after is None or before is None:
        raise BadUserInput(
            f"`bucket` needs a time range: give both `{where}.planTimeAfter` and "
            f"`{where}.planTimeBefore` (the timeline has a bucket for every "
            f"{bucket.name} between them)."
        )
    count = bucket_count(bucket, after, before)
    if count > MAX_BUCKETS:
        raise BadUserInput(
            f"`bucket: {bucket.name}` over this plan time range makes {count} buckets; a timeline "
            f"has at most {MAX_BUCKETS}. Narrow `{where}.planTimeAfter`/`{where}.planTimeBefore` "
            "or use a wider bucket."
        )
    first, _ = _bounds(bucket, after, before)
    return [first + n * _STEP[bucket] for n in range(count)]


def _filled(starts: list[datetime], found: list[BucketStats]) -> list[BucketStats]:
    by_start = {b.start: b for b in found}
    return [by_start.get(start) or stats.empty_bucket(start) for start in starts]


class _Once:
    """An awaitable read at most once, whoever asks first; later callers share its result."""

    def __init__(self, read: Callable[[], Awaitable[Any]]) -> None:
        self._read = read
        self._lock = asyncio.Lock()
        self._done = False
        self._value: Any = None

    async def __call__(self) -> Any:
        async with self._lock:
            if not self._done:
                self._value = await self._read()
                self._done = True
        return self._value


# -- counts by status ----------------------------------------------------------------------------


async def instance_status_counts(
    ctx: RequestContext, spec: InstanceFilter
) -> list[tuple[str, int]]:
    """Instances matching `spec` per status, every status in the enum's order, zero included."""
    return list((await stats.status_counts(ctx.reader, ctx.workspace, spec)).items())


async def job_status_counts(
    ctx: RequestContext, job_id: int, spec: InstanceFilter
) -> list[tuple[str, int]]:
    loader = ctx.stats_loaders.status_counts_by_job_id
    return list((await loader.load((job_id, spec))).items())


async def node_status_counts(
    ctx: RequestContext, instance: tuple[int, datetime], statuses: tuple[str, ...] | None
) -> list[tuple[str, int]]:
    """`instance`: its key and plan time (the nodes' partition key on PostgreSQL)."""
    loader = ctx.stats_loaders.node_status_counts_by_instance_id
    return list((await loader.load((instance, statuses))).items())


# -- instance statistics -------------------------------------------------------------------------


_STATUS_ORDER = {s.name: n for n, s in enumerate(InstanceStatus)}
_TYPE_ORDER = {t.name: n for n, t in enumerate(InstanceType)}


def _sort_key(group: GroupStats, group_by: Sequence[StatsGroup]) -> tuple[Any, ...]:
    status, _, instance_type = group.key
    parts: list[Any] = []
    for dimension in group_by:
        if dimension is StatsGroup.STATUS:
            parts.append(_STATUS_ORDER.get(status or "", -1))
        elif dimension is StatsGroup.JOB:
            parts.append((group.job_name or "", group.key[1] or 0))
        else:
            parts.append(_TYPE_ORDER.get(instance_type or "", -1))
    return tuple(parts)


async def instance_stats(
    ctx: RequestContext,
    spec: InstanceFilter,
    group_by: Sequence[StatsGroup] | None,
    bucket: TimeBucket | None,
    *,
    lateness: bool = True,
) -> list[Stats]:
    """Statistics of the instances matching `spec`, per group (one group without `group_by`),
    ordered by the group keys in `group_by`'s order; with `bucket`, each with a timeline;
    lateness only where asked for (`lateness`)."""
    dimensions = tuple(dict.fromkeys(group_by or ()))
    starts = bucket_starts(spec, bucket, "filter") if bucket is not None else None
    groups = await stats.group_stats(
        ctx.reader, ctx.workspace, spec, dimensions, limit=MAX_GROUPS + 1, lateness=lateness
    )
    if len(groups) > MAX_GROUPS:
        raise BadUserInput(
            f"`instanceStats` would return more than {MAX_GROUPS} groups: narrow the filter "
            "(e.g. `jobName`) or group by fewer keys."
        )
    groups.sort(key=lambda g: _sort_key(g, dimensions))
    if bucket is None or starts is None:
        return [Stats(group, None) for group in groups]
    chosen_bucket = bucket
    read_all = _Once(
        lambda: stats.bucket_stats(ctx.reader, ctx.workspace, spec, dimensions, chosen_bucket)
    )

    def timeline_of(key: stats.GroupKey) -> Callable[[], Awaitable[list[BucketStats]]]:
        async def timeline() -> list[BucketStats]:
            found: dict[stats.GroupKey, list[BucketStats]] = await read_all()
            assert starts is not None
            return _filled(starts, found.get(key, []))

        return timeline

    return [Stats(group, timeline_of(group.key)) for group in groups]


async def job_stats(
    ctx: RequestContext,
    job_id: int,
    window: InstanceFilter,
    bucket: TimeBucket | None,
    *,
    lateness: bool = True,
) -> Stats:
    """Statistics of one job's instances planned inside `window` (batched across jobs; lateness
    only where asked for)."""
    starts = bucket_starts(window, bucket, "window") if bucket is not None else None
    loaded = ctx.stats_loaders.group_stats_by_job_id
    group: GroupStats = await loaded.load((job_id, (window, lateness)))
    if bucket is None or starts is None:
        return Stats(group, None)
    loader = ctx.stats_loaders.bucket_stats_by_job_id
    key = (job_id, (window, bucket))

    async def timeline() -> list[BucketStats]:
        return _filled(starts, await loader.load(key))

    return Stats(group, timeline)


# -- node statistics -----------------------------------------------------------------------------


def _node_order(order: NodeStatsOrder) -> Callable[[NodeStats], tuple[Any, ...]]:
    def p95(node: NodeStats) -> float | None:
        return node.duration.values[SHORT_FRACTIONS.index(0.95)]

    if order is NodeStatsOrder.SLOWEST:
        return lambda n: (p95(n) is None, -(p95(n) or 0.0), n.name)
    if order is NodeStatsOrder.MOST_FAILING:
        return lambda n: (-n.failures, -(n.failures / n.runs), n.name)
    return lambda n: (n.name,)


async def node_stats(
    ctx: RequestContext,
    instance: tuple[int, datetime],
    window: InstanceFilter | None,
    order: NodeStatsOrder,
    first: int | None,
) -> list[NodeStats]:
    """Per node name of this instance's job, across the job's runs in `window` (None: the 30
    days up to this instance's plan time): the first `first` in `order`."""
    limit = DEFAULT_NODE_STATS if first is None else first
    if not 1 <= limit <= MAX_NODE_STATS:
        raise BadUserInput(f"`first` must be between 1 and {MAX_NODE_STATS}, got {limit}.")
    bounds: Window | None = (
        None if window is None else (window.plan_time_after, window.plan_time_before)
    )
    found: list[NodeStats] = await ctx.stats_loaders.node_stats_by_instance_id.load(
        (instance, bounds)
    )
    return sorted(found, key=_node_order(order))[:limit]
