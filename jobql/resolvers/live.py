"""Live data: each worker's event broker, and the use cases of the subscriptions.

One `Broker` per worker reads the instance event log once per batch of new events (woken by
PostgreSQL's NOTIFY, by a commit in this process, or by its poll timer) and offers each batch to
its followers. A follower is one running subscription stream; several subscribers of the same
operation share one (see jobql/http/subscriptions.py), so the statements per batch depend on the
distinct operations, not on the subscribers.

A subscription runs in two parts, each with its own `Live`:
- the prelude (`prelude=True`, no follower): what the subscriber needs before live events: the
  events after its `after:` cursor up to the join position (`until`), or the instance as it is
  now; then it ends;
- the live part (`prelude=False`, a follower from the join position on): every later batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from jobql import metrics
from jobql.errors import BadUserInput, JobqlError
from jobql.resolvers.context import RequestContext
from jobql.resolvers.validation import text
from jobql.storage import events, instances
from jobql.storage.engine import Reader
from jobql.storage.events import Event
from jobql.storage.identifiers import CursorCodec, CursorContext, InvalidIdentifier, ValueKind
from jobql.storage.instances import InstanceFilter
from jobql.storage.paging import Position

__all__ = [
    "Broker",
    "Event",
    "FellBehind",
    "Follower",
    "Live",
    "SharedRead",
    "event_cursor",
    "instance_events",
    "instance_rows",
    "watch_instance",
]

logger = logging.getLogger("jobql.live")

CURSOR_KIND = "event"
# Instances read per statement when a stream catches up with many events at once.
READ_CHUNK = 500
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SharedRead(Generic[T]):
    """How a subscription reads the instances of a batch (by surrogate id) the way its selection
    needs them: JSON fragments for the compiled strategy, objects for the reference one.

    Every stream whose read has the same `key` (the same statement: selection and workspace)
    shares one statement per batch with the others, whatever their filters: a batch wakes them
    together, and the broker reads the union of their ids once (`Broker.read`). `run` reads
    with the reader it is given (the broker's, not a stream's)."""

    key: Hashable
    # (reader, keys, the plan times their events reported: a hint for partitioned tables)
    run: Callable[[Reader, Sequence[int], Mapping[int, datetime]], Awaitable[dict[int, T]]]


@dataclass(eq=False, slots=True)
class _Pending:
    """A shared read not yet started: the ids asked for so far, and its outcome."""

    read: SharedRead[Any]
    future: asyncio.Future[dict[int, Any]]
    keys: set[int] = field(default_factory=set)
    plan_times: dict[int, datetime] = field(default_factory=dict)


class FellBehind(JobqlError):
    """A subscription's events arrive faster than it takes them."""

    code = "SUBSCRIBER_TOO_SLOW"


class Follower:
    """The batches of events after `start`, as the broker reads them. At most `max_pending`
    events wait; one more and the follower has fallen behind for good."""

    def __init__(self, broker: Broker, start: int, max_pending: int) -> None:
        self.broker = broker
        self.start = start
        self.max_pending = max_pending
        self.fell_behind = False
        self._batches: deque[list[Event]] = deque()
        self._pending = 0
        self._ready = asyncio.Event()

    def offer(self, batch: list[Event]) -> None:
        if self.fell_behind:
            return
        self._pending += len(batch)
        if self._pending > self.max_pending:
            self.fell_behind = True
            self._batches.clear()
        else:
            self._batches.append(batch)
        self._ready.set()

    async def next_batch(self) -> list[Event]:
        """Every event waiting, as one batch: a stream that fell behind catches up with one read
        instead of one per batch it missed."""
        while not self._batches:
            if self.fell_behind:
                raise FellBehind(
                    "Events arrived faster than this subscription took them; subscribe again "
                    "with the cursor of the last event received."
                )
            self._ready.clear()
            await self._ready.wait()
        batch = [event for waiting in self._batches for event in waiting]
        self._batches.clear()
        self._pending = 0
        return batch

    def close(self) -> None:
        self.broker.followers.discard(self)


