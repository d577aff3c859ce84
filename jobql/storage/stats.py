"""Statistics over instances and nodes: counts by status, durations, lateness and timelines.

Each function is one statement, confined to the workspace like every query and filtered by the same
`filter_conditions` as the instance lists. Percentiles are PostgreSQL's `percentile_cont` (linear
interpolation); SQLite computes the same definition in `jobql_percentiles` (`sqlite_functions`).
Durations are `end_time - start_time` and lateness `start_time - plan_time`, in whole
milliseconds, null while a time is missing (as `Instance.durationMs`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    Select,
    and_,
    cast,
    func,
    literal_column,
    select,
    true,
    type_coerce,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import KeyedColumnElement

from jobql.storage import nodes
from jobql.storage.engine import Reader
from jobql.storage.enums import InstanceStatus, NodeStatus, StatsGroup, TimeBucket
from jobql.storage.instances import InstanceFilter, filter_conditions
from jobql.storage.loaders import ShieldedDataLoader
from jobql.storage.models import Instance, InstanceNode, Job
from jobql.storage.nodes import filter_conditions as node_filter_conditions
from jobql.storage.scope import in_workspace
from jobql.storage.types import UtcDateTime

DURATION_FRACTIONS = (0.5, 0.9, 0.95, 0.99)
SHORT_FRACTIONS = (0.5, 0.95)
# Instance.nodeStats without a window: the job's runs planned this long before the instance.
NODE_STATS_DEFAULT_HOURS = 30 * 24
MAX_BATCH = 5_000

# (status, job id, instance type): the key of a group, None where it is not grouped by.
GroupKey = tuple[str | None, int | None, str | None]
# Plan time bounds, both exclusive (None: unbounded), like InstanceFilter's.
Window = tuple[datetime | None, datetime | None]


@dataclass(frozen=True, slots=True)
class Percentiles:
    """How many values there were, and their percentile at each asked fraction (None: none)."""

    count: int
    values: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class DurationStats:
    percentiles: Percentiles  # at DURATION_FRACTIONS
    min: int | None
    avg: float | None
    max: int | None


@dataclass(frozen=True, slots=True)
class GroupStats:
    key: GroupKey
    job_name: str | None
    count: int
    successes: int
    duration: DurationStats
    lateness: Percentiles | None  # at SHORT_FRACTIONS; None: not read (not asked for)


@dataclass(frozen=True, slots=True)
class BucketStats:
    start: datetime
    counts: dict[str, int]  # every InstanceStatus name, zero included
    duration: Percentiles  # at SHORT_FRACTIONS


@dataclass(frozen=True, slots=True)
class NodeStats:
    name: str
    runs: int
    failures: int
    retries: int
    retried_runs: int
    duration: Percentiles  # at SHORT_FRACTIONS


def empty_group(key: GroupKey, job_name: str | None = None) -> GroupStats:
    none = Percentiles(0, (None,) * len(DURATION_FRACTIONS))
    return GroupStats(
        key=key,
        job_name=job_name,
        count=0,
        successes=0,
        duration=DurationStats(none, None, None, None),
        lateness=Percentiles(0, (None,) * len(SHORT_FRACTIONS)),
    )


def empty_bucket(start: datetime) -> BucketStats:
    return BucketStats(
        start=start,
        counts={s.name: 0 for s in InstanceStatus},
        duration=Percentiles(0, (None,) * len(SHORT_FRACTIONS)),
    )


# -- SQL building blocks -------------------------------------------------------------------------


def milliseconds_between(
    dialect: str, start: ColumnElement[Any], end: ColumnElement[Any]
) -> ColumnElement[Any]:
    """`end - start` in whole milliseconds (times are kept to the millisecond); null while either
    is null. The same value as `Instance.durationMs` and the compiled strategy's `Duration`."""
    if dialect == "postgresql":
        # date_part (float8), not extract (numeric since PostgreSQL 14, about 4x the CPU a row):
        # at whole milliseconds the float's error is far below 0.5 ms up to the year 9999, so
        # the rounded value is the same.
        return cast(func.round(func.date_part("epoch", end - start) * 1000), BigInteger)
    # SQLite keeps the time as whole milliseconds (its iJD) and julianday() divides them by
    # 86400000: the difference of two is off by less than 0.1 ms even in the year 9999, so it
    # rounds to the exact millisecond, three times faster than strftime('%s') and substr.
    days = func.julianday(end) - func.julianday(start)
    return cast(func.round(days * literal_column("86400000")), Integer)


