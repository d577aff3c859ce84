"""The client's real HTTP transport (OPENLINEAGE_URL, OPENLINEAGE_API_KEY) against a small
receiver (Starlette under uvicorn on a free port): the wire requests; a receiver that answers
500 for a while gets every event once it recovers; one that refuses an event for good (422) does
not hold the later ones back, and one that refuses the credentials (401) gets everything once
they are right."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jobql.emit.client import Sender
from jobql.emit.emitter import Emitter
from jobql.emit.runs import RUN_ID_NAMESPACE
from tests.emit.support import RECORD, openlineage_env
from tests.factories import data_of, new_workspace


class Receiver:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.refuse = 0  # answer 500 to this many more requests
        # Answer this status to the events of these runs, every time (a receiver that
        # finds them invalid).
        self.invalid: dict[str, int] = {}
        self.refusals = 0

    async def lineage(self, request: Request) -> JSONResponse:
        body = await request.body()
        if self.refuse > 0:
            self.refuse -= 1
            return JSONResponse({"error": "down"}, status_code=500)
        status = self.invalid.get(json.loads(body)["run"]["runId"])
        if status is not None:
            self.refusals += 1
            return JSONResponse({"error": "facet jobql: not valid"}, status_code=status)
        self.requests.append(
            {"path": request.url.path, "headers": dict(request.headers), "body": json.loads(body)}
        )
        return JSONResponse({}, status_code=201)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    state = Receiver()
    app = Starlette(routes=[Route("/api/v1/lineage", state.lineage, methods=["POST"])])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.01)
    yield state, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_http_transport_on_the_wire(
    engine: AsyncEngine, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    ws = (await new_workspace(engine)).name
    item = {
        "jobName": "dag",
        "instanceId": 7,
        "status": "SUCCESS",
        "planTime": "2026-12-01T02:00:00Z",
        "startTime": "2026-12-01T02:00:01Z",
        "endTime": "2026-12-01T02:00:09Z",
    }
    await data_of(engine, RECORD, {"input": [item]}, workspace=ws)
    state.refuse = 2  # the HTTP transport retries 5xx itself (urllib3 Retry)
    with openlineage_env(OPENLINEAGE_URL=url, OPENLINEAGE_API_KEY="s3cret"):
        emitter = Emitter(
            engine,
            Sender.from_environment(),
            name=f"test-{uuid.uuid4().hex[:8]}",
            workspace=ws,
            backoff=0.01,
            backoff_max=0.05,
        )
        assert emitter.sender.kind == "http"
        await emitter.run(once=True)
        await emitter.close()
    assert state.refuse == 0
    assert [r["path"] for r in state.requests] == ["/api/v1/lineage"] * 2
    headers = state.requests[0]["headers"]
    assert headers["authorization"] == "Bearer s3cret"
    assert headers["content-type"] == "application/json"
    bodies = [r["body"] for r in state.requests]
    assert [(b["eventType"], b["eventTime"]) for b in bodies] == [
        ("START", "2026-12-01T02:00:01.000Z"),
        ("COMPLETE", "2026-12-01T02:00:09.000Z"),
    ]
    assert bodies[0]["run"]["runId"] == bodies[1]["run"]["runId"]
    assert bodies[0]["run"]["facets"]["jobql"]["instanceId"] == 7
    assert bodies[0]["job"] == {"namespace": f"jobql/{ws}", "name": "dag", "facets": {}}


def _items(*ids: int) -> list[dict[str, Any]]:
    return [
        {
            "jobName": "dag",
            "instanceId": n,
            "status": "SUCCESS",
            "planTime": "2026-12-01T02:00:00Z",
            "startTime": "2026-12-01T02:00:01Z",
            "endTime": "2026-12-01T02:00:09Z",
        }
        for n in ids
    ]


async def test_an_event_refused_for_good_is_logged_and_passed_over(
    engine: AsyncEngine, receiver: tuple[Receiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    state, url = receiver
    ws = (await new_workspace(engine)).name
    await data_of(engine, RECORD, {"input": _items(1, 2, 3)}, workspace=ws)
    run_of_2 = _run_id(ws, 2)
    state.invalid = {run_of_2: 422}
    refused_before = _refused_total()
    with openlineage_env(OPENLINEAGE_URL=url):
        emitter = _emitter(engine, ws)
        await asyncio.wait_for(emitter.run(once=True), 30)
        # Everything is covered: the cursor is past the refused events.
        again = _emitter(engine, ws, name=emitter.name)
        await asyncio.wait_for(again.run(once=True), 30)
        await again.close()
        await emitter.close()
    runs = [r["body"]["run"]["runId"] for r in state.requests]
    assert run_of_2 not in runs
    assert len(runs) == 4  # START and COMPLETE of instances 1 and 3, once each
    assert state.refusals == 2  # its START and COMPLETE, each refused once, never sent again
    assert (emitter.sent, emitter.refused, again.sent) == (4, 2, 0)
    assert _refused_total() - refused_before == 2
    logged = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(logged) == 2
    assert run_of_2 in logged[0]
    assert "HTTP 422" in logged[0]
    assert "not valid" in logged[0]


async def test_refused_credentials_hold_every_event_until_they_are_accepted(
    engine: AsyncEngine, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    ws = (await new_workspace(engine)).name
    await data_of(engine, RECORD, {"input": _items(1)}, workspace=ws)
    run = _run_id(ws, 1)
    state.invalid = {run: 401}
    with openlineage_env(OPENLINEAGE_URL=url):
        emitter = _emitter(engine, ws)
        running = asyncio.create_task(emitter.run(once=True))
        while state.refusals < 3:  # noqa: ASYNC110 (retried, not passed over)
            await asyncio.sleep(0.01)
        assert not running.done()
        state.invalid = {}
        await asyncio.wait_for(running, 30)
        await emitter.close()
    assert [r["body"]["run"]["runId"] for r in state.requests] == [run, run]
    assert (emitter.sent, emitter.refused) == (2, 0)


def _emitter(engine: AsyncEngine, workspace: str, *, name: str | None = None) -> Emitter:
    return Emitter(
        engine,
        Sender.from_environment(),
        name=name or f"test-{uuid.uuid4().hex[:8]}",
        workspace=workspace,
        backoff=0.01,
        backoff_max=0.05,
    )


def _run_id(workspace: str, instance_id: int) -> str:
    """The run id the emitter gives an instance that came without one (jobql.emit.runs)."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, json.dumps([workspace, "dag", instance_id])))


def _refused_total() -> float:
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "jobql_lineage_events_refused"
        for sample in family.samples
        if sample.name == "jobql_lineage_events_refused_total"
    )
