"""Synthetic data for demos and benchmarks (`jobql seed`): realistic, reproducible, fast.

What it writes, appended to existing tables:

- Workspaces `default`, `ws1`, `ws2`, ...: an existing row of that name is reused.
- Jobs, split evenly over the workspaces: batch jobs (`dwd_orders_etl`), and about one in eight
  REALTIME jobs (`rt_clicks_enrich`) each with 1-3 BATCH sub-jobs `<realtime job>_<node>` linked by
  `parent_id` / `parent_node_name`. The sub-jobs count towards `SeedPlan.jobs`. A name that
  already exists in the workspace is never reused: the new job gets the first free numbered name
  (`dwd_orders_etl_2`; `rt_clicks_enrich2` for real-time jobs, so that the numbered name does not
  read as a sub-job of the other). Seeding twice thus appends a second, independent set of jobs.
- Instances spread over the jobs (hourly-like jobs run more often than daily-like ones, every job
  runs at least once when there are enough instances), on a regular schedule over the 90 days
  before a reference time fixed by the seed (`reference_time`), numbered by plan time. Mostly
  SUCCESS and GENERAL; every status and instance type occurs. Instances that would still be busy
  at the reference time are RUNNING. SchedulerX-like jobs carry the `dispatch_*` facet, REALTIME
  jobs the `runtime_*` facet; REJECTED occurs only on dispatched instances. `execute_time` imitates
  the DLF examples (0.3 for an 18 s run): minutes with one decimal.
- 1-30 nodes per instance (mean about 10), taken in order from the job's own list of steps, with
  statuses that follow the instance's (a FAIL instance has one FAIL node, later ones SKIP or
  WAITING) and times inside the instance's window.

The data depends only on the plan and the seed (into an empty database: the same rows on SQLite and
PostgreSQL); existing rows shift only the ids and the numbered names. Random numbers come from
generators seeded per block of `BLOCK` instances, whatever the batch size of the database.
Surrogate ids are assigned here from `max(id) + 1` (nobody else may write to these tables while
seeding). Workspaces placed in other databases (JOBQL_WORKSPACE_DATABASES) get the same data, each
in its own database, numbered from the largest `max(id) + 1` of those databases. The rows are
written by `jobql.storage.bulk` (binary COPY on PostgreSQL, one transaction per batch: an
interrupted seed leaves the batches it finished); the next batch is generated in a thread while
the database takes the current one.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from bisect import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate, islice
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from jobql.storage import bulk, partitions
from jobql.storage.bulk import INSTANCE_COLUMNS
from jobql.storage.enums import (
    InstanceStatus,
    InstanceType,
    JobType,
    NodeStatus,
    StreamApiType,
    StreamState,
    TimeType,
    TriggerType,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

Progress = Callable[[int, int], None]

# Random numbers are drawn per block of this many instances (in plan-time order), so the data does
# not depend on the batch size. Changing it changes every seeded data set.
BLOCK = 1_000
# Instances per transaction.
BATCH_SQLITE = 5_000
BATCH_POSTGRESQL = 10_000
MAX_NODES = 30
SPAN = timedelta(days=90)
_REFERENCE_BASE = datetime(2025, 6, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SeedPlan:
    instances: int = 5_000  # total instances over all workspaces
    jobs: int | None = None  # total jobs incl. sub-jobs; None: instances/50, at least 4 per ws
    workspaces: int = 3  # named default, ws1, ws2, ...
    seed: int = 0  # same plan + seed -> identical data

    def __post_init__(self) -> None:
        if self.instances < 0:
            raise ValueError("instances must be >= 0")
        if self.workspaces < 1:
            raise ValueError("workspaces must be >= 1")
        if self.jobs is not None and self.jobs < 1:
            raise ValueError("jobs must be >= 1")

    @property
    def job_count(self) -> int:
        if self.jobs is not None:
            return self.jobs
        return max(round(self.instances / 50), 4 * self.workspaces)

    @property
    def workspace_names(self) -> list[str]:
        return ["default"] + [f"ws{n}" for n in range(1, self.workspaces)]


@dataclass
class SeedResult:
    workspaces: int  # workspaces written to (created or reused)
    jobs: int  # jobs created, sub-jobs included
    instances: int
    nodes: int
    databases: int = 1  # databases written to (`engine_for`)


def reference_time(seed: int) -> datetime:
    """The instant the seeded history ends: fixed per seed, never the clock."""
    return _REFERENCE_BASE + timedelta(days=seed % 365)


async def seed_database(
    engine: AsyncEngine,
    plan: SeedPlan,
    progress: Progress | None = None,
    *,
    engine_for: Callable[[str], AsyncEngine] | None = None,
) -> SeedResult:
    """Append `plan`'s synthetic data (see the module docstring).

    `progress(done, total)` counts instances: once with 0 when the jobs are in, then after each
    batch commits, the last call with `done == total`.

    `engine_for(workspace)`: the database each workspace goes to (JOBQL_WORKSPACE_DATABASES;
    default `engine` for all). The data is the same; each database gets its workspaces' rows,
    numbered from the largest next id of those databases, so that no id is taken twice.
    """
    names = plan.workspace_names
    placed = [engine if engine_for is None else engine_for(name) for name in names]
    databases = list(dict.fromkeys(placed))
    # The database (its index in `databases`) each workspace's rows go to.
    parts = [databases.index(database) for database in placed]
    batch = BATCH_POSTGRESQL if engine.dialect.name == "postgresql" else BATCH_SQLITE
    for database in databases:
        await _ensure_months(database, plan)
    starts = [
        await bulk.begin_load(
            database, [name for name, part in zip(names, parts, strict=True) if part == n]
        )
        for n, database in enumerate(databases)
    ]
    workspace_ids = [
        starts[part].workspace_ids[name] for name, part in zip(names, parts, strict=True)
    ]
    taken = [starts[part].taken[key] for key, part in zip(workspace_ids, parts, strict=True)]
    synth = _Synth(
        plan, workspace_ids, taken, max(start.next_job_id for start in starts), parts=parts
    )
    for n, database in enumerate(databases):
        if job_rows := synth.job_rows(n):
            await bulk.insert_jobs(database, job_rows)
    if progress is not None:
        progress(0, plan.instances)

    blocks = synth.blocks(
        max(start.next_instance_id for start in starts),
        max(start.next_node_id for start in starts),
    )

    def next_batch() -> list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """(instance rows, node rows) per database."""
        rows: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = [
            ([], []) for _ in databases
        ]
        for block in islice(blocks, batch // BLOCK):
            for (instance_rows, node_rows), (block_instances, block_nodes) in zip(
                rows, block, strict=True
            ):
                instance_rows += block_instances
                node_rows += block_nodes
        return rows

    # The next batch is generated in a thread while the databases take the current one (the
    # generator is only ever advanced by one thread at a time).
    done = nodes = 0
    rows = await asyncio.to_thread(next_batch)
    while any(instance_rows for instance_rows, _ in rows):
        writes = [
            bulk.insert_batch(database, instance_rows, node_rows)
            for database, (instance_rows, node_rows) in zip(databases, rows, strict=True)
            if instance_rows
        ]
        _, following = await asyncio.gather(asyncio.gather(*writes), asyncio.to_thread(next_batch))
        done += sum(len(instance_rows) for instance_rows, _ in rows)
        nodes += sum(len(node_rows) for _, node_rows in rows)
        if progress is not None:
            progress(done, plan.instances)
        rows = following
    for database in databases:
        await bulk.finish_load(database)
    return SeedResult(
        workspaces=len(names),
        jobs=len(synth.jobs),
        instances=done,
        nodes=nodes,
        databases=len(databases),
    )


async def _ensure_months(engine: AsyncEngine, plan: SeedPlan) -> None:
    """On partitioned PostgreSQL, the months the plan times fall in (`SPAN` up to the reference
    time), so that the rows land in their months' partitions, not in DEFAULT."""
    end = reference_time(plan.seed)
    async with engine.begin() as connection:
        if await partitions.is_partitioned(connection):
            first = partitions.month_of(end - SPAN - timedelta(days=1))
            await partitions.ensure_months(connection, first, partitions.month_of(end))


