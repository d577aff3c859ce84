"""Pool metrics (`jobql.metrics`) for both of a worker's pools: SQLAlchemy's (`sqlalchemy`) and,
on PostgreSQL, asyncpg's `DriverPool` (`asyncpg`, the compiled reads).

Per checkout, one histogram observation: the time it waited (its count is the checkouts), and
a counter for those that timed out. The connections open and in use are read from the pools
themselves when published (`publish`: before each scrape, and every second in each worker of a
multi-worker `serve`), not counted per checkout. Only engines made with `observe=True` (the
app's, with JOBQL_METRICS on) are observed.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from jobql import metrics


class PoolObserver:
    """The metrics of one pool."""

    def __init__(self, name: str, max_size: int) -> None:
        self.wait = metrics.POOL_WAIT.labels(name)
        self.timeouts = metrics.POOL_TIMEOUTS.labels(name)
        self.open = metrics.POOL_OPEN.labels(name)
        self.in_use = metrics.POOL_IN_USE.labels(name)
        self.max = metrics.POOL_MAX.labels(name)
        self.max_size = max_size

    def checked_out(self, started: float) -> None:
        self.wait.observe(time.perf_counter() - started)

    def timed_out(self, started: float) -> None:
        self.wait.observe(time.perf_counter() - started)
        self.timeouts.inc()

    def publish(self, open_connections: int, in_use: int) -> None:
        self.open.set(open_connections)
        self.in_use.set(in_use)
        self.max.set(self.max_size)


class ObservedQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, timing each checkout's wait (`_do_get`: taking an idle
    connection, waiting for one, or opening one; the pre-ping comes after)."""

    observer: PoolObserver | None = None

    def _do_get(self) -> ConnectionPoolEntry:
        observer = self.observer
        if observer is None:
            return super()._do_get()
        started = time.perf_counter()
        try:
            entry = super()._do_get()
        except SQLAlchemyTimeoutError:
            observer.timed_out(started)
            raise
        observer.checked_out(started)
        return entry

    def publish(self) -> None:
        if self.observer is not None:
            in_use = self.checkedout()
            self.observer.publish(in_use + self.checkedin(), in_use)


def observe_engine(sync_engine: Any, max_size: int) -> None:
    """Time the checkouts of `sync_engine`'s pool (an ObservedQueuePool); `engine.dispose()`
    swaps in a fresh pool of the same class, which keeps the observer."""
    observer = PoolObserver("sqlalchemy", max_size)
    sync_engine.pool.observer = observer

    def recreated(engine: Any) -> None:
        if isinstance(engine.pool, ObservedQueuePool):
            engine.pool.observer = observer

    event.listen(sync_engine, "engine_disposed", recreated)


__all__ = ["ObservedQueuePool", "PoolObserver", "observe_engine"]
