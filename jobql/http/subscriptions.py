"""The subscription runner that both transports (graphql-transport-ws, SSE) share.

Multiplexing. Subscribers of the same document, operation, variables, workspace and token scopes
form a group: one subscription stream runs for the group (one read of its instances per batch of
events, whatever the number of subscribers), and each result goes to every member. The `after`
variable of the root field only decides what a subscriber replays, so it is left out of the
group's variables (when it may be null).

Each subscriber:
1. joins its group (synchronously: no batch slips between) and takes the log's newest id P;
2. runs its prelude alone, through the full pipeline (parsing, validation, every limit): the
   events after its cursor up to P (`instanceEvents(after:)`), or the instance as it is now
   (`instance`); a prelude that fails ends the subscription with its errors;
3. then takes the group's results for events after P (and after its cursor), from a bounded
   queue: a subscriber that falls `queue_size` results behind is dropped (`TooSlow`; the
   transports close with CLOSE_TOO_SLOW) and resumes with its last cursor. The group never
   waits for its members, and the broker never waits for its groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    parse,
)
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.utils.aio import aclosing

from jobql import metrics
from jobql.resolvers.context import AsyncEngine, CursorCodec, RequestContext
from jobql.resolvers.live import Broker, Live
from jobql.schema.limits import TOO_COMPLEX, estimate_cost

logger = logging.getLogger("jobql.live")

# graphql-transport-ws close code for a subscriber that fell behind (graphql-ws reserves 4400,
# 4401, 4403, 4406, 4408, 4409, 4429, 4499, 4500, 4504; this mirrors 1013 "try again later", and
# graphql-ws clients retry it).
CLOSE_TOO_SLOW = 4013
TOO_SLOW_REASON = "Subscriber fell behind: resubscribe with the last cursor"
# Events a group may have waiting while it resolves earlier ones (its stream is the only reader).
GROUP_BACKLOG = 100_000


class TooSlow(Exception):
    """This subscriber fell behind its queue."""


def next_payload(result: ExecutionResult) -> dict[str, Any]:
    """A result as the payload of a `next` message (both transports)."""
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload


@dataclass
class SharedResult(ExecutionResult):
    """A group's result, which every member sends: its payload is encoded once, not once per
    member."""

    _encoded: bytes | None = None

    @classmethod
    def of(cls, result: ExecutionResult) -> SharedResult:
        return cls(result.data, result.errors, result.extensions)

    def encoded(self) -> bytes:
        """`next_payload(self)` as JSON."""
        if self._encoded is None:
            self._encoded = orjson.dumps(next_payload(self))
        return self._encoded


@dataclass(frozen=True, slots=True)
class LiveLimits:
    queue_size: int = 1_000
    max_per_worker: int = 10_000
    max_per_connection: int = 100
    keepalive: float = 15.0


class Member:
    """One subscriber of a group: a bounded queue of (event id, result).

    `send_now`, where the transport has it (graphql-transport-ws on `jobql serve`): a result
    offered while the subscriber's stream waits with nothing queued (after its prelude) is sent
    by the group itself, at once, instead of waking the stream to send it; the queue takes it
    when that cannot be (the transport pauses writing), and everything after it, in order."""

    def __init__(
        self,
        size: int,
        on_fail: Callable[[], None] | None = None,
        send_now: Callable[[SharedResult], bool] | None = None,
    ) -> None:
        self.size = size
        # Told at once, so that a transport stuck sending to this subscriber can cut it.
        self.on_fail = on_fail
        self.send_now = send_now
        self.items: deque[tuple[int | None, ExecutionResult]] = deque()
        self.ended = False
        self.failed: BaseException | None = None
        self._ready = asyncio.Event()
        # Set while `results` waits for an item: nothing of this subscriber is in flight.
        self._waiting = False
        self._after = 0

    def offer(self, position: int | None, result: ExecutionResult) -> bool:
        """Takes a result; True when it was sent now (`send_now`)."""
        if self.ended:
            return False
        if (
            self._waiting
            and self.send_now is not None
            and position is not None
            and isinstance(result, SharedResult)
            and not self.items
        ):
            if position <= self._after:
                return False  # before the subscriber's start: the stream would skip it
            if self.send_now(result):
                return True
        if len(self.items) >= self.size:
            metrics.SUBSCRIBERS_TOO_SLOW.inc()
            self.fail(TooSlow())
            return False
        self.items.append((position, result))
        self._ready.set()
        return False

    def end(self) -> None:
        self.ended = True
        self._ready.set()

    def fail(self, error: BaseException) -> None:
        if self.ended:
            return
        self.failed = error
        self.items.clear()
        self.end()
        if self.on_fail is not None and isinstance(error, TooSlow):
            self.on_fail()

    async def results(self, after: int) -> AsyncIterator[ExecutionResult]:
        """The group's results for events after `after` (and those tied to no event)."""
        self._after = after
        while True:
            while not self.items:
                if self.ended:
                    if self.failed is not None:
                        raise self.failed
                    return
                self._ready.clear()
                self._waiting = True
                try:
                    await self._ready.wait()
                finally:
                    self._waiting = False
            position, result = self.items.popleft()
            if position is None or position > after:
                yield result