# --- vocabulary -----------------------------------------------------------------------------

_SUBJECTS = (
    "orders", "users", "payments", "inventory", "clicks", "sessions", "shipments", "refunds",
    "coupons", "products", "stores", "suppliers", "reviews", "carts", "invoices", "ledger",
    "campaigns", "devices", "events", "sms", "traffic", "members", "accounts", "prices", "stock",
    "returns", "tickets", "metrics", "alerts", "vouchers",
)  # fmt: skip
_LAYERS = ("ods", "dwd", "dws", "ads", "dim")
_BATCH_SUFFIXES = ("di", "df", "sync", "etl", "agg", "report", "snapshot", "merge", "load", "check")
_REALTIME_VERBS = ("stream", "enrich", "cdc", "monitor", "alert", "ingest")
_TRIGGER_VERBS = ("on", "consume", "route", "fanout", "dispatch", "sink")
_NODE_VERBS = {
    "data": ("load", "sync", "merge", "agg", "clean", "extract", "join", "dedup", "export"),
    "script": ("prepare", "check", "archive", "cleanup", "split", "compute"),
    "control": ("wait", "gate", "notify", "verify", "start", "end"),
}
# (type, kind, weight): kind decides row counts and speed.
_NODE_TYPES = (
    ("Dummy", "control", 10),
    ("DWS SQL", "data", 12),
    ("DLI SQL", "data", 12),
    ("Shell", "script", 8),
    ("CDM Job", "data", 12),
    ("Python", "script", 6),
    ("MRS Spark", "data", 6),
    ("MRS Hive SQL", "data", 6),
    ("DLI Spark", "data", 4),
    ("RDS SQL", "data", 4),
    ("Rest Client", "control", 3),
    ("SMN", "control", 2),
    ("Data Quality Monitor", "control", 3),
    ("OBS Manager", "control", 2),
)
_NODE_TYPE_CUM = list(accumulate(weight for _, _, weight in _NODE_TYPES))