_PG_TRUNC = {TimeBucket.HOUR: "hour", TimeBucket.DAY: "day", TimeBucket.WEEK: "week"}


def bucket_start(dialect: str, bucket: TimeBucket, time: ColumnElement[Any]) -> ColumnElement[Any]:
    """The start of the UTC bucket holding `time`: the hour, the day, the week from Monday."""
    if dialect == "postgresql":
        # date_trunc's week is ISO 8601's, which starts on Monday. Truncated as a UTC timestamp
        # (off the session time zone) and back: the same value as date_trunc(unit, time, 'UTC'),
        # at half its CPU a row.
        unit: ColumnElement[str] = literal_column(f"'{_PG_TRUNC[bucket]}'")
        utc: ColumnElement[str] = literal_column("'UTC'")
        truncated = func.date_trunc(unit, func.timezone(utc, time))
        return type_coerce(func.timezone(utc, truncated), UtcDateTime)
    if bucket is TimeBucket.HOUR:
        text = func.substr(time, literal_column("1"), literal_column("13")).op("||")(
            literal_column("':00:00.000Z'")
        )
    elif bucket is TimeBucket.DAY:
        text = func.substr(time, literal_column("1"), literal_column("10")).op("||")(
            literal_column("'T00:00:00.000Z'")
        )
    else:
        # Back six days, then forward to the next Monday (or stay on it): the Monday on or before.
        monday = func.date(time, literal_column("'-6 days'"), literal_column("'weekday 1'"))
        text = monday.op("||")(literal_column("'T00:00:00.000Z'"))
    return type_coerce(text, UtcDateTime)


def percentiles(
    dialect: str, value: ColumnElement[Any], fractions: Sequence[float]
) -> ColumnElement[Any]:
    """The `percentile_cont` of the non-null `value`s at each fraction, in one aggregate (one
    sort): a float8[] on PostgreSQL; on SQLite a JSON array text, from the values collected by
    `json_group_array` (see `sqlite_functions`). Null without values."""
    listed = ",".join(repr(f) for f in fractions)
    if dialect == "postgresql":
        array: ColumnElement[Any] = literal_column(f"ARRAY[{listed}]::float8[]")
        return func.percentile_cont(array).within_group(cast(value, Float))
    collected = func.json_group_array(value).filter(value.is_not(None))
    return func.jobql_percentiles(collected, literal_column(f"'{listed}'"))


def _percentiles(count: Any, raw: Any, fractions: Sequence[float]) -> Percentiles:
    if raw is None:
        return Percentiles(int(count or 0), (None,) * len(fractions))
    values = json.loads(raw) if isinstance(raw, str) else raw
    return Percentiles(int(count or 0), tuple(float(v) for v in values))


def _status_counts(
    statuses: type[InstanceStatus] | type[NodeStatus], found: dict[str, int]
) -> dict[str, int]:
    return {s.name: found.get(s.name, 0) for s in statuses}


# -- counts by status ----------------------------------------------------------------------------


async def status_counts(reader: Reader, workspace: str, spec: InstanceFilter) -> dict[str, int]:
    """Instances matching `spec` by status: every status, zero included, in the enum's order."""
    statement = (
        select(Instance.status, func.count())
        .where(
            in_workspace(Instance.workspace_id, workspace),  # type: ignore[arg-type]
            *filter_conditions(workspace, spec),
        )
        .group_by(Instance.status)
    )
    found = {row[0]: int(row[1]) for row in await reader.execute(statement)}
    return _status_counts(InstanceStatus, found)


async def status_counts_for_jobs(
    reader: Reader, workspace: str, job_ids: Sequence[int], spec: InstanceFilter
) -> dict[int, dict[str, int]]:
    """`status_counts` for each job, in one statement."""
    statement = (
        select(Instance.job_id, Instance.status, func.count())
        .where(
            in_workspace(Instance.workspace_id, workspace),  # type: ignore[arg-type]
            Instance.job_id.in_(job_ids),
            *filter_conditions(workspace, spec),
        )
        .group_by(Instance.job_id, Instance.status)
    )
    found: dict[int, dict[str, int]] = {job_id: {} for job_id in job_ids}
    for job_id, status, count in await reader.execute(statement):
        found[job_id][status] = int(count)
    return {key: _status_counts(InstanceStatus, counts) for key, counts in found.items()}


