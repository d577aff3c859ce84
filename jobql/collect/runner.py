"""The collector: every configured source in passes, side by side, until it is stopped.

Each source runs in its own task: a pass walks its scope (`walks.py`), writes a line (windows,
requests, instances created/updated/unchanged, lag) and the source's outcome (last success,
last error, lag: `jobql collect --status`), then waits `poll_interval` from the pass's start. A
source that fails is reported and tried again the next pass; the others go on. SIGTERM or SIGINT
stops every source after the request in flight: what it read is stored with its checkpoint,
and the collector exits 0. `--once` runs one pass per source and exits 1 if any failed. Its
sources' lag, last success and last error are the process's metrics too (`SourceMetrics`, for
`--metrics-address`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector as PrometheusCollector
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql import metrics
from jobql.collect.caller import Caller
from jobql.collect.checkpoints import SOURCE_SCOPE, SourceCheckpoints
from jobql.collect.config import SourceConfig
from jobql.collect.faults import Stopped, Unavailable
from jobql.collect.walks import DlfWalk, FlinkWalk, PassStats, SchedulerxWalk, Store, Walk
from jobql.resolvers.checkpoints import load_checkpoints, save_checkpoints
from jobql.storage.engine import create_engine
from jobql.storage.migrate import is_up_to_date
from jobql.storage.records import CheckpointRecord

logger = logging.getLogger("jobql.collect")
Clock = Callable[[], datetime]
# Scope errors quoted in a source's last error; the rest are counted.
QUOTED_ERRORS = 3


class CollectError(Exception):
    """The collector cannot start (the database, or checkpoints of another kind of source)."""


@dataclass
class PassReport:
    source: str
    number: int
    ok: bool
    stopped: bool
    error: str | None
    stats: PassStats
    requests: int
    retries: int
    throttled: int
    malformed: int
    seconds: float
    lag: float | None

    def line(self) -> str:
        counts = self.stats.counts
        outcome = "stopped" if self.stopped else "ok" if self.ok else "failed"
        parts = [
            f"{self.source}: pass {self.number} {outcome} in {self.seconds:.1f} s",
            f"{self.stats.windows} windows, {self.requests} requests ({self.retries} retried, "
            f"{self.throttled} throttled, {self.malformed} malformed)",
            f"{self.stats.read} instances read: {counts['created']} created, "
            f"{counts['updated']} updated, {counts['unchanged']} unchanged, "
            f"{counts['stale']} stale, {counts['rejected']} rejected",
        ]
        if self.stats.gaps or self.stats.left_open:
            parts.append(
                f"{self.stats.gaps} possible gaps, {self.stats.left_open} left the latest "
                "before they ended"
            )
        parts.append("lag " + ("unknown" if self.lag is None else f"{self.lag:.1f} s"))
        line = "; ".join(parts)
        return f"{line}; error: {self.error}" if self.error else line


def _now() -> datetime:
    return datetime.now(UTC)


class Collector:
    def __init__(
        self,
        sources: Sequence[SourceConfig],
        engine: AsyncEngine,
        *,
        stop: asyncio.Event | None = None,
        clock: Clock = _now,
        walks: dict[str, tuple[Walk, Caller]] | None = None,
        engine_for: Callable[[str], AsyncEngine] | None = None,
    ) -> None:
        self.sources = tuple(sources)
        self.engine = engine
        # Workspaces in several databases: the engine of each workspace's (default: `engine`).
        self.engine_for = engine_for
        self.stop = stop or asyncio.Event()
        self.clock = clock
        self.reports: list[PassReport] = []
        # Each source's own checkpoint row (its lag, last success, last error), as stored when
        # it started and as each pass wrote it; replaced, never changed in place (the metrics
        # server's thread reads it).
        self.source_rows: dict[str, CheckpointRecord] = {}
        # Built on first use (tests give their own).
        self._walks = dict(walks or {})

    def engine_of(self, source: SourceConfig) -> AsyncEngine:
        """The database the source writes into (its records and its checkpoints)."""
        return self.engine if self.engine_for is None else self.engine_for(source.workspace)

    async def check(self) -> None:
        """Refuse a database that is not migrated, and a source whose stored checkpoints are
        of another kind (a name reused for another source would resume from its bookmarks)."""
        engines = list(dict.fromkeys(self.engine_of(source) for source in self.sources))
        stored: dict[tuple[AsyncEngine, str], str] = {}
        outcomes: dict[tuple[AsyncEngine, str], CheckpointRecord] = {}
        for engine in engines or [self.engine]:
            if not await is_up_to_date(engine):
                where = (
                    f" {engine.url.render_as_string(hide_password=True)}"
                    if self.engine_for is not None
                    else ""
                )
                raise CollectError(
                    f"the database{where} is not migrated: run `jobql migrate` first"
                )
            for row in await load_checkpoints(engine):
                stored[engine, row.source] = row.kind
                if row.scope == SOURCE_SCOPE:
                    outcomes[engine, row.source] = row
        for source in self.sources:
            kind = stored.get((self.engine_of(source), source.name))
            if kind is not None and kind != source.kind:
                raise CollectError(
                    f"source {source.name!r} is a {source.kind} source, but the database holds "
                    f"the checkpoints of a {kind} source of that name: name it differently"
                )
            found = outcomes.get((self.engine_of(source), source.name))
            if found is not None:
                self.source_rows = {**self.source_rows, source.name: found}

    async def run(self, *, once: bool) -> bool:
        """Every source until stopped (or one pass each); True when every last pass was ok."""
        await self.check()
        for source in self.sources:
            try:
                self.walk(source)  # every SDK client is built before the first request
            except Exception as exc:
                raise CollectError(f"{source.name}: cannot build its SDK client: {exc}") from exc
        results = await asyncio.gather(*(self._source(s, once=once) for s in self.sources))
        return all(results)

    def walk(self, source: SourceConfig) -> tuple[Walk, Caller]:
        found = self._walks.get(source.name)
        if found is None:
            caller = Caller(source.name, source.pace, self.stop)
            found = (_walk(source, caller, self.clock), caller)
            self._walks[source.name] = found
        return found

    async def _source(self, source: SourceConfig, *, once: bool) -> bool:
        number = 0
        while True:
            number += 1
            started = time.monotonic()
            report = await self.one_pass(source, number)
            if once or self.stop.is_set():
                return report.ok
            wait = source.pace.poll_interval - (time.monotonic() - started)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=wait)
            if self.stop.is_set():
                return report.ok

    async def one_pass(self, source: SourceConfig, number: int = 1) -> PassReport:
        started = time.monotonic()
        walk, caller = self.walk(source)
        before = replace(caller.stats)
        stats = PassStats()
        checkpoints: SourceCheckpoints | None = None
        error: str | None = None
        stopped = False
        engine = self.engine_of(source)
        try:
            rows = await load_checkpoints(engine, source.name)
            checkpoints = SourceCheckpoints(source, rows)
            await walk.run(checkpoints, Store(engine, checkpoints, stats), stats)
        except Stopped:
            stopped = True
        except Unavailable as exc:
            error = str(exc)
        except Exception as exc:  # the database, or a bug: reported, and the others go on
            logger.exception("%s: the pass failed", source.name)
            error = f"{type(exc).__name__}: {exc}"
        if error is None and stats.scope_errors:
            quoted = list(stats.scope_errors.values())[:QUOTED_ERRORS]
            more = len(stats.scope_errors) - len(quoted)
            error = "; ".join(quoted) + (f"; and {more} more" if more > 0 else "")
        lag = None
        if checkpoints is not None:
            lag = await self._outcome(checkpoints, stats, self.clock(), error, stopped)
        after = caller.stats
        report = PassReport(
            source=source.name,
            number=number,
            ok=error is None and not stopped,
            stopped=stopped,
            error=error,
            stats=stats,
            requests=after.requests - before.requests,
            retries=after.retries - before.retries,
            throttled=after.throttled - before.throttled,
            malformed=after.malformed - before.malformed,
            seconds=time.monotonic() - started,
            lag=lag,
        )
        self.reports.append(report)
        if report.ok or report.stopped:
            logger.info("%s", report.line())
        else:
            logger.error("%s", report.line())
        return report

    async def _outcome(
        self,
        checkpoints: SourceCheckpoints,
        stats: PassStats,
        now: datetime,
        error: str | None,
        stopped: bool,
    ) -> float | None:
        """Write the pass's outcome: scopes read to the end, scope errors, the source's row.
        Returns the lag in seconds (None: unknown)."""
        rows: list[CheckpointRecord] = []
        for scope in stats.succeeded:
            rows.append(checkpoints.record(scope, checkpoints.position(scope), success_at=now))
        for scope, problem in stats.scope_errors.items():
            rows.append(
                checkpoints.record(scope, checkpoints.position(scope), error=problem, at=now)
            )
        checkpoints.commit(rows)
        high_water = checkpoints.high_water(stats.lag_scopes) if stats.lag_scopes else now
        if not stopped:
            outcome = checkpoints.outcome(
                at=now, error=error, high_water=high_water, gaps=stats.gaps
            )
            rows.append(outcome)
            self.source_rows = {**self.source_rows, outcome.source: outcome}
        try:
            await save_checkpoints(self.engine_of(checkpoints.source), rows)
        except Exception:  # the database is down: the next pass writes it again
            logger.exception("%s: cannot record the pass's outcome", checkpoints.source.name)
        if high_water is None:
            return None
        return max(0.0, (now - high_water).total_seconds())


class SourceMetrics(PrometheusCollector):
    """The collector's sources' lag, last success and last error (`jobql_collector_*`, as
    serve's /metrics shows them from the database), from its own rows, per scrape."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def collect(self) -> Iterator[Metric]:
        rows = self.collector.source_rows.values()
        return metrics.CollectorLag(rows, datetime.now(UTC)).collect()


def _walk(source: SourceConfig, caller: Caller, clock: Clock) -> Walk:
    """The walk of a source over its SDK's adapter (imported only for the kinds configured: each
    SDK takes a second or so to import)."""
    if source.kind == "dlf":
        from jobql.collect.sources.dlf import DlfSource

        return DlfWalk(source, DlfSource(source), caller, clock)
    if source.kind == "schedulerx":
        from jobql.collect.sources.schedulerx import SchedulerxSource

        return SchedulerxWalk(source, SchedulerxSource(source), caller, clock)
    from jobql.collect.sources.flink import FlinkSource

    return FlinkWalk(source, FlinkSource(source), caller, clock)


async def collect(
    sources: Sequence[SourceConfig],
    database_url: str,
    *,
    once: bool,
    url_for: Callable[[str], str] | None = None,
    registry: CollectorRegistry | None = None,
) -> int:
    """`jobql collect`: run until SIGTERM/SIGINT (0), or one pass each (`once`: 1 if any pass
    failed). `url_for(workspace)`: the database each source's workspace lives in (default: the
    one of `database_url`). `registry`: where the sources' `SourceMetrics` are shown while it
    runs (the process's, when `--metrics-address` serves it)."""
    engine = create_engine(database_url)
    # One engine per database the sources write into (JOBQL_WORKSPACE_DATABASES).
    engines = {database_url: engine}
    if url_for is not None:
        for source in sources:
            url = url_for(source.workspace)
            if url not in engines:
                engines[url] = create_engine(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stopping(stop, signum))
    shown: SourceMetrics | None = None
    try:
        collector = Collector(
            sources,
            engine,
            stop=stop,
            engine_for=None if url_for is None else lambda workspace: engines[url_for(workspace)],
        )
        if registry is not None:
            shown = SourceMetrics(collector)
            registry.register(shown)
        ok = await collector.run(once=once)
    finally:
        if registry is not None and shown is not None:
            registry.unregister(shown)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        for each in engines.values():
            await each.dispose()
    if stop.is_set():
        return 0
    return 0 if ok else 1


def _stopping(stop: asyncio.Event, signum: int) -> Callable[[], None]:
    def handler() -> None:
        if not stop.is_set():
            logger.info("%s: stopping after the requests in flight", signal.Signals(signum).name)
        stop.set()

    return handler
