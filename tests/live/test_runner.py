"""The subscription runner in process: multiplexing (statements per batch do not grow with the
subscribers), resuming by cursor, the retention window, a subscriber that falls behind, limits."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobql.http.subscriptions import LiveLimits, Runner, SharedResult, TooSlow
from jobql.resolvers.context import RequestContext
from jobql.resolvers.live import Broker
from jobql.resolvers.objects import global_id
from jobql.schema import create_schema
from jobql.storage import engine as storage_engine
from jobql.storage import events
from jobql.storage.identifiers import CursorCodec
from jobql.storage.ingest import write_instances
from tests.conftest import StatementCounter
from tests.factories import new_workspace
from tests.live.test_event_log import record

EVENTS = """
subscription Events($filter: InstanceFilter, $after: String) {
  instanceEvents(filter: $filter, after: $after) {
    cursor kind status
    instance { instanceId status nodes(first: 5) { nodes { name status } } }
  }
}
"""
WATCH = "subscription W($id: ID!) { instanceById(id: $id) { instanceId status } }"
CURSORS = CursorCodec("live-tests")
SCHEMA = create_schema()


@pytest.fixture
async def broker(engine: AsyncEngine) -> AsyncIterator[Broker]:
    started = Broker(engine, poll_interval=30.0, prune_interval=3600.0)
    await started.start()
    await started.wait_listening()
    yield started
    await started.close()


def make_runner(broker: Broker, engine: AsyncEngine, **limits: Any) -> Runner:
    return Runner(SCHEMA, broker, engine, CURSORS, LiveLimits(**limits))


@pytest.fixture
async def runner(broker: Broker, engine: AsyncEngine) -> AsyncIterator[Runner]:
    made = make_runner(broker, engine, queue_size=50)
    yield made
    await made.close()


class Subscriber:
    """One subscription stream, consumed by a task into `results`."""

    def __init__(
        self,
        runner: Runner,
        engine: AsyncEngine,
        workspace: str,
        query: str = EVENTS,
        variables: dict[str, Any] | None = None,
        *,
        stall_after: int | None = None,
    ) -> None:
        self.context = RequestContext.open(engine, CURSORS, workspace, long_lived=True)
        self.too_slow = asyncio.Event()
        self.stream = runner.stream(
            query, variables, None, self.context, on_too_slow=self.too_slow.set
        )
        self.results: list[Any] = []
        self.raw: list[Any] = []  # the results as the stream gave them
        self.stall_after = stall_after
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        try:
            async for result in self.stream:
                self.raw.append(result)
                self.results.append(
                    orjson.loads(orjson.dumps(result.data)) if result.data else result
                )
                if self.stall_after is not None and len(self.results) >= self.stall_after:
                    await asyncio.Event().wait()  # never takes another
        except Exception as exc:
            self.error = exc

    def events(self) -> list[dict[str, Any]]:
        return [r["instanceEvents"] for r in self.results if isinstance(r, dict)]

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.stream.aclose()
        await self.context.close()


async def until(condition: Any, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def write(engine: AsyncEngine, *records: Any) -> None:
    async def work(connection: AsyncConnection) -> Any:
        return await write_instances(connection, list(records))

    await storage_engine.write(engine, work)


async def joined(runner: Runner, count: int) -> None:
    await until(lambda: sum(len(g.members) for g in runner.groups.values()) >= count)
    await asyncio.sleep(0.2)  # the preludes have run


async def statements_of_a_batch(
    runner: Runner, engine: AsyncEngine, statements: StatementCounter, subscribers: int
) -> int:
    """Statements from a write of five instances to their delivery to every subscriber (the
    write's own included: the same for every count)."""
    ws = (await new_workspace(engine)).name
    group = [Subscriber(runner, engine, ws) for _ in range(subscribers)]
    try:
        await joined(runner, subscribers)
        statements.reset()
        await write(engine, *(record(ws, i, "RUNNING", nodes=["a", "b"]) for i in range(1, 6)))
        await until(lambda: all(len(s.events()) == 5 for s in group))
        await asyncio.sleep(0.3)  # the broker has read the batch
        return statements.count
    finally:
        for subscriber in group:
            await subscriber.close()


async def test_statements_per_batch_do_not_grow_with_subscribers(
    runner: Runner, engine: AsyncEngine, statements: StatementCounter
) -> None:
    # Partitioned PostgreSQL: the first read of a process learns the partitions from the
    # catalog (a statement at most once a minute, `partitions.has_month`), not one per batch.
    await statements_of_a_batch(runner, engine, statements, 1)
    nobody = await statements_of_a_batch(runner, engine, statements, 0)
    one = await statements_of_a_batch(runner, engine, statements, 1)
    many = await statements_of_a_batch(runner, engine, statements, 25)
    assert one == many
    # Beside the write and the broker's read of the log: one compiled read of the batch's
    # instances for the group that the 25 subscribers share.
    assert many - nobody == 1


async def test_events_in_order_with_kinds_and_instances(
    runner: Runner, engine: AsyncEngine
) -> None:
    ws = (await new_workspace(engine)).name
    other = (await new_workspace(engine)).name
    subscriber = Subscriber(runner, engine, ws, variables={"filter": {"statuses": ["SUCCESS"]}})
    everything = Subscriber(runner, engine, ws)
    try:
        await joined(runner, 2)
        await write(engine, record(ws, 1, "RUNNING"), record(other, 1, "SUCCESS"))
        await write(engine, record(ws, 1, "SUCCESS"))
        await until(lambda: len(everything.events()) == 2)
        await until(lambda: len(subscriber.events()) == 1)
        assert [(e["kind"], e["status"]) for e in everything.events()] == [
            ("CREATED", "RUNNING"),
            ("STATUS_CHANGED", "SUCCESS"),
        ]
        assert subscriber.events()[0]["instance"] == {
            "instanceId": 1,
            "status": "SUCCESS",
            "nodes": {"nodes": []},
        }
    finally:
        await subscriber.close()
        await everything.close()


async def test_resume_after_a_cursor_misses_nothing_and_repeats_nothing(
    runner: Runner, engine: AsyncEngine
) -> None:
    ws = (await new_workspace(engine)).name
    first = Subscriber(runner, engine, ws)
    await joined(runner, 1)
    for i in range(1, 6):
        await write(engine, record(ws, i, "RUNNING"))
    await until(lambda: len(first.events()) == 5)
    cursor = first.events()[1]["cursor"]
    await first.close()
    resumed = Subscriber(runner, engine, ws, variables={"after": cursor})
    try:
        await until(lambda: len(resumed.events()) == 3)
        await write(engine, record(ws, 6, "RUNNING"))
        await until(lambda: len(resumed.events()) == 4)
        await asyncio.sleep(0.2)
        assert [e["instance"]["instanceId"] for e in resumed.events()] == [3, 4, 5, 6]
    finally:
        await resumed.close()


async def test_a_cursor_outside_the_window_or_workspace_is_refused(
    runner: Runner, engine: AsyncEngine
) -> None:
    ws = (await new_workspace(engine)).name
    await write(engine, record(ws, 1, "RUNNING"))
    await write(engine, record(ws, 2, "RUNNING"))
    old, new = [e.id for e in await events.read_after(engine, 0, workspace=ws)]
    elsewhere = (await new_workspace(engine)).name
    context = RequestContext.open(engine, CURSORS, ws, long_lived=True)
    from jobql.resolvers.live import event_cursor

    stale = event_cursor(context, old)
    await context.close()
    await events.prune(engine, max_age=timedelta(days=1), max_count=1)
    for workspace, after, message in (
        (ws, stale, "no longer kept"),
        (elsewhere, stale, "not an event cursor of this workspace"),
        (ws, "garbage", "not an event cursor"),
    ):
        subscriber = Subscriber(runner, engine, workspace, variables={"after": after})
        try:
            await until(lambda s=subscriber: bool(s.results))
            (result,) = subscriber.results
            assert result.errors[0].extensions["code"] == "BAD_USER_INPUT"
            assert message in result.errors[0].message
        finally:
            await subscriber.close()
    assert new > old


async def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_go_on(
    broker: Broker, engine: AsyncEngine
) -> None:
    runner = make_runner(broker, engine, queue_size=3)
    ws = (await new_workspace(engine)).name
    stalled = Subscriber(runner, engine, ws, stall_after=1)
    steady = Subscriber(runner, engine, ws)
    try:
        await joined(runner, 2)
        await write(engine, *(record(ws, i, "RUNNING") for i in range(1, 21)))
        await until(lambda: len(steady.events()) == 20)
        await until(stalled.too_slow.is_set)
        stalled.task.cancel()
        with pytest.raises(TooSlow):
            async for _ in stalled.stream:
                pass
        assert steady.error is None
        assert len(runner.groups[next(iter(runner.groups))].members) == 1
    finally:
        await stalled.close()
        await steady.close()
        await runner.close()


async def test_limits_per_worker_and_cost(broker: Broker, engine: AsyncEngine) -> None:
    runner = make_runner(broker, engine, max_per_worker=1)
    ws = (await new_workspace(engine)).name
    first = Subscriber(runner, engine, ws)
    second = Subscriber(runner, engine, ws)
    costly = None
    try:
        await until(lambda: bool(second.results))
        assert second.results[0].errors[0].extensions["code"] == "TOO_MANY_SUBSCRIPTIONS"
        await first.close()
        costly = Subscriber(
            runner,
            engine,
            ws,
            "subscription { instanceEvents { instance { job { instances(first: 1000) "
            "{ nodes { nodes(first: 1000) { nodes { name } } } } } } } }",
        )
        await until(lambda: bool(costly.results))
        assert costly.results[0].errors[0].extensions["code"] == "QUERY_TOO_COMPLEX"
    finally:
        await second.close()
        if costly is not None:
            await costly.close()
        await runner.close()


async def test_instance_by_id_first_now_then_after_each_change(
    runner: Runner, engine: AsyncEngine
) -> None:
    ws = (await new_workspace(engine)).name
    await write(engine, record(ws, 7, "RUNNING"))
    (event,) = await events.read_after(engine, 0, workspace=ws)
    watcher = Subscriber(
        runner, engine, ws, WATCH, {"id": global_id("Instance", event.instance_id)}
    )
    foreign = Subscriber(
        runner,
        engine,
        (await new_workspace(engine)).name,
        WATCH,
        {"id": global_id("Instance", event.instance_id)},
    )
    try:
        await until(lambda: len(watcher.results) == 1 and len(foreign.results) == 1)
        assert watcher.results[0] == {"instanceById": {"instanceId": 7, "status": "RUNNING"}}
        assert foreign.results[0] == {"instanceById": None}
        await write(engine, record(ws, 7, "SUCCESS"))
        await until(lambda: len(watcher.results) == 2)
        assert watcher.results[1] == {"instanceById": {"instanceId": 7, "status": "SUCCESS"}}
        await asyncio.sleep(0.2)
        assert len(foreign.results) == 1
    finally:
        await watcher.close()
        await foreign.close()


async def test_commits_within_the_batch_interval_make_one_batch(engine: AsyncEngine) -> None:
    """Ten commits in quick succession, read at most once per `batch_interval`: the groups see
    one or two batches, not ten (each batch costs every matching group a read)."""
    slow = Broker(engine, poll_interval=30.0, prune_interval=3600.0, batch_interval=0.5)
    await slow.start()
    await slow.wait_listening()
    runner = make_runner(slow, engine)
    ws = (await new_workspace(engine)).name
    subscriber = Subscriber(runner, engine, ws)
    try:
        await joined(runner, 1)
        await asyncio.sleep(0.6)  # past the interval of any read so far
        before = slow.reads
        for number in range(1, 11):
            await write(engine, record(ws, number, "RUNNING"))
        await until(lambda: len(subscriber.events()) == 10)
        # The first commit is read at once, the nine after it within the next interval.
        assert slow.reads - before <= 3
        assert [e["instance"]["instanceId"] for e in subscriber.events()] == list(range(1, 11))
    finally:
        await subscriber.close()
        await runner.close()
        await slow.close()


async def test_a_groups_result_is_encoded_once_for_all_its_subscribers(
    runner: Runner, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every member gets the same result object, whose payload JSON is made once; the bytes are
    those of the result as the protocols send it."""
    ws = (await new_workspace(engine)).name
    group = [Subscriber(runner, engine, ws) for _ in range(5)]
    try:
        await joined(runner, 5)
        encodings = 0
        real = SharedResult.encoded

        def counted(self: SharedResult) -> bytes:
            nonlocal encodings
            if self._encoded is None:
                encodings += 1
            return real(self)

        monkeypatch.setattr(SharedResult, "encoded", counted)
        await write(engine, record(ws, 1, "RUNNING"))
        await until(lambda: all(s.events() for s in group))
        shared = [s.raw[-1] for s in group]
        assert all(result is shared[0] for result in shared)
        assert isinstance(shared[0], SharedResult)
        assert orjson.loads(shared[0].encoded()) == {
            "data": orjson.loads(orjson.dumps(shared[0].data)),
            "extensions": shared[0].extensions,
        }
        assert encodings == 1
    finally:
        for subscriber in group:
            await subscriber.close()


async def test_subscribers_joining_at_once_share_the_read_of_the_log_head(
    runner: Runner, engine: AsyncEngine, statements: StatementCounter
) -> None:
    """Each join needs the log's newest id; fifty at once take a few statements, not fifty
    (each statement takes a pooled connection the writes need too)."""
    ws = (await new_workspace(engine)).name
    statements.reset()
    group = [Subscriber(runner, engine, ws) for _ in range(50)]
    try:
        await joined(runner, 50)
        heads = [s for s in statements.statements if "max(instance_event.id)" in s]
        assert 1 <= len(heads) <= 5, len(heads)
        # Each still gets every event committed after it joined.
        await write(engine, record(ws, 1, "RUNNING"))
        await until(lambda: all(len(s.events()) == 1 for s in group))
    finally:
        for subscriber in group:
            await subscriber.close()


async def test_groups_with_the_same_selection_share_one_read_per_batch(
    runner: Runner, engine: AsyncEngine, statements: StatementCounter
) -> None:
    """Five groups (five filters: five distinct variables), one selection: the batch's
    instances are read once for all of them, not once per group."""
    ws = (await new_workspace(engine)).name
    filters: list[dict[str, Any] | None] = [
        None,
        {"statuses": ["RUNNING"]},
        {"statuses": ["RUNNING", "FAIL"]},
        {"instanceTypes": ["GENERAL", "MANUAL"]},
        {"planTimeAfter": "2000-01-01T00:00:00Z"},
    ]
    group = [Subscriber(runner, engine, ws, variables={"filter": f}) for f in filters]
    try:
        await joined(runner, len(filters))
        assert len(runner.groups) == len(filters)
        statements.reset()
        await write(engine, *(record(ws, i, "RUNNING", nodes=["a"]) for i in range(1, 6)))
        await until(lambda: all(len(s.events()) == 5 for s in group))
        await asyncio.sleep(0.3)
        reads = [
            s
            for s in statements.statements
            # through the table, or (partitioned) a month's partition or DEFAULT
            if "instance_node" in s
            and re.search(r"instance(_p\d+_\d+|_default)?\.id (IN|= ANY)", s)
        ]
        assert len(reads) == 1, reads
    finally:
        for subscriber in group:
            await subscriber.close()