async def node_status_counts_for_instances(
    reader: Reader,
    workspace: str,
    instances: Sequence[nodes.Parent],
    statuses: tuple[str, ...] | None,
) -> dict[int, dict[str, int]]:
    """Nodes of each (instance id, plan time) (with one of `statuses`) by node status, by
    instance id, in one statement."""
    instance_ids = [key for key, _ in instances]
    statement = (
        select(InstanceNode.instance_id, InstanceNode.status, func.count())
        .where(
            in_workspace(InstanceNode.workspace_id, workspace),  # type: ignore[arg-type]
            *nodes.of_instances(instances),
            *node_filter_conditions(statuses),
        )
        .group_by(InstanceNode.instance_id, InstanceNode.status)
    )
    found: dict[int, dict[str, int]] = {instance_id: {} for instance_id in instance_ids}
    for instance_id, status, count in await reader.execute(statement):
        found[instance_id][status] = int(count)
    return {key: _status_counts(NodeStatus, counts) for key, counts in found.items()}


# -- instance statistics -------------------------------------------------------------------------


def _measured(
    dialect: str,
    workspace: str,
    spec: InstanceFilter,
    job_ids: Sequence[int] | None,
    bucket: TimeBucket | None,
    *,
    lateness: bool = False,
) -> Any:
    """The matching instances with their duration (lateness, bucket), as a subquery."""
    row = Instance.__table__.c
    columns: list[Any] = [
        row.status,
        row.job_id,
        row.instance_type,
        milliseconds_between(dialect, row.start_time, row.end_time).label("duration"),
    ]
    if lateness:
        late = milliseconds_between(dialect, row.plan_time, row.start_time)
        columns.append(late.label("lateness"))
    if bucket is not None:
        columns.append(bucket_start(dialect, bucket, row.plan_time).label("bucket"))
    statement = select(*columns).where(
        in_workspace(Instance.workspace_id, workspace),  # type: ignore[arg-type]
        *filter_conditions(workspace, spec),
    )
    if job_ids is not None:
        statement = statement.where(Instance.job_id.in_(job_ids))
    return _fenced(dialect, statement).subquery("measured")


def _fenced(dialect: str, statement: Select[Any]) -> Select[Any]:
    """A subquery the planner keeps apart, so that its computed columns are computed once per
    row: inlined, each aggregate over `duration` would compute it again. SQLite runs a subquery
    with a LIMIT as a co-routine (it never flattens one into an aggregate); PostgreSQL never
    pulls up one with an OFFSET."""
    if dialect == "postgresql":
        return statement.offset(literal_column("0"))
    return statement.limit(literal_column("-1"))


def _keys(measured: Any, group_by: Sequence[StatsGroup]) -> list[KeyedColumnElement[Any]]:
    keys = []
    if StatsGroup.STATUS in group_by:
        keys.append(measured.c.status)
    if StatsGroup.JOB in group_by:
        keys.append(measured.c.job_id)
    if StatsGroup.INSTANCE_TYPE in group_by:
        keys.append(measured.c.instance_type)
    return keys


def _key_of(row: Any, group_by: Sequence[StatsGroup]) -> GroupKey:
    mapping = row._mapping
    return (
        mapping["status"] if StatsGroup.STATUS in group_by else None,
        mapping["job_id"] if StatsGroup.JOB in group_by else None,
        mapping["instance_type"] if StatsGroup.INSTANCE_TYPE in group_by else None,
    )