GroupKey = tuple[str, str | None, bytes, str, frozenset[str]]


@dataclass(eq=False)
class Group:
    key: GroupKey
    context: RequestContext
    members: set[Member] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class Runner:
    """This worker's subscriptions (see the module docstring)."""

    def __init__(
        self,
        schema: Any,
        broker: Broker,
        engine: AsyncEngine,
        cursors: CursorCodec,
        limits: LiveLimits,
        *,
        others: Mapping[AsyncEngine, Broker] | None = None,
    ) -> None:
        """`broker` reads `engine`'s event log; `others`, the brokers of the databases other
        workspaces live in (JOBQL_WORKSPACE_DATABASES), by engine."""
        self.schema = schema
        self.broker = broker
        self.brokers: dict[AsyncEngine, Broker] = {engine: broker, **(others or {})}
        self.engine = engine
        self.cursors = cursors
        self.limits = limits
        self.groups: dict[GroupKey, Group] = {}
        self.active = 0

    def _context(self, ctx: RequestContext, live: Live) -> RequestContext:
        context = RequestContext.open(
            self.engine, self.cursors, ctx.workspace, long_lived=True, scopes=ctx.scopes
        )
        context.live = live
        return context

    async def stream(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        ctx: RequestContext,
        *,
        on_too_slow: Callable[[], None] | None = None,
        send_now: Callable[[SharedResult], bool] | None = None,
    ) -> AsyncGenerator[ExecutionResult, None]:
        """The results of one operation: a subscription's, or a query's or mutation's one.
        `on_too_slow` is called the moment the subscriber falls behind (the stream then raises
        TooSlow where it stands). `send_now`: the transport's way to send a live result at once
        (see `Member`); the results it sent are not in the stream."""
        document = _parse(query)
        operation = _operation(document, operation_name) if document is not None else None
        if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
            # Not a subscription, or not one that parses: Strawberry answers (with the errors).
            source = await self.schema.stream(
                query, variable_values=variables, context_value=ctx, operation_name=operation_name
            )
            async with aclosing(source):
                async for result in source:
                    yield result
            return
        refused = self._refusal(document, operation_name, variables or {})  # type: ignore[arg-type]
        if refused is not None:
            yield refused
            return
        self.active += 1
        metrics.SUBSCRIPTIONS_ACTIVE.inc()
        try:
            async for result in self._subscribe(
                query, variables, operation_name, operation, ctx, on_too_slow, send_now
            ):
                yield result
        finally:
            self.active -= 1
            metrics.SUBSCRIPTIONS_ACTIVE.dec()

    def _refusal(
        self, document: DocumentNode, operation_name: str | None, variables: dict[str, Any]
    ) -> ExecutionResult | None:
        if self.active >= self.limits.max_per_worker:
            return _error(
                f"This worker serves {self.limits.max_per_worker} subscriptions already; try "
                "again later or elsewhere.",
                "TOO_MANY_SUBSCRIPTIONS",
            )
        try:
            cost = estimate_cost(self.schema._schema, document, operation_name, variables)
        except Exception:  # a document validation will refuse: it says why
            return None
        max_cost = self.schema.max_cost
        if cost > max_cost:
            return _error(
                f"The subscription could return about {cost} objects per event; the limit is "
                f"{max_cost}. Ask for smaller pages (`first`/`last`).",
                TOO_COMPLEX,
                cost=cost,
                maxCost=max_cost,
            )
        return None

    async def _subscribe(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        operation: OperationDefinitionNode,
        ctx: RequestContext,
        on_too_slow: Callable[[], None] | None,
        send_now: Callable[[SharedResult], bool] | None = None,
    ) -> AsyncGenerator[ExecutionResult, None]:
        live_variables = _without_replay(operation, variables or {})
        key: GroupKey = (
            query,
            operation_name,
            orjson.dumps(live_variables, option=orjson.OPT_SORT_KEYS),
            ctx.workspace,
            ctx.scopes,
        )
        group = self.groups.get(key)
        if group is None:
            group = self._start_group(key, query, live_variables, operation_name, ctx)
        member = Member(self.limits.queue_size, on_too_slow, send_now)
        group.members.add(member)
        try:
            # "From now on" means after what is committed now, which the broker may not have
            # read yet: the group's results up to here are skipped, the prelude reads them.
            broker = self.brokers[ctx.engine]  # the log of the workspace's database
            joined = await broker.head()
            prelude = self._context(ctx, Live(broker, None, until=joined, prelude=True))
            try:
                source = await self.schema.subscribe(
                    query,
                    variable_values=variables,
                    context_value=prelude,
                    operation_name=operation_name,
                )
                async with aclosing(source):
                    async for result in source:
                        yield result
                        if isinstance(result, PreExecutionError) or (
                            result.errors and result.data is None
                        ):
                            return
                assert isinstance(prelude.live, Live)
                after = max(joined, prelude.live.position)
            finally:
                await prelude.close()
            async for result in member.results(after):
                yield result
        finally:
            self._leave(group, member)

    def _start_group(
        self,
        key: GroupKey,
        query: str,
        variables: dict[str, Any],
        operation_name: str | None,
        ctx: RequestContext,
    ) -> Group:
        broker = self.brokers[ctx.engine]
        follower = broker.follow(GROUP_BACKLOG)
        live = Live(broker, follower, until=follower.start, prelude=False)
        group = Group(key, self._context(ctx, live))
        self.groups[key] = group
        group.task = asyncio.create_task(
            self._pump(group, query, variables, operation_name), name="jobql-subscription-group"
        )
        return group

    async def _pump(
        self, group: Group, query: str, variables: dict[str, Any], operation_name: str | None
    ) -> None:
        context = group.context
        live = context.live
        assert isinstance(live, Live)
        assert live.follower is not None
        try:
            source = await self.schema.subscribe(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
            )
            async with aclosing(source):
                async for result in source:
                    # Results tied to no event (errors before any) reach every member.
                    if isinstance(result, PreExecutionError):
                        position = None
                    else:
                        position, result = live.position, SharedResult.of(result)
                    sent = sum(member.offer(position, result) for member in list(group.members))
                    if sent:
                        metrics.DELIVERED_WS.inc(sent)
                    # Let the members send it before the next one: a batch resolves without
                    # waiting for anything, and would otherwise fill every queue at once.
                    await asyncio.sleep(0)
            for member in list(group.members):
                if live.follower.fell_behind:
                    member.fail(TooSlow())
                else:
                    member.end()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("subscription group failed")
            for member in list(group.members):
                member.fail(exc)
        finally:
            live.follower.close()
            self._forget(group)
            await context.close()

    def _forget(self, group: Group) -> None:
        if self.groups.get(group.key) is group:
            del self.groups[group.key]

    def _leave(self, group: Group, member: Member) -> None:
        group.members.discard(member)
        if not group.members and group.task is not None:
            self._forget(group)
            group.task.cancel()

    async def close(self) -> None:
        tasks = [group.task for group in self.groups.values() if group.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.groups.clear()


def _error(message: str, code: str, **extensions: Any) -> PreExecutionError:
    return PreExecutionError(
        data=None, errors=[GraphQLError(message, extensions={"code": code, **extensions})]
    )


@lru_cache(maxsize=1_000)
def _parse(query: str) -> DocumentNode | None:
    try:
        return parse(query)
    except GraphQLError:
        return None


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == name), None)


def _without_replay(
    operation: OperationDefinitionNode, variables: dict[str, Any]
) -> dict[str, Any]:
    """`variables` with the root field's `after` (when a nullable variable) set to null: it
    decides only the replay, never the live results a group shares."""
    nullable = {
        definition.variable.name.value
        for definition in operation.variable_definitions or ()
        if not isinstance(definition.type, NonNullTypeNode)
    }
    live = dict(variables)
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            continue
        for argument in selection.arguments or ():
            value = argument.value
            if (
                argument.name.value == "after"
                and isinstance(value, VariableNode)
                and value.name.value in nullable
                and value.name.value in live
            ):
                live[value.name.value] = None
    return live


__all__ = [
    "CLOSE_TOO_SLOW",
    "TOO_SLOW_REASON",
    "LiveLimits",
    "Runner",
    "SharedResult",
    "TooSlow",
    "next_payload",
]
