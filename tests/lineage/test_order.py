"""Order-free and idempotent: any order of a DAG run's events, with repeats, gives the GraphQL
answer the events give in order (hypothesis draws the orders; the events go over HTTP to a live
jobql); concurrent posts (PostgreSQL: truly concurrent transactions) neither lose a merge nor
hand out an instance id twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openlineage.client.event_v2 import RunState
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.resolvers import lineage
from jobql.resolvers.context import RequestContext
from jobql.settings import DEFAULT_CURSOR_SECRET
from jobql.storage.identifiers import CursorCodec
from tests.factories import execute
from tests.lineage.support import INSTANCE_QUERY, DagRun, body, iso
from tests.rest.live import live_app

RUN = DagRun("nightly")
RETRY = DagRun("nightly", tasks={"load": str(uuid.uuid4())})  # the same DAG run, a second try
RETRY.run_id = RUN.run_id
# In the order they happened.
EVENTS = [
    body(RUN.event(RunState.START, 10, nominal=0)),
    body(RUN.task_event("extract", RunState.START, 11)),
    body(RUN.event(RunState.RUNNING, 12)),
    body(RUN.task_event("extract", RunState.COMPLETE, 20)),
    body(RUN.task_event("load", RunState.START, 21)),
    body(RUN.task_event("load", RunState.RUNNING, 22)),
    body(RUN.task_event("load", RunState.FAIL, 30, error="disk full")),
    body(RETRY.task_event("load", RunState.START, 40)),
    body(RETRY.task_event("load", RunState.COMPLETE, 50)),
    body(RUN.event(RunState.OTHER, 55)),
    body(RUN.event(RunState.COMPLETE, 60)),
]


@pytest.fixture(scope="module")
def server(engine: AsyncEngine) -> Iterator[str]:
    with live_app(engine) as url:
        yield url


def _send(
    http: httpx.Client, workspace: str, events: list[dict[str, Any]], run: DagRun = RUN
) -> Any:
    for event in events:
        answer = http.post("/api/v1/lineage", json=event, headers={"workspace": workspace})
        assert answer.status_code == 201, answer.text
    answer = http.post(
        "/graphql",
        json={"query": INSTANCE_QUERY, "variables": {"runIds": [run.run_id]}},
        headers={"workspace": workspace},
    )
    return answer.json()


def _orders(server: str) -> None:
    with httpx.Client(base_url=server) as http:
        in_order = _send(http, f"order_{uuid.uuid4().hex[:12]}", EVENTS)
        instance = in_order["data"]["instances"]["nodes"][0]
        assert (instance["status"], instance["startTime"], instance["endTime"]) == (
            "SUCCESS",
            iso(10),
            iso(60),
        )
        assert [
            (n["name"], n["status"], n["retryTimes"], n["startTime"], n["errorMessage"])
            for n in instance["nodes"]["nodes"]
        ] == [
            ("nightly.extract", "SUCCESS", 0, iso(11), None),
            ("nightly.load", "SUCCESS", 1, iso(40), None),
        ]

        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(
            order=st.permutations(range(len(EVENTS))),
            repeats=st.lists(
                st.tuples(st.integers(0, len(EVENTS) - 1), st.integers(0, len(EVENTS))),
                max_size=4,
            ),
        )
        def same_answer(order: list[int], repeats: list[tuple[int, int]]) -> None:
            sequence = list(order)
            for event, position in repeats:
                sequence.insert(position, event)
            answer = _send(http, f"order_{uuid.uuid4().hex[:12]}", [EVENTS[i] for i in sequence])
            assert answer == in_order, sequence

        same_answer()
        # The edge cases by name: children before their parent's first event, end before start.
        reverse = _send(http, f"order_{uuid.uuid4().hex[:12]}", EVENTS[::-1])
        assert reverse == in_order


async def test_any_order_of_events_gives_the_same_answer(server: str) -> None:
    await asyncio.to_thread(_orders, server)


async def test_a_parent_first_mentioned_by_its_tasks(engine: AsyncEngine, server: str) -> None:
    run = DagRun("mentioned")
    workspace = f"order_{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=server) as http:
        first = [body(run.task_event("t1", RunState.START, 5))]
        answer = _send(http, workspace, first, run)["data"]["instances"]["nodes"][0]
        assert (answer["status"], answer["planTime"], answer["startTime"]) == (
            "RUNNING",
            iso(5),
            None,
        )
        assert answer["job"]["namespace"] == "airflow://prod"
        later = [body(run.event(RunState.START, 3, nominal=0))]
        answer = _send(http, workspace, later, run)["data"]["instances"]["nodes"][0]
        assert (answer["status"], answer["planTime"], answer["startTime"]) == (
            "RUNNING",
            iso(0),
            iso(3),
        )


async def _record(engine: AsyncEngine, workspace: str, event: dict[str, Any]) -> Any:
    ctx = RequestContext.open(engine, CursorCodec(DEFAULT_CURSOR_SECRET), workspace)
    try:
        return await lineage.record_event(ctx, event)
    finally:
        await ctx.close()


async def test_concurrent_posts(engine: AsyncEngine) -> None:
    workspace = f"order_{uuid.uuid4().hex[:12]}"
    runs = [DagRun("busy") for _ in range(8)]
    results = await asyncio.gather(
        *(_record(engine, workspace, body(run.event(RunState.START, 0))) for run in runs)
    )
    assert sorted(result.instance_id for result in results) == list(range(1, 9))
    # All events of one run at once: the merge loses none of them.
    run = DagRun("busy")
    await asyncio.gather(*(_record(engine, workspace, event) for event in _events_of(run)))
    settled = await _record(engine, workspace, body(run.event(RunState.START, 0)))
    assert settled.outcome.value == "UNCHANGED"
    assert settled.instance_id == 9
    answer = await execute(engine, INSTANCE_QUERY, {"runIds": [run.run_id]}, workspace=workspace)
    (merged,) = answer.data["instances"]["nodes"]
    assert (merged["status"], merged["startTime"], merged["endTime"]) == ("SUCCESS", iso(0), iso(9))
    assert [n["name"] for n in merged["nodes"]["nodes"]] == [f"busy.t{i}" for i in range(6)]


def _events_of(run: DagRun) -> list[dict[str, Any]]:
    return [
        body(run.event(RunState.START, 0)),
        body(run.event(RunState.COMPLETE, 9)),
        *(body(run.task_event(f"t{i}", RunState.COMPLETE, i)) for i in range(6)),
    ]