async def group_stats(
    reader: Reader,
    workspace: str,
    spec: InstanceFilter,
    group_by: Sequence[StatsGroup],
    *,
    job_ids: Sequence[int] | None = None,
    limit: int | None = None,
    lateness: bool = True,
) -> list[GroupStats]:
    """Count, successes, duration and (with `lateness`: its percentiles are a second sort of
    the rows) lateness statistics of the matching instances per group (one group without
    `group_by`, also when nothing matches; else only groups that have instances), in one
    statement; at most `limit` groups (the caller checks for more)."""
    dialect = reader.dialect
    measured = _measured(dialect, workspace, spec, job_ids, None, lateness=lateness)
    keys = _keys(measured, group_by)
    duration = measured.c.duration
    columns: list[Any] = [
        *keys,
        func.count().label("count"),
        func.count().filter(measured.c.status == InstanceStatus.SUCCESS.name).label("successes"),
        func.count(duration).label("duration_count"),
        func.min(duration).label("duration_min"),
        func.max(duration).label("duration_max"),
        # float8 on both: a double sum of whole milliseconds, one division (no numeric rounding).
        func.avg(cast(duration, Float)).label("duration_avg"),
        percentiles(dialect, duration, DURATION_FRACTIONS).label("duration_percentiles"),
    ]
    if lateness:
        late = measured.c.lateness
        columns.append(func.count(late).label("lateness_count"))
        columns.append(percentiles(dialect, late, SHORT_FRACTIONS).label("lateness_percentiles"))
    statement: Select[Any] = select(*columns).select_from(measured)
    if StatsGroup.JOB in group_by:
        job = aliased(Job)
        statement = statement.join(job, job.id == measured.c.job_id).add_columns(
            job.name.label("job_name")
        )
        statement = statement.group_by(*keys, job.name)
    elif keys:
        statement = statement.group_by(*keys)
    if limit is not None:
        statement = statement.limit(limit)
    found = []
    for row in await reader.execute(statement):
        mapping = row._mapping
        found.append(
            GroupStats(
                key=_key_of(row, group_by),
                job_name=mapping["job_name"] if StatsGroup.JOB in group_by else None,
                count=int(mapping["count"]),
                successes=int(mapping["successes"]),
                duration=DurationStats(
                    percentiles=_percentiles(
                        mapping["duration_count"],
                        mapping["duration_percentiles"],
                        DURATION_FRACTIONS,
                    ),
                    min=None if mapping["duration_min"] is None else int(mapping["duration_min"]),
                    avg=None if mapping["duration_avg"] is None else float(mapping["duration_avg"]),
                    max=None if mapping["duration_max"] is None else int(mapping["duration_max"]),
                ),
                lateness=_percentiles(
                    mapping["lateness_count"], mapping["lateness_percentiles"], SHORT_FRACTIONS
                )
                if lateness
                else None,
            )
        )
    return found


async def bucket_stats(
    reader: Reader,
    workspace: str,
    spec: InstanceFilter,
    group_by: Sequence[StatsGroup],
    bucket: TimeBucket,
    *,
    job_ids: Sequence[int] | None = None,
) -> dict[GroupKey, list[BucketStats]]:
    """Per group, the buckets (by plan time) that have instances: counts by status and the
    duration's p50/p95, in one statement. Empty buckets are the caller's to add."""
    dialect = reader.dialect
    measured = _measured(dialect, workspace, spec, job_ids, bucket)
    keys = _keys(measured, group_by)
    duration = measured.c.duration
    by_status = [
        func.count().filter(measured.c.status == status.name).label(f"n_{status.name}")
        for status in InstanceStatus
    ]
    statement = (
        select(
            *keys,
            measured.c.bucket,
            *by_status,
            func.count(duration).label("duration_count"),
            percentiles(dialect, duration, SHORT_FRACTIONS).label("duration_percentiles"),
        )
        .select_from(measured)
        .group_by(*keys, measured.c.bucket)
    )
    found: dict[GroupKey, list[BucketStats]] = defaultdict(list)
    for row in await reader.execute(statement):
        mapping = row._mapping
        found[_key_of(row, group_by)].append(
            BucketStats(
                start=mapping["bucket"],
                counts={s.name: int(mapping[f"n_{s.name}"]) for s in InstanceStatus},
                duration=_percentiles(
                    mapping["duration_count"], mapping["duration_percentiles"], SHORT_FRACTIONS
                ),
            )
        )
    for buckets in found.values():
        buckets.sort(key=lambda b: b.start)
    return dict(found)


# -- node statistics -----------------------------------------------------------------------------


def _hours_before(dialect: str, time: ColumnElement[Any], hours: int) -> ColumnElement[Any]:
    if dialect == "postgresql":
        # Hours, not days: a day interval on timestamptz follows the session's time zone.
        return time - literal_column(f"interval '{int(hours)} hours'")
    # The stored text form: fixed width, milliseconds, Z.
    return func.strftime(
        literal_column("'%Y-%m-%dT%H:%M:%fZ'"), time, literal_column(f"'-{int(hours)} hours'")
    )


