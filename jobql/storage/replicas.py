"""Read replicas (PostgreSQL streaming replication): which one serves a read.

Read-only operations go to a replica, round robin over those in rotation; writes, the event log
and anything that must see its own writes go to the primary. A replica is in rotation while its
last check succeeded and it is not lagging more than `max_lag` seconds. Each worker checks every
replica every `check_interval` seconds in the background:

- the primary's `pg_current_wal_lsn()` is sampled first, then each replica's
  `pg_last_wal_replay_lsn()`;
- a replica's lag is how long ago the primary had reached the position the replica has replayed
  (0 when it has replayed everything the primary had): measured with this worker's clock only, so
  an idle primary is no lag and a paused replay grows by the second.

Read-your-writes: a write's commit position (`commit_lsn`) goes back to the client (a mutation's
`extensions.lsn` and the `JobQL-LSN` header); a request that sends it back is served by a replica
whose last check had replayed it, or by the primary.

A read that finds its replica unreachable takes it out of rotation and runs again on the primary
(reads only: running one twice is harmless), so a replica going away costs no request an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql import metrics

logger = logging.getLogger("jobql")

LSN_HEADER = "jobql-lsn"
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
_TO_REPLICA = metrics.READ_ROUTES.labels("replica")
_TO_PRIMARY = metrics.READ_ROUTES.labels("primary")


class BadLsn(ValueError):
    """A client sent an LSN that is not PostgreSQL's `X/Y` form."""


def parse_lsn(value: str) -> int:
    """PostgreSQL's text form of a WAL position (`16/B374D848`) as a number."""
    match = _LSN.match(value.strip())
    if match is None:
        raise BadLsn(
            f"{value!r} is not a WAL position: send back the `lsn` a mutation answered "
            "(such as 0/16B3748)"
        )
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


@dataclass(slots=True)
class Replica:
    url: str
    engine: AsyncEngine
    # What the last check found; out of rotation until a check succeeds.
    up: bool = False
    replay_lsn: int = 0
    lag: float = float("inf")
    reason: str = "not checked yet"
    checked_at: float = 0.0
    # Whether a check has ever found it serving (then a later return disposes its stale pools).
    checked_before: bool = False

    @property
    def name(self) -> str:
        """host:port/database, no password (logs, /readyz, metrics labels)."""
        url = make_url(self.url)
        return f"{url.host}:{url.port or 5432}/{url.database}"

    def in_rotation(self, max_lag: float) -> bool:
        return self.up and self.lag <= max_lag