_EXECUTORS = ("A", "B", "scheduler", "ops-bot", "etl-admin")
_ENGINE_VERSIONS = ("blink-3.4.4", "blink-3.7.10", "vvr-6.0.7-flink-1.15", "vvr-8.0.5-flink-1.17")
_PACKAGES = (
    "hbase_demo-1.0-snapshot-shaded.jar",
    "udf-common-2.3.1.jar",
    "kafka-connector-1.4.jar",
    "geoip-udf-0.9.jar",
)
_STREAM_ERRORS = (
    "org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy",
    "java.util.concurrent.TimeoutException: Heartbeat of TaskManager timed out",
    "org.apache.kafka.common.errors.TimeoutException: Topic not present in metadata",
    "java.lang.OutOfMemoryError: Java heap space",
    "Checkpoint expired before completing",
)
_DISPATCH_ERRORS = (
    "java.lang.RuntimeException: connection refused",
    "process exited with code 1",
    "timeout after 3600s",
    "java.lang.NullPointerException",
)

# Instance statuses of the past (not near the reference time), cumulative weights.
_STATUS_WEIGHTS = (
    (InstanceStatus.SUCCESS, 855),
    (InstanceStatus.FAIL, 60),
    (InstanceStatus.SKIP_BY_DEPEND, 20),
    (InstanceStatus.MANUAL_STOP, 12),
    (InstanceStatus.WAITING, 10),
    (InstanceStatus.RUNNING, 10),
    (InstanceStatus.REJECTED, 9),  # dispatched instances only; FAIL elsewhere
    (InstanceStatus.RUNNING_EXCEPTION, 8),
    (InstanceStatus.FREEZE, 8),
    (InstanceStatus.PAUSE, 8),
)
_STATUSES = [status.name for status, _ in _STATUS_WEIGHTS]
_STATUS_CUM = list(accumulate(weight for _, weight in _STATUS_WEIGHTS))
_TYPE_WEIGHTS = (
    (InstanceType.GENERAL, 90),
    (InstanceType.MANUAL, 4),
    (InstanceType.PATCH_DATA, 4),
    (InstanceType.ONE_OFF, 2),
)
_TYPES = [kind.name for kind, _ in _TYPE_WEIGHTS]
_TYPE_CUM = list(accumulate(weight for _, weight in _TYPE_WEIGHTS))
_TRIGGER_BY_TYPE = {
    InstanceType.GENERAL.name: TriggerType.SCHEDULE.name,
    InstanceType.MANUAL.name: TriggerType.MANUAL_RERUN.name,
    InstanceType.PATCH_DATA.name: TriggerType.DATA_REFRESH.name,
    InstanceType.ONE_OFF.name: TriggerType.API.name,
}
_STREAM_STATE = {
    InstanceStatus.WAITING.name: StreamState.WAITING.name,
    InstanceStatus.RUNNING.name: StreamState.RUNNING.name,
    InstanceStatus.SUCCESS.name: StreamState.SUCCESS.name,
    InstanceStatus.FAIL.name: StreamState.FAILED.name,
    InstanceStatus.RUNNING_EXCEPTION.name: StreamState.RUNNING.name,
    InstanceStatus.SKIP_BY_DEPEND.name: StreamState.TERMINATED.name,
    InstanceStatus.FREEZE.name: StreamState.WAITING.name,
    InstanceStatus.PAUSE.name: StreamState.PAUSED.name,
    InstanceStatus.MANUAL_STOP.name: StreamState.TERMINATED.name,
    InstanceStatus.REJECTED.name: StreamState.FAILED.name,
}
_NOT_STARTED = {
    InstanceStatus.WAITING.name,
    InstanceStatus.FREEZE.name,
    InstanceStatus.REJECTED.name,
}
_NOT_ENDED = {
    InstanceStatus.RUNNING.name,
    InstanceStatus.RUNNING_EXCEPTION.name,
    InstanceStatus.PAUSE.name,
}


def _node_count_weights() -> list[float]:
    """P(k nodes), k = 1..MAX_NODES: a gamma-like hump with a mean of about 10."""
    weights = [k**1.3 * 0.8**k for k in range(1, MAX_NODES + 1)]
    return list(accumulate(weights))


_NODE_COUNT_CUM = _node_count_weights()

# Statuses and types by name, bound once for the generation loop.
_WAITING = InstanceStatus.WAITING.name
_RUNNING = InstanceStatus.RUNNING.name
_SUCCESS = InstanceStatus.SUCCESS.name
_FAIL = InstanceStatus.FAIL.name
_RUNNING_EXCEPTION = InstanceStatus.RUNNING_EXCEPTION.name
_SKIP_BY_DEPEND = InstanceStatus.SKIP_BY_DEPEND.name
_PAUSE = InstanceStatus.PAUSE.name
_MANUAL_STOP = InstanceStatus.MANUAL_STOP.name
_REJECTED = InstanceStatus.REJECTED.name
_GENERAL = InstanceType.GENERAL.name
_SUBJOB = InstanceType.SUBJOB.name
_N_WAITING = NodeStatus.WAITING.name
_N_RUNNING = NodeStatus.RUNNING.name
_N_SUCCESS = NodeStatus.SUCCESS.name
_N_FAIL = NodeStatus.FAIL.name
_N_SKIP = NodeStatus.SKIP.name
_N_PAUSE = NodeStatus.PAUSE.name
_N_MANUAL_STOP = NodeStatus.MANUAL_STOP.name