def _earlier(moment: datetime, by: timedelta) -> datetime:
    """`moment - by`, or the earliest time there is when that is before it (a bound that only
    narrows the months read may be wider than asked, never narrower)."""
    try:
        return moment - by
    except OverflowError:
        return datetime.min.replace(tzinfo=moment.tzinfo)


async def node_stats_for_instances(
    reader: Reader, workspace: str, instances: Sequence[nodes.Parent], window: Window | None
) -> dict[int, list[NodeStats]]:
    """For each (instance id, plan time), by instance id, per node name across its job's runs:
    runs, failures, retries and the duration's p50/p95, in one statement. The runs are those
    planned inside `window`; without one, those planned in the NODE_STATS_DEFAULT_HOURS up to
    the instance's own plan time (exclusive .. inclusive). Listed by name."""
    dialect = reader.dialect
    asked_table = Instance.__table__.alias("asked")
    run_table = Instance.__table__.alias("run")
    node_table = InstanceNode.__table__.alias("node")
    asked, run, node = asked_table.c, run_table.c, node_table.c
    if not instances:
        return {}
    instance_ids = [key for key, _ in instances]
    asked_times = sorted({plan_time for _, plan_time in instances})
    if window is None:
        in_window = and_(
            run.plan_time > _hours_before(dialect, asked.plan_time, NODE_STATS_DEFAULT_HOURS),
            run.plan_time <= asked.plan_time,
            # The same bounds as constants, from the plan times asked: PostgreSQL then reads
            # only these months of runs whichever join it picks (a hash join prunes nothing).
            run.plan_time > _earlier(asked_times[0], timedelta(hours=NODE_STATS_DEFAULT_HOURS)),
            run.plan_time <= asked_times[-1],
        )
    else:
        after, before = window
        bounds = []
        if after is not None:
            bounds.append(run.plan_time > after)
        if before is not None:
            bounds.append(run.plan_time < before)
        in_window = and_(true(), *bounds)
    rows = (
        select(
            asked.id.label("asked_id"),
            node.name,
            node.status,
            node.retry_times,
            milliseconds_between(dialect, node.start_time, node.end_time).label("duration"),
        )
        .select_from(asked_table)
        .join(run_table, and_(run.job_id == asked.job_id, in_window))
        # Both halves of the node's key: PostgreSQL then reads only the runs' months of nodes.
        .join(
            node_table,
            and_(node.instance_id == run.id, node.instance_plan_time == run.plan_time),
        )
        .where(
            in_workspace(asked.workspace_id, workspace),
            asked.id.in_(instance_ids),
            # The asked instances' months only, not one id index per month.
            asked.plan_time.in_(asked_times),
        )
    )
    measured = _fenced(dialect, rows).subquery("measured")
    m = measured.c
    statement = select(
        m.asked_id,
        m.name,
        func.count().label("runs"),
        func.count().filter(m.status == NodeStatus.FAIL.name).label("failures"),
        func.coalesce(func.sum(m.retry_times), 0).label("retries"),
        func.count().filter(m.retry_times > 0).label("retried_runs"),
        func.count(m.duration).label("duration_count"),
        percentiles(dialect, m.duration, SHORT_FRACTIONS).label("duration_percentiles"),
    ).group_by(m.asked_id, m.name)
    found: dict[int, list[NodeStats]] = {instance_id: [] for instance_id in instance_ids}
    for row in await reader.execute(statement):
        mapping = row._mapping
        found[mapping["asked_id"]].append(
            NodeStats(
                name=mapping["name"],
                runs=int(mapping["runs"]),
                failures=int(mapping["failures"]),
                retries=int(mapping["retries"]),
                retried_runs=int(mapping["retried_runs"]),
                duration=_percentiles(
                    mapping["duration_count"], mapping["duration_percentiles"], SHORT_FRACTIONS
                ),
            )
        )
    for stats in found.values():
        stats.sort(key=lambda s: s.name)
    return found


# -- per-request loaders -------------------------------------------------------------------------


