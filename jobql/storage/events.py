"""The instance event log: appended by every write, read by cursor after commit, pruned by age
and count, and a wake-up for its readers.

Order. An event's id is its position in the log, and readers page through the log by id
(`id > last`). On PostgreSQL a sequence hands ids out when rows are inserted, not when their
transactions commit: two concurrent writers could commit ids 11 then 10, and a reader that saw 11
before 10 committed would page past 10 for ever. So ids are handed out at commit: the writing
transaction inserts its changes as one row of `instance_event_pending`, and a deferred trigger
(migration 0007) runs inside its COMMIT: it takes a transaction-level advisory lock
(`pg_advisory_xact_lock(APPEND_LOCK)`), inserts the events, deletes the pending row and
NOTIFYs. The lock is held until the commit is visible (PostgreSQL releases a transaction's
locks only after that), so ids follow commit order, and a reader that sees id N also sees every
committed id below N. Writers wait for each other only while committing: not from their
append to their COMMIT, which under load is a client's round trip and its event loop's turn
(the lock was held that long when the events were inserted by the writer itself: at 100
single-instance writes a second beside 1,000 subscribers it was busy ~97% of the time and the
writes queued behind it). Never for readers, never for subscribers. On SQLite writers are
serialised anyway (BEGIN IMMEDIATE) and the events are inserted directly. An id a rolled-back
transaction took is never used again: readers see a gap, never a late arrival.

Wake-ups. PostgreSQL: the appending transaction's trigger calls `pg_notify(CHANNEL, '<last id>')`,
which PostgreSQL delivers when, and only if, it commits, to every listening connection of every
process and host: the payload is only "new events up to id N" (a few bytes; the limit is 8,000).
The ids are not known before the commit, so this process's readers learn of them the same way.
SQLite has no NOTIFY: `engine.write` wakes the process's readers after the commit with the last id.
Readers poll as well, for writers in other processes on SQLite (`jobql import`) and for
notifications missed while a LISTEN connection reconnects.

Retention: events older than a maximum age, and all but the newest maximum count, are deleted
by `prune`; the newest event is always kept, so that the log says where it stands. A cursor older
than the oldest kept event is refused (`cursor_expired`), never answered with a silent gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import orjson
from sqlalchemy import (
    DateTime,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobql.storage import engine as storage_engine
from jobql.storage.models import InstanceEvent, Job, Workspace
from jobql.storage.types import truncate_ms

logger = logging.getLogger("jobql.live")

CHANNEL = "jobql_instance_event"
# pg_advisory_xact_lock's key for "appending to the event log": b"jobqlev" as a number.
APPEND_LOCK = 0x6A6F62716C6576
READ_LIMIT = 1000
# How often a quiet LISTEN connection is asked whether it is still there.
HEALTH_CHECK_SECONDS = 30.0

_event = cast(Table, InstanceEvent.__table__)
_job = cast(Table, Job.__table__)
_workspace = cast(Table, Workspace.__table__)


@dataclass(frozen=True, slots=True)
class Change:
    """One change to one instance, as the writing transaction saw it."""

    workspace_id: int
    job_id: int
    instance_id: int
    vendor_instance_id: int
    kind: str
    status: str
    previous_status: str | None
    instance_type: str
    plan_time: datetime
    force_success: bool
    ignore_success: bool


@dataclass(frozen=True, slots=True)
class Event:
    """One row of the log with the names of its workspace and job."""

    id: int
    workspace: str
    job_name: str
    instance_id: int
    vendor_instance_id: int
    kind: str
    status: str
    previous_status: str | None
    instance_type: str
    plan_time: datetime
    force_success: bool
    ignore_success: bool
    at: datetime


# -- appending ------------------------------------------------------------------------------


async def append(connection: AsyncConnection, changes: Sequence[Change]) -> None:
    """Append `changes` in the caller's transaction (in this order). They get their ids when the
    transaction commits, and readers are woken then, never before and never if it rolls back."""
    if not changes:
        return
    at = truncate_ms(datetime.now(UTC))
    if connection.dialect.name == "postgresql":
        # Readers, this process's too, learn of them from the NOTIFY the trigger sends.
        await _append_postgresql(connection, changes, at)
        return
    last = await _append_sqlite(connection, changes, at)
    url = _url(connection.engine)
    storage_engine.after_commit(connection, lambda: wake_local(url, last))


# PostgreSQL: one insert of the transaction's changes as one pending row; its deferred trigger
# (migration 0007, `jobql_append_instance_events`) runs inside COMMIT: it takes the append lock,
# inserts the events in the order given, deletes the pending row and NOTIFYs with the last id.
_APPEND_POSTGRESQL = text(
    "INSERT INTO instance_event_pending (changes, at) VALUES (:changes, :at)"
).bindparams(bindparam("changes", type_=String), bindparam("at", type_=DateTime(timezone=True)))


async def _append_postgresql(
    connection: AsyncConnection, changes: Sequence[Change], at: datetime
) -> None:
    rows = [
        {
            "workspace_id": c.workspace_id,
            "job_id": c.job_id,
            "instance_id": c.instance_id,
            "vendor_instance_id": c.vendor_instance_id,
            "kind": c.kind,
            "status": c.status,
            "previous_status": c.previous_status,
            "instance_type": c.instance_type,
            "plan_time": truncate_ms(c.plan_time),
            "force_success": c.force_success,
            "ignore_success": c.ignore_success,
        }
        for c in changes
    ]
    await connection.execute(_APPEND_POSTGRESQL, {"changes": orjson.dumps(rows).decode(), "at": at})


async def _append_sqlite(
    connection: AsyncConnection, changes: Sequence[Change], at: datetime
) -> int:
    rows = [
        {
            "workspace_id": change.workspace_id,
            "job_id": change.job_id,
            "instance_id": change.instance_id,
            "vendor_instance_id": change.vendor_instance_id,
            "kind": change.kind,
            "status": change.status,
            "previous_status": change.previous_status,
            "instance_type": change.instance_type,
            "plan_time": change.plan_time,
            "force_success": change.force_success,
            "ignore_success": change.ignore_success,
            "at": at,
        }
        for change in changes
    ]
    result = await connection.execute(insert(_event).returning(_event.c.id), rows)
    return int(max(result.scalars().all()))


# -- reading --------------------------------------------------------------------------------


def _events() -> Any:
    return (
        select(
            _event.c.id,
            _workspace.c.name.label("workspace"),
            _job.c.name.label("job_name"),
            _event.c.instance_id,
            _event.c.vendor_instance_id,
            _event.c.kind,
            _event.c.status,
            _event.c.previous_status,
            _event.c.instance_type,
            _event.c.plan_time,
            _event.c.force_success,
            _event.c.ignore_success,
            _event.c.at,
        )
        .join(_workspace, _workspace.c.id == _event.c.workspace_id)
        .join(_job, _job.c.id == _event.c.job_id)
    )


async def read_after(
    engine: AsyncEngine,
    after: int,
    *,
    until: int | None = None,
    workspace: str | None = None,
    limit: int = READ_LIMIT,
) -> list[Event]:
    """Events with `after < id <= until` (no upper bound: None), of one workspace or all, in id
    order, at most `limit`: one statement."""
    statement = _events().where(_event.c.id > after)
    if until is not None:
        statement = statement.where(_event.c.id <= until)
    if workspace is not None:
        statement = statement.where(_workspace.c.name == workspace)
    statement = statement.order_by(_event.c.id).limit(limit)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        rows = (await connection.execute(statement)).all()
    return [
        Event(
            id=row.id,
            workspace=row.workspace,
            job_name=row.job_name,
            instance_id=row.instance_id,
            vendor_instance_id=row.vendor_instance_id,
            kind=row.kind,
            status=row.status,
            previous_status=row.previous_status,
            instance_type=row.instance_type,
            plan_time=row.plan_time,
            force_success=bool(row.force_success),
            ignore_success=bool(row.ignore_success),
            at=row.at,
        )
        for row in rows
    ]


async def bounds(engine: AsyncEngine) -> tuple[int, int]:
    """The oldest and newest ids in the log (0, 0 while it is empty)."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        row = (await connection.execute(select(func.min(_event.c.id), func.max(_event.c.id)))).one()
    return int(row[0] or 0), int(row[1] or 0)