# --- jobs -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Step:
    """One step of a job, run as a node by its instances: the same name every run."""

    name: str
    type: str
    kind: str
    share: float  # relative share of the run's duration
    rows: int | None  # typical input rows: data steps; 0 for control steps, None for scripts
    log_suffix: str  # "/<name>/<name>.job"


@dataclass(slots=True)
class _Dispatch:
    time_type: str
    executor: str
    workers: tuple[str, ...]


@dataclass(slots=True)
class _Runtime:
    api_type: str
    engine_version: str
    cluster_id: str
    queue_name: str
    code: str
    properties: str
    plan_json: str
    packages: str
    auto_scale_params: str
    operator: str


@dataclass(slots=True)
class _JobSpec:
    id: int
    workspace_id: int
    slot: int  # the workspace's position in the plan
    name: str
    type: str
    vendor_job_id: int | None
    parent_id: int | None
    parent_node_name: str | None
    weight: float
    steps: list[_Step]
    median_ms: float
    version_count: int  # versions deployed over the span; 0: the source reports no version
    log_root: str | None
    dispatch: _Dispatch | None = None
    runtime: _Runtime | None = None
    subjob: bool = False
    part: int = 0  # the database its rows go to (`seed_database`'s `engine_for`)
    count: int = 0
    first_ms: int = 0
    interval_ms: int = 0
    vendor_base: int = 0
    vendor_stride: int = 1
    # Version n + 1 runs from version_starts[n]; versions[n] = (version, submit time in ms).
    version_starts: list[int] = field(default_factory=list)
    versions: list[tuple[int, int]] = field(default_factory=list)