class _StatsLoader(ShieldedDataLoader):
    """Keys `(parent, arguments)`, a parent an id or an instance's (id, plan time); one
    statement per distinct arguments (usually one). Shielded: a caller cancelled while it
    waits must not cancel a load other fields share."""

    def __init__(self, reader: Reader, workspace: str, *, cache: bool = True) -> None:
        super().__init__(max_batch_size=MAX_BATCH, cache=cache)
        self.reader = reader
        self.workspace = workspace

    async def fetch(self, parent_ids: list[Any], arguments: Any) -> dict[Any, Any]:
        raise NotImplementedError

    async def batch_load_fn(self, keys: Sequence[tuple[Hashable, Hashable]]) -> list[Any]:
        by_arguments: dict[Hashable, list[Any]] = defaultdict(list)
        for parent_id, arguments in keys:
            by_arguments[arguments].append(parent_id)
        results: dict[tuple[Hashable, Hashable], Any] = {}
        for arguments, parent_ids in by_arguments.items():
            unique = list(dict.fromkeys(parent_ids))
            for parent_id, value in (await self.fetch(unique, arguments)).items():
                results[(parent_id, arguments)] = value
        return [results[key] for key in keys]


class StatusCountsByJobIdLoader(_StatsLoader):
    """(job id, InstanceFilter) -> counts by status."""

    async def fetch(self, parent_ids: list[int], arguments: Any) -> dict[int, Any]:
        return await status_counts_for_jobs(self.reader, self.workspace, parent_ids, arguments)


class NodeStatusCountsByInstanceIdLoader(_StatsLoader):
    """((instance id, plan time), node statuses or None) -> node counts by status."""

    async def fetch(self, parent_ids: list[Any], arguments: Any) -> dict[Any, Any]:
        found = await node_status_counts_for_instances(
            self.reader, self.workspace, parent_ids, arguments
        )
        return {parent: found[parent[0]] for parent in parent_ids}


class GroupStatsByJobIdLoader(_StatsLoader):
    """(job id, (InstanceFilter, with lateness)) -> the job's GroupStats (an empty one without
    instances)."""

    async def fetch(self, parent_ids: list[int], arguments: Any) -> dict[int, Any]:
        spec, lateness = arguments
        groups = await group_stats(
            self.reader,
            self.workspace,
            spec,
            (StatsGroup.JOB,),
            job_ids=parent_ids,
            lateness=lateness,
        )
        found: dict[int, GroupStats] = {g.key[1]: g for g in groups if g.key[1] is not None}
        return {key: found.get(key) or empty_group((None, key, None)) for key in parent_ids}


class BucketStatsByJobIdLoader(_StatsLoader):
    """(job id, (InstanceFilter, TimeBucket)) -> the job's buckets that have instances."""

    async def fetch(self, parent_ids: list[int], arguments: Any) -> dict[int, Any]:
        spec, bucket = arguments
        found = await bucket_stats(
            self.reader, self.workspace, spec, (StatsGroup.JOB,), bucket, job_ids=parent_ids
        )
        return {key: found.get((None, key, None), []) for key in parent_ids}


class NodeStatsByInstanceIdLoader(_StatsLoader):
    """((instance id, plan time), plan time window or None) -> NodeStats per node name of its
    job."""

    async def fetch(self, parent_ids: list[Any], arguments: Any) -> dict[Any, Any]:
        found = await node_stats_for_instances(self.reader, self.workspace, parent_ids, arguments)
        return {parent: found[parent[0]] for parent in parent_ids}


class StatsLoaders:
    """The statistics loaders of one request, each made on first use. Never share them."""

    def __init__(self, reader: Reader, workspace: str, *, cache: bool = True) -> None:
        self._reader = reader
        self._workspace = workspace
        self._cache = cache
        self._made: dict[type[_StatsLoader], _StatsLoader] = {}

    def _get(self, loader: type[_StatsLoader]) -> _StatsLoader:
        made = self._made.get(loader)
        if made is None:
            made = self._made[loader] = loader(self._reader, self._workspace, cache=self._cache)
        return made

    @property
    def status_counts_by_job_id(self) -> _StatsLoader:
        return self._get(StatusCountsByJobIdLoader)

    @property
    def node_status_counts_by_instance_id(self) -> _StatsLoader:
        return self._get(NodeStatusCountsByInstanceIdLoader)

    @property
    def group_stats_by_job_id(self) -> _StatsLoader:
        return self._get(GroupStatsByJobIdLoader)

    @property
    def bucket_stats_by_job_id(self) -> _StatsLoader:
        return self._get(BucketStatsByJobIdLoader)

    @property
    def node_stats_by_instance_id(self) -> _StatsLoader:
        return self._get(NodeStatsByInstanceIdLoader)