@dataclass(slots=True)
class Replicas:
    """The read replicas of one primary, as one worker sees them."""

    primary: AsyncEngine
    replicas: list[Replica]
    max_lag: float = 10.0
    check_interval: float = 1.0
    timeout: float = 5.0
    # (monotonic time, primary WAL position) samples, newest last: how far behind a position is.
    _samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4096))
    _turn: Iterator[int] = field(default_factory=lambda: itertools.count())
    _task: asyncio.Task[None] | None = None
    _checked: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def engines(self) -> list[AsyncEngine]:
        return [replica.engine for replica in self.replicas]

    def choose(self, min_lsn: int | None = None) -> AsyncEngine | None:
        """A replica's engine for a read (round robin over those in rotation that have replayed
        `min_lsn`), or None: read from the primary."""
        ready = [
            replica
            for replica in self.replicas
            if replica.in_rotation(self.max_lag)
            and (min_lsn is None or replica.replay_lsn >= min_lsn)
        ]
        if not ready:
            _TO_PRIMARY.inc()
            return None
        _TO_REPLICA.inc()
        return ready[next(self._turn) % len(ready)].engine

    def mark_down(self, engine: AsyncEngine, exc: BaseException) -> None:
        """A read found this replica unreachable: out of rotation until a check succeeds."""
        for replica in self.replicas:
            if replica.engine is engine and replica.up:
                replica.up = False
                metrics.REPLICA_IN_ROTATION.labels(replica.name).set(0)
                replica.reason = f"unreachable: {type(exc).__name__}"
                logger.warning("replica %s out of rotation: %s", replica.name, exc)

    async def start(self) -> None:
        """Check every replica once (so that the first reads can use them), then keep checking
        in the background."""
        await self.check()
        self._task = asyncio.create_task(self._keep_checking(), name="jobql-replicas")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for replica in self.replicas:
            await replica.engine.dispose()

    async def wait_checked(self) -> None:
        """Until the next check has completed (tests; a client that just wrote)."""
        self._checked.clear()
        await self._checked.wait()

    async def _keep_checking(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self.check()
            except Exception:  # never let the checker die: the next round tries again
                logger.exception("replica check failed")

    async def check(self) -> None:
        sampled_at = time.monotonic()
        try:
            primary_lsn = await asyncio.wait_for(_primary_lsn(self.primary), self.timeout)
        except Exception as exc:
            # Without the primary's position lag cannot be told: keep the last verdicts.
            logger.warning("replica check: primary unreachable: %s", exc)
            primary_lsn = None
        if primary_lsn is not None:
            self._samples.append((sampled_at, primary_lsn))
        await asyncio.gather(*(self._check(replica, primary_lsn) for replica in self.replicas))
        for replica in self.replicas:
            serving = replica.in_rotation(self.max_lag)
            metrics.REPLICA_IN_ROTATION.labels(replica.name).set(1 if serving else 0)
            if replica.lag != float("inf"):
                metrics.REPLICA_LAG.labels(replica.name).set(replica.lag)
        self._checked.set()

    async def _check(self, replica: Replica, primary_lsn: int | None) -> None:
        try:
            standby, replayed = await asyncio.wait_for(_replica_state(replica.engine), self.timeout)
        except Exception as exc:
            if replica.up:
                logger.warning("replica %s out of rotation: %s", replica.name, exc)
            replica.up, replica.reason = False, f"unreachable: {type(exc).__name__}"
            return
        now = time.monotonic()
        replica.checked_at = now
        if not standby:
            # Promoted (or never a standby): its data no longer follows the primary's.
            replica.up, replica.reason = False, "not a standby (pg_is_in_recovery() is false)"
            return
        replica.replay_lsn = replayed
        replica.lag = self._lag(replayed, primary_lsn, now)
        if replica.lag > self.max_lag:
            if replica.up:
                logger.warning("replica %s lags %.1f s: out of rotation", replica.name, replica.lag)
            replica.up, replica.reason = False, f"lagging {replica.lag:.1f} s"
            return
        if not replica.up:
            if replica.checked_before:
                # Back from being away: its pooled connections may be to the server as it was
                # before a restart. A fresh start, rather than each first read falling back.
                await replica.engine.dispose()
            logger.info("replica %s in rotation", replica.name)
        replica.checked_before = True
        replica.up, replica.reason = True, "ok"

    def _lag(self, replayed: int, primary_lsn: int | None, now: float) -> float:
        if primary_lsn is not None and replayed >= primary_lsn:
            return 0.0
        # The newest moment the primary was at or before what the replica has replayed.
        reached = None
        for at, position in reversed(self._samples):
            if position <= replayed:
                reached = at
                break
        if reached is None:
            oldest = self._samples[0][0] if self._samples else now
            return now - oldest + self.check_interval
        # The primary moved past `replayed` some time after `reached`: at most this long ago.
        return now - reached

    def status(self) -> list[dict[str, Any]]:
        """Every replica's state (/readyz)."""
        return [
            {
                "replica": replica.name,
                "inRotation": replica.in_rotation(self.max_lag),
                "reason": replica.reason,
                "lagSeconds": None if replica.lag == float("inf") else round(replica.lag, 3),
                "replayLsn": format_lsn(replica.replay_lsn) if replica.replay_lsn else None,
            }
            for replica in self.replicas
        ]


async def _primary_lsn(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        value = (await connection.execute(text("SELECT pg_current_wal_lsn()::text"))).scalar()
    return parse_lsn(str(value))


async def _replica_state(engine: AsyncEngine) -> tuple[bool, int]:
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        row = (
            await connection.execute(
                text("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
            )
        ).one()
    standby, replayed = bool(row[0]), row[1]
    return standby, parse_lsn(replayed) if replayed else 0


# -- which replicas an engine has (set up by the app) -----------------------------------------

_REPLICAS: weakref.WeakKeyDictionary[Any, Replicas] = weakref.WeakKeyDictionary()


def attach(primary: AsyncEngine, replicas: Replicas) -> None:
    _REPLICAS[primary.sync_engine] = replicas


def replicas_of(primary: AsyncEngine) -> Replicas | None:
    return _REPLICAS.get(primary.sync_engine)


# -- a write's commit position, for read-your-writes ------------------------------------------

# Set by a request that wants to know where its writes committed (only where replicas serve
# reads): `engine.write` appends each commit's WAL position.
COMMIT_LSNS: ContextVar[list[int] | None] = ContextVar("jobql_commit_lsns", default=None)


@contextlib.contextmanager
def capture_commit_lsns() -> Iterator[list[int]]:
    positions: list[int] = []
    token = COMMIT_LSNS.set(positions)
    try:
        yield positions
    finally:
        COMMIT_LSNS.reset(token)


async def commit_lsn(connection: Any) -> int:
    """The primary's WAL position right after a commit on `connection`: a replica that has
    replayed it sees the commit."""
    await connection.execution_options(isolation_level="AUTOCOMMIT")
    value = (await connection.execute(text("SELECT pg_current_wal_lsn()::text"))).scalar()
    return parse_lsn(str(value))


def from_urls(
    primary: AsyncEngine,
    urls: Sequence[str],
    engines: Sequence[AsyncEngine],
    *,
    max_lag: float,
    check_interval: float,
    timeout: float,
) -> Replicas:
    return Replicas(
        primary,
        [Replica(url, engine) for url, engine in zip(urls, engines, strict=True)],
        max_lag=max_lag,
        check_interval=check_interval,
        timeout=timeout,
    )