class _Synth:
    """The job plan (built up front, small) and the instance stream (generated per block)."""

    def __init__(
        self,
        plan: SeedPlan,
        workspace_ids: list[int],
        taken: list[set[str]],
        next_job_id: int,
        *,
        parts: list[int] | None = None,
    ) -> None:
        """Per workspace of the plan, in its order (its slot): its id, the job names it has,
        and (`parts`) the database its rows go to (ids of two databases may be equal)."""
        self.plan = plan
        self.ref_ms = _ms(reference_time(plan.seed))
        self.rng = random.Random(f"jobql-seed:{plan.seed}:jobs")
        self.jobs: list[_JobSpec] = []
        self.next_job_id = next_job_id
        self.workspace_ids = workspace_ids
        self.parts = parts or [0] * len(workspace_ids)
        self.part_count = max(self.parts, default=0) + 1
        self.workers = [
            tuple(
                f"10.0.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}:16" for _ in range(8)
            )
            for _ in workspace_ids
        ]
        self.projects = [f"{self.rng.getrandbits(128):032x}" for _ in workspace_ids]
        total = plan.job_count
        for slot in range(len(workspace_ids)):
            quota = total // len(workspace_ids) + (slot < total % len(workspace_ids))
            self._plan_workspace(slot, quota, taken[slot])
        self._allocate(plan.instances)

    # jobs

    def _plan_workspace(self, slot: int, quota: int, taken: set[str]) -> None:
        rng = self.rng
        made = 0
        first_realtime = first_dispatch = True
        while made < quota:
            left = quota - made
            realtime = left >= 2 and (first_realtime or rng.random() < 1 / 6)
            if realtime:
                first_realtime = False
                subjobs = min(rng.randint(1, 3), left - 1)
                parent = self._realtime_job(slot, subjobs, taken)
                for step in parent.steps[:subjobs]:
                    self._subjob(parent, step.name, taken)
                made += 1 + subjobs
            else:
                dispatched = first_dispatch or rng.random() < 0.25
                first_dispatch = False
                self._batch_job(slot, dispatched, taken)
                made += 1

    def _add(self, spec: _JobSpec, taken: set[str]) -> _JobSpec:
        taken.add(spec.name)
        self.jobs.append(spec)
        return spec

    def _batch_job(self, slot: int, dispatched: bool, taken: set[str]) -> None:
        rng = self.rng
        base = f"{rng.choice(_LAYERS)}_{rng.choice(_SUBJECTS)}_{rng.choice(_BATCH_SUFFIXES)}"
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        # Hourly-like jobs run 24 times as often as daily-like ones.
        weight = rng.choices((24.0, 6.0, 1.0, 1 / 7), (10, 10, 70, 10))[0]
        spec = self._job(slot, name, JobType.BATCH.name, weight, self._steps(0))
        if dispatched:
            spec.vendor_job_id = rng.randint(10_000, 999_999)
            time_type = rng.choices(list(TimeType), (70, 15, 10, 5))[0]
            spec.dispatch = _Dispatch(time_type.name, rng.choice(_EXECUTORS), self.workers[slot])
        elif rng.random() < 0.5:
            spec.vendor_job_id = rng.randint(100_000, 999_999)
        self._add(spec, taken)

    def _realtime_job(self, slot: int, subjobs: int, taken: set[str]) -> _JobSpec:
        rng = self.rng
        steps = self._steps(subjobs)
        base = f"rt_{rng.choice(_SUBJECTS)}_{rng.choice(_REALTIME_VERBS)}"
        # Numbered without "_" so the name never reads as `<other realtime job>_<node>`.
        name, n = base, 2
        while name in taken or any(f"{name}_{s.name}" in taken for s in steps[:subjobs]):
            name, n = f"{base}{n}", n + 1
        spec = self._job(slot, name, JobType.REALTIME.name, 0.3, steps)
        spec.median_ms *= 20  # streams run for hours
        if rng.random() < 0.5:
            spec.vendor_job_id = rng.randint(100_000, 999_999)
        api_type = rng.choice((StreamApiType.SQL, StreamApiType.SQL, StreamApiType.DATASTREAM))
        subject = name.split("_")[1]
        if api_type is StreamApiType.SQL:
            code = (
                f"INSERT INTO sink_{subject}\nSELECT id, event_time, payload\n"
                f"FROM kafka_{subject}\nWHERE payload IS NOT NULL;"
            )
        else:
            code = (
                f"blink.main.class=com.example.{subject.capitalize()}Job\n"
                f"blink.main.jar={subject}-job-1.0.jar\nstate.backend.type=niagara"
            )
        max_cu = rng.choice((None, 8, 16, 32))
        packages = rng.sample(_PACKAGES, rng.randint(0, 2))
        spec.runtime = _Runtime(
            api_type=api_type.name,
            engine_version=rng.choice(_ENGINE_VERSIONS),
            cluster_id=f"rcmp{rng.getrandbits(64):016x}",
            queue_name=f"root.{self.projects[slot][:8]}",
            code=code,
            properties=(
                "blink.checkpoint.mode=EXACTLY_ONCE\n"
                f"blink.checkpoint.interval.ms={rng.choice((60_000, 180_000))}\n"
                "blink.job.timeZone=Asia/Shanghai"
            ),
            plan_json=rng.choice(
                ("", f'{{"nodes":[{{"id":1,"type":"Source: kafka_{subject}"}},{{"id":2}}]}}')
            ),
            packages=",".join(packages),
            auto_scale_params=(
                '{"isOnOff":false,"strategyConfigure":null,"maxCU":null}'
                if max_cu is None
                else f'{{"isOnOff":true,"strategyConfigure":"default","maxCU":{max_cu}}}'
            ),
            operator=str(rng.randint(10**17, 10**18 - 1)),
        )
        return self._add(spec, taken)

    def _subjob(self, parent: _JobSpec, node_name: str, taken: set[str]) -> None:
        spec = self._job(
            parent.slot,
            f"{parent.name}_{node_name}",
            JobType.BATCH.name,
            self.rng.choice((1.0, 1.0, 1 / 7)),
            self._steps(0),
        )
        spec.parent_id = parent.id
        spec.parent_node_name = node_name
        spec.subjob = True
        self._add(spec, taken)

    def _job(self, slot: int, name: str, type_: str, weight: float, steps: list[_Step]) -> _JobSpec:
        rng = self.rng
        job_id = self.next_job_id
        self.next_job_id += 1
        log_root = None
        if rng.random() < 0.4:
            log_root = f"obs://dlf-log-{self.projects[slot]}/{name}"
        spec = _JobSpec(
            id=job_id,
            workspace_id=self.workspace_ids[slot],
            slot=slot,
            name=name,
            type=type_,
            vendor_job_id=None,
            parent_id=None,
            parent_node_name=None,
            weight=weight,
            steps=steps,
            median_ms=min(max(rng.lognormvariate(12.1, 1.2), 2_000.0), 4 * 3600_000.0),
            version_count=rng.choices((0, 1, 2, 3), (25, 45, 22, 8))[0],
            log_root=log_root,
            part=self.parts[slot],
        )
        return spec

    def _steps(self, triggers: int) -> list[_Step]:
        """The job's steps; a real-time job's first `triggers` steps start its sub-jobs."""
        rng = self.rng
        steps: list[_Step] = []
        names: set[str] = set()
        while len(steps) < MAX_NODES:
            if len(steps) < triggers:
                type_, kind = "Sub Job", "control"
                name = f"{rng.choice(_TRIGGER_VERBS)}_{rng.choice(_SUBJECTS)}"
            else:
                type_, kind, _ = _NODE_TYPES[
                    bisect(_NODE_TYPE_CUM, rng.random() * _NODE_TYPE_CUM[-1])
                ]
                if rng.random() < 0.5:
                    name = f"{type_.replace(' ', '_')}_{rng.randint(1000, 9999)}"
                else:
                    name = f"{rng.choice(_NODE_VERBS[kind])}_{rng.choice(_SUBJECTS)}"
            if name in names:
                continue
            names.add(name)
            rows = (
                max(1, int(rng.lognormvariate(11, 2)))
                if kind == "data"
                else (0 if kind == "control" else None)
            )
            steps.append(
                _Step(name, type_, kind, rng.uniform(0.2, 3.0), rows, f"/{name}/{name}.job")
            )
        return steps

    def _allocate(self, instances: int) -> None:
        """Instances per job (largest remainder by weight), then each job's schedule."""
        jobs = self.jobs
        if not jobs:
            return
        base = 1 if instances >= len(jobs) else 0
        rest = instances - base * len(jobs)
        total_weight = sum(job.weight for job in jobs)
        quotas = [rest * job.weight / total_weight for job in jobs]
        counts = [base + int(quota) for quota in quotas]
        short = instances - sum(counts)
        by_fraction = sorted(range(len(jobs)), key=lambda n: (int(quotas[n]) - quotas[n], n))
        for n in by_fraction[:short]:
            counts[n] += 1
        span = _ms_delta(SPAN)
        rng = self.rng
        for job, count in zip(jobs, counts, strict=True):
            job.count = count
            if not count:
                continue
            interval = max(1_000, span // count)
            if interval >= 60_000:
                interval -= interval % 60_000
            offset = rng.randrange(0, interval)
            if interval >= 60_000:
                offset -= offset % 60_000
            start = self.ref_ms - count * interval
            job.first_ms = start - start % 60_000 + offset
            job.interval_ms = interval
            job.vendor_base = rng.randint(10_000, 50_000_000)
            job.vendor_stride = rng.randint(1, 5)
            if job.version_count:
                # Each version is submitted a while before its first run (the first one long
                # before: DLF reports the job's submission time).
                last = job.first_ms + (count - 1) * interval
                later = sorted(
                    rng.randint(job.first_ms, last) for _ in range(job.version_count - 1)
                )
                starts = [job.first_ms, *later]
                job.version_starts = starts
                job.versions = [
                    (n + 1, at - rng.randint(600_000, 259_200_000 if n else 30 * 86_400_000))
                    for n, at in enumerate(starts)
                ]

    def job_rows(self, part: int = 0) -> list[tuple[Any, ...]]:
        """The job rows of one database (`parts`)."""
        return [
            (j.id, j.workspace_id, j.name, j.vendor_job_id, j.type, j.parent_id, j.parent_node_name)
            for j in self.jobs
            if j.part == part
        ]

    # instances

    def _schedule(self) -> Iterator[tuple[int, int, int]]:
        """(plan ms, job index, run number) of every instance, in plan-time order."""
        heap = [(job.first_ms, n, 0) for n, job in enumerate(self.jobs) if job.count]
        heapq.heapify(heap)
        jobs = self.jobs
        while heap:
            at, n, run = heap[0]
            yield heap[0]
            job = jobs[n]
            if run + 1 < job.count:
                heapq.heapreplace(heap, (at + job.interval_ms, n, run + 1))
            else:
                heapq.heappop(heap)

    def blocks(
        self, next_instance_id: int, next_node_id: int
    ) -> Iterator[list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]]:
        """Instance and node rows, BLOCK instances at a time, per database (`parts`)."""
        schedule = self._schedule()
        number = 0
        while True:
            runs = list(islice(schedule, BLOCK))
            if not runs:
                return
            rng = random.Random(f"jobql-seed:{self.plan.seed}:block:{number}")
            number += 1
            rows: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = [
                ([], []) for _ in range(self.part_count)
            ]
            for plan_ms, n, run in runs:
                job = self.jobs[n]
                instances, nodes = rows[job.part]
                before = len(nodes)
                instances.append(
                    self._instance(rng, job, run, plan_ms, next_instance_id, next_node_id, nodes)
                )
                next_instance_id += 1
                next_node_id += len(nodes) - before
            yield rows

    def _instance(
        self,
        rng: random.Random,
        job: _JobSpec,
        run: int,
        plan_ms: int,
        instance_id: int,
        node_id: int,
        nodes: list[tuple[Any, ...]],
    ) -> tuple[Any, ...]:
        ref_ms = self.ref_ms
        random_ = rng.random
        row = dict(_INSTANCE_NULLS)
        # Type and plan time.
        if job.subjob:
            instance_type = _SUBJOB
        else:
            instance_type = _TYPES[bisect(_TYPE_CUM, random_() * _TYPE_CUM[-1])]
            if instance_type != _GENERAL:
                # Started by hand or by API: not on the minute.
                plan_ms = min(plan_ms + int(random_() * 600_000), ref_ms - 1)
        # Status: instances near the reference time are often still waiting or running.
        status = _STATUSES[bisect(_STATUS_CUM, random_() * _STATUS_CUM[-1])]
        if ref_ms - plan_ms < 7_200_000 and random_() < 0.4:
            status = _WAITING
        if status == _REJECTED and job.dispatch is None:
            status = _FAIL
        # Times.
        if job.versions:
            version, submit_ms = job.versions[max(bisect(job.version_starts, plan_ms) - 1, 0)]
            row["version"] = version
        else:
            submit_ms = plan_ms - 500 - int(random_() * 300_000)
        r = random_()
        if r < 0.3:
            start_ms = plan_ms
        elif r < 0.97:
            start_ms = plan_ms + int(rng.expovariate(1 / 40_000))
        else:  # waited for an upstream job
            start_ms = plan_ms + int(random_() * 7_200_000)
        full_ms = int(job.median_ms * rng.lognormvariate(0, 0.4)) + 1_000
        if status not in _NOT_STARTED and start_ms >= ref_ms:
            status = _WAITING
        end_ms: int | None = None
        if status in _NOT_STARTED:
            start_ms = -1
        elif status == _SKIP_BY_DEPEND:
            end_ms = start_ms
        elif status not in _NOT_ENDED:
            if status != _SUCCESS:
                full_ms = int(full_ms * (0.05 + 0.95 * random_())) + 1_000
            end_ms = start_ms + full_ms
            if end_ms >= ref_ms:
                status, end_ms = _RUNNING, None
        plan_at = _at(plan_ms)
        submit_at = _at(submit_ms)
        success = status == _SUCCESS
        row["id"] = instance_id
        row["workspace_id"] = job.workspace_id
        row["job_id"] = job.id
        row["vendor_instance_id"] = job.vendor_base + run * job.vendor_stride
        row["job_instance_name"] = job.name
        row["status"] = status
        row["instance_type"] = instance_type
        row["plan_time"] = plan_at
        row["submit_time"] = submit_at
        if start_ms >= 0:
            row["start_time"] = _at(start_ms)
        if end_ms is not None:
            row["end_time"] = _at(end_ms)
            row["execute_time"] = round((end_ms - start_ms) / 60_000, 1)
        row["force_success"] = success and random_() < 0.03
        row["ignore_success"] = success and random_() < 0.02
        if job.dispatch is not None:
            self._dispatch(rng, job.dispatch, row, status, instance_type, plan_ms, plan_at)
        if job.runtime is not None:
            self._runtime(rng, job.runtime, row, status, plan_ms, start_ms, end_ms)
        self._nodes(
            rng,
            job,
            status,
            plan_at,
            submit_at,
            start_ms,
            end_ms,
            full_ms,
            instance_id,
            node_id,
            nodes,
        )
        return _instance_tuple(row)

    def _nodes(
        self,
        rng: random.Random,
        job: _JobSpec,
        status: str,
        plan_at: datetime,
        submit_at: datetime,
        start_ms: int,
        end_ms: int | None,
        full_ms: int,
        instance_id: int,
        node_id: int,
        nodes: list[tuple[Any, ...]],
    ) -> None:
        """The first k of the job's steps, in order, with statuses that follow the instance's."""
        random_ = rng.random
        k = bisect(_NODE_COUNT_CUM, random_() * _NODE_COUNT_CUM[-1]) + 1
        ran = k  # nodes [0, ran) started, except a SKIP among them
        open_ = False  # the last of them is still busy (no end time)
        after = _N_WAITING  # the status of nodes [ran, k)
        skipped = -1
        current = _N_SUCCESS  # the status of node ran - 1
        if status == _SUCCESS:
            if k > 2 and random_() < 0.05:
                skipped = 1 + int(random_() * (k - 1))
        elif status == _FAIL:
            ran = 1 + int(random_() * k)
            current = _N_FAIL
            if random_() < 0.6:
                after = _N_SKIP
        elif status in _NOT_ENDED:
            ran = 1 + int(random_() * k)
            current = _N_PAUSE if status == _PAUSE else _N_RUNNING
            open_ = True
        elif status == _MANUAL_STOP:
            ran = 1 + int(random_() * k)
            current = _N_MANUAL_STOP
        else:
            ran = 0
            after = _N_SKIP if status == _SKIP_BY_DEPEND else _N_WAITING
        workspace_id = job.workspace_id
        steps = job.steps
        append = nodes.append
        if ran:
            # Spread [start, end) (now, for a busy one) over the nodes that started.
            window_end = end_ms if end_ms is not None else min(self.ref_ms, start_ms + full_ms)
            shares = [step.share * (0.8 + 0.4 * random_()) for step in steps[:ran]]
            scale = (window_end - start_ms) / sum(shares)
            log_dir = None
            if job.log_root is not None:
                log_dir = f"{job.log_root}/{plan_at:%Y-%m-%d %H_%M_%S}.000"
            retry_busy = status == _RUNNING_EXCEPTION
            cursor = start_ms
            last = ran - 1
            for position in range(ran):
                step = steps[position]
                took = int(shares[position] * scale)
                if position == skipped:  # a branch not taken
                    cursor += took
                    append(
                        (node_id + position, workspace_id, instance_id, position, step.name,
                         step.type, _N_SKIP, plan_at, None, None, submit_at, None, None, None,
                         None)
                    )  # fmt: skip
                    continue
                begin = cursor + (took // 10 if took < 20_000 else 2_000)
                cursor += took
                node_status = current if position == last else _N_SUCCESS
                busy = open_ and position == last
                retry = 0
                if node_status == _N_FAIL:
                    retry = int(random_() * 4)
                elif random_() < 0.02 or (busy and retry_busy):
                    retry = 1 + int(random_() * 2)
                rows = step.rows
                speed = None
                if rows:
                    rows = int(rows * (0.75 + 0.5 * random_()))
                    if node_status != _N_SUCCESS:
                        rows = int(rows * random_())
                    if not busy:
                        speed = round(rows * 1000 / max(1_000, cursor - begin), 2)
                append(
                    (node_id + position, workspace_id, instance_id, position, step.name,
                     step.type, node_status, plan_at, _at(begin),
                     None if busy else _at(cursor), submit_at, retry, rows, speed,
                     None if log_dir is None else log_dir + step.log_suffix)
                )  # fmt: skip
        for position in range(ran, k):
            step = steps[position]
            append(
                (node_id + position, workspace_id, instance_id, position, step.name, step.type,
                 after, plan_at, None, None, submit_at, None, None, None, None)
            )  # fmt: skip

    def _dispatch(
        self,
        rng: random.Random,
        dispatch: _Dispatch,
        row: dict[str, Any],
        status: str,
        instance_type: str,
        plan_ms: int,
        plan_at: datetime,
    ) -> None:
        trigger = _TRIGGER_BY_TYPE[instance_type]
        if trigger == TriggerType.SCHEDULE.name and rng.random() < 0.04:
            trigger = TriggerType.SYSTEM_RETRY.name
        row["dispatch_trigger_type"] = trigger
        row["dispatch_time_type"] = dispatch.time_type
        row["dispatch_executor"] = dispatch.executor
        if status not in _NOT_STARTED:
            row["dispatch_worker_address"] = rng.choice(dispatch.workers)
        if status == _SUCCESS:
            row["dispatch_progress"], row["dispatch_result"] = "complete", "success"
        elif status == _FAIL:
            row["dispatch_progress"] = "failed"
            row["dispatch_result"] = rng.choice(_DISPATCH_ERRORS)
        elif status == _REJECTED:
            row["dispatch_progress"] = "rejected"
            row["dispatch_result"] = "rejected: no available worker"
        elif status in _NOT_ENDED:
            row["dispatch_progress"] = f"{rng.randint(1, 99)}%"
        else:
            row["dispatch_progress"] = status.lower()
        data_at = plan_at
        if instance_type == InstanceType.PATCH_DATA.name:
            data_at = _at(plan_ms - rng.randint(1, 30) * 86_400_000)
        row["dispatch_data_time"] = data_at
        row["dispatch_schedule_time"] = plan_at

    def _runtime(
        self,
        rng: random.Random,
        runtime: _Runtime,
        row: dict[str, Any],
        status: str,
        plan_ms: int,
        start_ms: int,
        end_ms: int | None,
    ) -> None:
        actual = _STREAM_STATE[status]
        row["runtime_actual_state"] = actual
        row["runtime_expect_state"] = (
            StreamState.RUNNING.name if actual in ("RUNNING", "FAILED", "WAITING") else actual
        )
        row["runtime_api_type"] = runtime.api_type
        row["runtime_engine_version"] = runtime.engine_version
        row["runtime_cluster_id"] = runtime.cluster_id
        row["runtime_queue_name"] = runtime.queue_name
        row["runtime_code"] = runtime.code
        row["runtime_properties"] = runtime.properties
        row["runtime_plan_json"] = runtime.plan_json
        row["runtime_packages"] = runtime.packages
        row["runtime_auto_scale_params"] = runtime.auto_scale_params
        row["runtime_starter"] = runtime.operator
        started = start_ms >= 0
        if started:
            row["runtime_engine_job_handler"] = (
                f"application_{start_ms - 86_400_000}_{rng.randint(1, 9999):04d}"
                f"|{rng.getrandbits(128):032x}"
            )
            row["runtime_last_operator"] = runtime.operator
            row["runtime_last_operate_time"] = _at(start_ms - rng.randint(1_000, 60_000))
        running = actual == StreamState.RUNNING.name
        row["runtime_input_delay"] = int(rng.expovariate(1 / 3_000)) if running else -99999999
        if actual == StreamState.FAILED.name or status == _RUNNING_EXCEPTION:
            row["runtime_last_error_message"] = rng.choice(_STREAM_ERRORS)
            error_ms = end_ms if end_ms is not None else max(start_ms, plan_ms)
            row["runtime_last_error_time"] = _at(error_ms)


_INSTANCE_NULLS: dict[str, Any] = dict.fromkeys(INSTANCE_COLUMNS)
_instance_tuple: Callable[[dict[str, Any]], tuple[Any, ...]] = itemgetter(*INSTANCE_COLUMNS)


def _ms(value: datetime) -> int:
    return _ms_delta(value - _EPOCH)


def _ms_delta(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000 + value.microseconds // 1_000


def _at(ms: int) -> datetime:
    # Exact: a float holds epoch milliseconds / 1000 to well under a microsecond.
    return datetime.fromtimestamp(ms / 1000, UTC)