# -- retention ------------------------------------------------------------------------------


async def prune(
    engine: AsyncEngine, *, max_age: timedelta, max_count: int, now: datetime | None = None
) -> int:
    """Delete events older than `max_age` and all but the newest `max_count`; the newest event
    always stays. Returns how many went."""
    cutoff = (now or datetime.now(UTC)) - max_age

    async def work(connection: AsyncConnection) -> int:
        newest = await connection.scalar(select(func.max(_event.c.id)))
        if newest is None:
            return 0
        # The id of the `max_count`-th newest event: those below it go. None: the log holds
        # fewer, and none goes by count.
        boundary = await connection.scalar(
            select(_event.c.id).order_by(_event.c.id.desc()).limit(1).offset(max_count - 1)
        )
        by_count = 0
        if boundary is not None:
            keep_from = min(int(newest), int(boundary))
            deleted = await connection.execute(delete(_event).where(_event.c.id < keep_from))
            by_count = int(deleted.rowcount or 0)
        by_age = await connection.execute(
            delete(_event).where(_event.c.at < cutoff, _event.c.id < newest)
        )
        return by_count + int(by_age.rowcount or 0)

    return await storage_engine.write(engine, work)


# -- wake-ups -------------------------------------------------------------------------------

# Callbacks of this process's readers, by database URL: `engine.write` calls them after commit.
_LOCAL: dict[str, set[Callable[[int], None]]] = {}


