"""The compiled strategy's instance events (each event's answer made as JSON by the server,
`schema.live._projection`) against the reference strategy's (graphql-core completing each
InstanceEvent from objects): random selections, both strategies subscribed side by side to the
same writes, the answers must be equal; and where the selection allows, the compiled one really
is the projection."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from jobql.http.subscriptions import LiveLimits, Runner
from jobql.resolvers.live import Broker
from jobql.schema import create_schema
from tests.factories import new_workspace
from tests.live.test_event_log import record
from tests.live.test_runner import CURSORS, SCHEMA, Subscriber, until, write
from tests.live.test_runner import broker as broker  # the fixture

REFERENCE = create_schema(read_strategy="reference")
DOCUMENTS = 60

DIRECTIVES = ["", "", "", " @include(if: $on)", " @skip(if: $on)", " @skip(if: false)"]
LEAVES = ["cursor", "kind", "status", "previousStatus", "at", "__typename"]
# Instance selections: the first two compile, the third does not (stats fields are served by
# the reference strategy only), so its events are answered the reference way on both.
INSTANCES = [
    "{ instanceId status }",
    "{ id jobName planTime nodes(first: 2) { totalCount nodes { name status } } }",
    "{ instanceId nodeStats(first: 1) { name runs } }",
]


@pytest.fixture
async def runners(broker: Broker, engine: AsyncEngine) -> AsyncIterator[tuple[Runner, Runner]]:
    compiled = Runner(SCHEMA, broker, engine, CURSORS, LiveLimits())
    reference = Runner(REFERENCE, broker, engine, CURSORS, LiveLimits())
    yield compiled, reference
    await compiled.close()
    await reference.close()


def _field(rng: random.Random, name: str, number: int, alias: bool) -> tuple[str, bool]:
    """One field of the selection (an alias may take another field's name, "status: kind",
    never a key used twice), and whether it carries a directive."""
    if alias or rng.random() < 0.3:
        name = f"{rng.choice(LEAVES[:5])}{number}: {name}"
    body = rng.choice(INSTANCES) if name.endswith("instance") else ""
    directive = rng.choice(DIRECTIVES)
    return f"{name}{directive} {body}".rstrip(), directive != ""


def _document(rng: random.Random) -> tuple[str, dict[str, Any], bool]:
    """(document, variables, whether the compiled strategy must answer it by projection)."""
    names = rng.sample(LEAVES, rng.randint(1, len(LEAVES)))
    if rng.random() < 0.7:
        names.insert(rng.randrange(len(names) + 1), "instance")
    if rng.random() < 0.15:  # the instance under two keys: the reference way
        names.append("instance")
    fields = [
        _field(rng, name, number, alias=name == "instance" and name in names[:number])
        for number, name in enumerate(names)
    ]
    parts = [text for text, _ in fields]
    fragment = ""
    if rng.random() < 0.3:  # part of it through a named or an inline fragment
        cut = rng.randrange(len(parts))
        inner = " ".join(parts[cut:])
        if rng.random() < 0.5:
            parts = [*parts[:cut], "...More"]
            fragment = f" fragment More on InstanceEvent {{ {inner} }}"
        else:
            parts = [*parts[:cut], f"... on InstanceEvent {{ {inner} }}"]
    on = ", $on: Boolean!" if "$on" in " ".join(parts) + fragment else ""
    document = (
        f"subscription($filter: InstanceFilter{on}) "
        f"{{ instanceEvents(filter: $filter) {{ {' '.join(parts)} }} }}{fragment}"
    )
    pairs = zip(fields, names, strict=True)
    instances = [directive for (_, directive), name in pairs if name == "instance"]
    plain = "nodeStats" not in document and (instances in ([], [False]))
    return document, {"on": rng.random() < 0.5}, plain


def _members(runner: Runner) -> int:
    return sum(len(group.members) for group in runner.groups.values())


async def test_compiled_events_equal_the_reference_ones(
    runners: tuple[Runner, Runner], engine: AsyncEngine
) -> None:
    compiled, reference = runners
    ws = (await new_workspace(engine)).name
    rng = random.Random(20261207)
    documents = [_document(rng) for _ in range(DOCUMENTS)]
    pairs = [
        (
            Subscriber(compiled, engine, ws, query, variables),
            Subscriber(reference, engine, ws, query, variables),
        )
        for query, variables, _ in documents
    ]
    try:
        # Every document is valid: every subscriber joins its group.
        await until(lambda: all(_members(runner) >= DOCUMENTS for runner in runners))
        # Instances are read when their events are delivered: each write is delivered to all
        # before the next, so that both strategies read the same state.
        writes = [
            [record(ws, 1, "RUNNING", nodes=["a", "b"]), record(ws, 2, "WAITING")],
            [record(ws, 1, "SUCCESS", nodes=["a", "b", "c"])],
            [record(ws, 2, "WAITING", nodes=["x"])],
        ]
        for done, records in enumerate(writes):
            await write(engine, *records)
            due = sum(len(each) for each in writes[: done + 1])
            await until(lambda due=due: all(len(s.results) == due for pair in pairs for s in pair))
        projected = 0
        for (query, variables, plain), (mine, theirs) in zip(documents, pairs, strict=True):
            assert mine.results == theirs.results, (query, variables)
            answers = [answer["instanceEvents"] for answer in mine.results]
            assert [answer.get("status") for answer in answers if "status" in answer] in (
                [],
                ["RUNNING", "WAITING", "SUCCESS", "WAITING"],
            )
            # The projection answered where it must: the raw data holds its JSON.
            if plain:
                shapes = {type(result.data["instanceEvents"]) for result in mine.raw}
                assert shapes == {orjson.Fragment}, query
                projected += 1
        assert projected >= DOCUMENTS // 3  # the sample exercises the projection
    finally:
        for pair in pairs:
            for subscriber in pair:
                await subscriber.close()


async def test_a_projected_event_is_its_result_without_an_executor_per_event(
    runners: tuple[Runner, Runner], engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """graphql-core copies the executor and completes the root field for every event; for an
    answer the projection made whole, the executor hands it back as the event's result
    (`CompiledExecutionContext.build_per_event_executor`), unless the root field is not written
    as one plain field (here: inside an inline fragment): then the event goes through
    graphql-core, with the same answer."""
    built: list[Any] = []
    parent = StrawberryGraphQLCoreExecutionContext.build_per_event_executor

    def counted(self: Any, payload: Any) -> Any:
        built.append(payload)
        return parent(self, payload)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "build_per_event_executor", counted)
    compiled, _ = runners
    ws = (await new_workspace(engine)).name
    selection = "{ cursor status instance { instanceId status } }"
    documents = {
        "instanceEvents": f"subscription {{ instanceEvents {selection} }}",
        "events": f"subscription {{ events: instanceEvents {selection} }}",
        "fragment": f"subscription {{ ... on Subscription {{ instanceEvents {selection} }} }}",
    }
    subscribers = {key: Subscriber(compiled, engine, ws, query) for key, query in documents.items()}
    try:
        await until(lambda: _members(compiled) >= len(documents))
        await write(engine, record(ws, 1, "RUNNING"))
        await until(lambda: all(len(s.results) == 1 for s in subscribers.values()))
        answers = {key: s.results[0] for key, s in subscribers.items()}
        assert answers["instanceEvents"]["instanceEvents"]["instance"] == {
            "instanceId": 1,
            "status": "RUNNING",
        }
        assert answers["events"] == {"events": answers["instanceEvents"]["instanceEvents"]}
        assert answers["fragment"] == answers["instanceEvents"]
        for key in ("instanceEvents", "events"):
            data = subscribers[key].raw[0].data
            assert isinstance(data[key], orjson.Fragment)
        # Built once: for the group whose root field is inside a fragment.
        assert len(built) == 1
        assert isinstance(built[0], orjson.Fragment)
    finally:
        for subscriber in subscribers.values():
            await subscriber.close()