class Broker:
    """This worker's reader of the event log (see the module docstring).

    `position` is the id of the newest event read: a follower made now receives every event
    after it. Also prunes the log every `prune_interval` (each worker does; the deletes are
    idempotent)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        poll_interval: float = 1.0,
        batch_interval: float = 0.0,
        max_age: timedelta = timedelta(days=7),
        max_count: int = 1_000_000,
        prune_interval: float = 60.0,
        batch_size: int = events.READ_LIMIT,
        read_concurrency: int = 5,
    ) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        # The least time between two reads of the log: commits in between make one batch, so
        # that a busy log costs the groups one read per interval, not one per commit.
        self.batch_interval = batch_interval
        self._last_read = 0.0
        self.max_age = max_age
        self.max_count = max_count
        self.prune_interval = prune_interval
        self.batch_size = batch_size
        # The subscription streams' reads of their batches' instances at once: a batch wakes every
        # stream together, and each read takes a pooled connection that writes and queries need.
        self.read_slots = asyncio.Semaphore(read_concurrency)
        self._pending: dict[Hashable, _Pending] = {}
        self._reading: set[asyncio.Task[None]] = set()
        self.position = 0
        self.followers: set[Follower] = set()
        # Statements the broker sent for batches (one per read): for tests and the benchmark.
        self.reads = 0
        self._wake = asyncio.Event()
        # The newest id a wake-up announced (an empty read costs a statement: skip it).
        self._announced = 0
        self._next_head: asyncio.Future[int] | None = None
        self._head_lock = asyncio.Lock()
        self._listener = events.Listener(engine, self._notified)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        _, self.position = await events.bounds(self.engine)
        await self._listener.start()
        self._tasks = [
            asyncio.create_task(self._run(), name="jobql-broker"),
            asyncio.create_task(self._prune(), name="jobql-broker-prune"),
        ]

    async def close(self) -> None:
        for task in [*self._tasks, *self._reading]:
            task.cancel()
        for task in [*self._tasks, *self._reading]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._listener.close()

    def follow(self, max_pending: int) -> Follower:
        """A follower of every event after `position` (synchronously: no batch can slip in
        between)."""
        follower = Follower(self, self.position, max_pending)
        self.followers.add(follower)
        return follower

    async def read(
        self,
        read: SharedRead[T],
        keys: Sequence[int],
        plan_times: Mapping[int, datetime] | None = None,
    ) -> dict[int, T]:
        """`read` of `keys`, in one statement with every other stream's read of the same key
        asked for in this turn of the event loop (the streams a batch woke). `plan_times`: of
        the keys whose events said it (the later event's where two did)."""
        pending = self._pending.get(read.key)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = self._pending[read.key] = _Pending(read, loop.create_future())
            if len(self._pending) == 1:
                # After the streams already woken have asked (they run before this callback).
                loop.call_soon(self._start_reads)
        pending.keys.update(keys)
        if plan_times:
            pending.plan_times.update(plan_times)
        found = await asyncio.shield(pending.future)
        return {key: found[key] for key in keys if key in found}

    def _start_reads(self) -> None:
        reads = list(self._pending.values())
        self._pending.clear()  # later asks start other reads
        task = asyncio.create_task(self._run_reads(reads), name="jobql-shared-reads")
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    async def _run_reads(self, reads: list[_Pending]) -> None:
        """This turn's reads, at once (`read_slots` at a time), their outcomes released
        together: the streams they wake then send in one turn of the event loop, so that a
        connection carrying several of them writes the batch's frames at once
        (jobql/http/wsframes.py) instead of once per read."""
        try:
            outcomes = await asyncio.gather(
                *(self._run_read(pending) for pending in reads), return_exceptions=True
            )
        except asyncio.CancelledError:
            for pending in reads:
                pending.future.cancel()
            raise
        for pending, outcome in zip(reads, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                pending.future.cancel()
            elif isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
                pending.future.exception()  # reported to the streams that wait, not logged
            else:
                pending.future.set_result(outcome)

    async def _run_read(self, pending: _Pending) -> dict[int, Any]:
        reader = Reader(self.engine, hold=False)
        try:
            async with self.read_slots:
                return await pending.read.run(reader, sorted(pending.keys), pending.plan_times)
        finally:
            await reader.close()

    async def head(self) -> int:
        """The newest id in the log now (at least `position`). One statement serves every call
        made before it starts (subscribers joining at once take one connection, not one each);
        a call made while one runs waits for the next, which starts after it."""
        if self._next_head is None:
            self._next_head = asyncio.ensure_future(self._read_head())
        newest = await asyncio.shield(self._next_head)
        return max(newest, self.position)

    async def _read_head(self) -> int:
        async with self._head_lock:  # one at a time: the next one starts after this one
            self._next_head = None  # calls from now on wait for the next read
            _, newest = await events.bounds(self.engine)
            return newest

    async def wait_listening(self) -> None:
        await self._listener.connected.wait()

    def _notified(self, last: int) -> None:
        if last == 0:  # "something may have been missed": read whatever there is
            self._announced = max(self._announced, self.position + 1)
        self._announced = max(self._announced, last)
        if self._announced > self.position:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            wait = self._last_read + self.batch_interval - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_read = asyncio.get_running_loop().time()
            try:
                await self._catch_up()
            except Exception:
                logger.exception("event broker: cannot read the event log; trying again")
                await asyncio.sleep(self.poll_interval)
                continue
            # The same commit announced twice (this process, then NOTIFY) is read once.
            if self._announced <= self.position:
                self._wake.clear()

    async def _catch_up(self) -> None:
        while True:
            batch = await events.read_after(self.engine, self.position, limit=self.batch_size)
            self.reads += 1
            if not batch:
                return
            metrics.LIVE_EVENTS_READ.inc(len(batch))
            self.position = batch[-1].id
            for follower in list(self.followers):
                follower.offer(batch)
            if len(batch) < self.batch_size:
                return

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(self.prune_interval)
            try:
                pruned = await events.prune(
                    self.engine, max_age=self.max_age, max_count=self.max_count
                )
                if pruned:
                    logger.info("event log: pruned %d events", pruned)
            except Exception:
                logger.exception("event log: pruning failed; trying again later")


@dataclass(slots=True)
class Live:
    """How one subscription stream reads events (see the module docstring). `position` is the
    id of the event behind the result being delivered, set before each one."""

    broker: Broker
    follower: Follower | None
    until: int
    prelude: bool
    position: int = 0


def _live(ctx: RequestContext) -> Live:
    live = ctx.live
    if not isinstance(live, Live):
        raise BadUserInput("Subscriptions are served over graphql-transport-ws or SSE only.")
    return live


def _cursor_context(ctx: RequestContext) -> CursorContext:
    return CursorContext(CURSOR_KIND, ctx.workspace, "id", "ASC")


def event_cursor(ctx: RequestContext, event_id: int) -> str:
    return _event_cursor(ctx.cursors.secret, ctx.workspace, event_id)


@functools.lru_cache(maxsize=4096)
def _event_cursor(secret: str, workspace: str, event_id: int) -> str:
    """An event's cursor, signed once per worker: every subscription group of the workspace
    that a batch's event reaches answers with the same one."""
    context = CursorContext(CURSOR_KIND, workspace, "id", "ASC")
    return CursorCodec(secret).encode(context, Position(event_id, event_id))


def _decode_cursor(ctx: RequestContext, cursor: str) -> int:
    try:
        return ctx.cursors.decode(_cursor_context(ctx), cursor, kind=ValueKind.INT64).id
    except InvalidIdentifier as exc:
        raise BadUserInput(f"{cursor!r} is not an event cursor of this workspace.") from exc


def matches(event: Event, workspace: str, spec: InstanceFilter) -> bool:
    """The filter of `instances`, decided on the instance as the change left it."""
    if event.workspace != workspace:
        return False
    if spec.job_name is not None and event.job_name != spec.job_name:
        return False
    if spec.statuses is not None and event.status not in spec.statuses:
        return False
    if spec.instance_types is not None and event.instance_type not in spec.instance_types:
        return False
    if spec.plan_time_after is not None and not event.plan_time > spec.plan_time_after:
        return False
    if spec.plan_time_before is not None and not event.plan_time < spec.plan_time_before:
        return False
    if spec.force_success is not None and event.force_success != spec.force_success:
        return False
    return spec.ignore_success is None or event.ignore_success == spec.ignore_success


def instance_rows(workspace: str, convert: Callable[[Any], T]) -> SharedRead[T]:
    """The instances of a batch as rows (one statement), each made an object by `convert`, for
    the reference strategy; shared by every stream of the workspace."""

    async def run(reader: Reader, keys: Sequence[int], _: Mapping[int, datetime]) -> dict[int, T]:
        if not keys:
            return {}
        found = await instances.instances_by_ids(reader, workspace, sorted(set(keys)))
        return {key: convert(row) for key, row in found.items()}

    return SharedRead(("rows", workspace, convert), run)


async def _replay(ctx: RequestContext, live: Live, after: str) -> AsyncIterator[list[Event]]:
    start = _decode_cursor(ctx, after)
    oldest, newest = await events.bounds(ctx.engine)
    if start > newest:
        raise BadUserInput(f"{after!r} names no event of this server.")
    if start < oldest:
        raise BadUserInput(
            f"The events after {after!r} are no longer kept (the log keeps them for "
            f"{live.broker.max_age} and at most {live.broker.max_count} events): read the "
            "current state with a query, then subscribe without `after`."
        )
    live.position = max(live.position, start)
    while start < live.until:
        page = await events.read_after(ctx.engine, start, until=live.until, workspace=ctx.workspace)
        if not page:
            return
        start = page[-1].id
        yield page


async def _batches(
    ctx: RequestContext, live: Live, after: str | None
) -> AsyncIterator[list[Event]]:
    if live.prelude:
        live.position = live.until
        if after is not None:
            async for page in _replay(ctx, live, after):
                yield page
    if live.follower is None:
        return
    while True:
        yield await live.follower.next_batch()


async def _read(live: Live, read: SharedRead[T], events: list[Event]) -> dict[int, T]:
    """The instances of these events, with the plan times the events report."""
    plan_times = {
        event.instance_id: event.plan_time for event in events if event.plan_time is not None
    }
    return await live.broker.read(read, [event.instance_id for event in events], plan_times)


async def instance_events(
    ctx: RequestContext,
    spec: InstanceFilter,
    after: str | None,
    read: SharedRead[T] | None,
) -> AsyncIterator[tuple[Event, T | None]]:
    """The events of instances that match `spec`, in commit order, each with its instance as
    `read` returns it (None: not asked for); one read per batch. An event whose instance no
    longer exists in this workspace is left out."""
    live = _live(ctx)
    async for batch in _batches(ctx, live, after):
        chosen = [event for event in batch if matches(event, ctx.workspace, spec)]
        for start in range(0, len(chosen), READ_CHUNK):
            part = chosen[start : start + READ_CHUNK]
            found = await _read(live, read, part) if read else {}
            for event in part:
                instance = found.get(event.instance_id)
                if read is not None and instance is None:
                    continue
                live.position = event.id
                yield event, instance


async def watch_instance(
    ctx: RequestContext,
    read: SharedRead[T],
    *,
    key: int | None = None,
    job_name: str | None = None,
    instance_id: int | None = None,
) -> AsyncIterator[T | None]:
    """The instance (by surrogate `key`, or by job name and the source's instance id) as it is
    now (None: not in this workspace), then again after each batch of events that changed it."""
    live = _live(ctx)
    name = text("jobName", job_name)
    if live.prelude:
        if key is None and name is not None and instance_id is not None:
            row = await instances.get_instance(ctx.reader, ctx.workspace, name, instance_id)
            key = None if row is None else row.id
        found = await live.broker.read(read, [key]) if key is not None else {}
        live.position = live.until
        yield None if key is None else found.get(key)
    if live.follower is None:
        return
    while True:
        batch = await live.follower.next_batch()
        hits = [
            event
            for event in batch
            if event.workspace == ctx.workspace
            and (
                event.instance_id == key
                if key is not None
                else (event.job_name == name and event.vendor_instance_id == instance_id)
            )
        ]
        if not hits:
            continue
        found = await _read(live, read, [hits[-1]])
        live.position = hits[-1].id
        yield found.get(hits[-1].instance_id)