def _url(engine: Any) -> str:
    return str(engine.url.render_as_string(hide_password=False))


def wake_local(url: str, last: int) -> None:
    for callback in list(_LOCAL.get(url, ())):
        callback(last)


class Listener:
    """Calls `notify(last id)` when events are appended: in this process after each commit and,
    on PostgreSQL, on every NOTIFY of the channel, over one dedicated connection that is opened
    again (after a pause) whenever it is lost."""

    def __init__(self, engine: AsyncEngine, notify: Callable[[int], None], *, retry: float = 1.0):
        self._engine = engine
        self._notify = notify
        self._retry = retry
        self._url = _url(engine)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        _LOCAL.setdefault(self._url, set()).add(self._notify)
        connect = storage_engine.driver_connect_args(self._engine)
        if connect is None:
            self.connected.set()  # nothing to connect to: local wake-ups and polling
            return
        self._task = asyncio.create_task(self._listen(connect), name="jobql-event-listener")

    async def _listen(self, connect: dict[str, Any]) -> None:
        while True:
            connection: Any = None
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(**connect)
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._received)
                self.connected.set()
                # Whatever was appended while this connection was down: the reader catches up.
                self._notify(0)
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), HEALTH_CHECK_SECONDS)
                    if not lost.is_set():  # a connection that died without a word
                        await asyncio.wait_for(connection.fetchval("SELECT 1"), self._retry * 5)
                logger.warning("event listener: connection lost; listening again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("event listener: cannot listen (%s); retrying", exc)
            finally:
                self.connected.clear()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.terminate()
            await asyncio.sleep(self._retry)

    def _received(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            last = int(payload)
        except ValueError:
            last = 0
        self._notify(last)

    async def close(self) -> None:
        callbacks = _LOCAL.get(self._url)
        if callbacks is not None:
            callbacks.discard(self._notify)
            if not callbacks:
                del _LOCAL[self._url]
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def listening_backends(engine: AsyncEngine) -> int:
    """PostgreSQL: how many connections listen on the channel (for tests and health)."""
    async with engine.connect() as connection:
        count = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        )
    return int(count or 0)


__all__ = [
    "CHANNEL",
    "Change",
    "Event",
    "Listener",
    "append",
    "bounds",
    "prune",
    "read_after",
    "wake_local",
]
