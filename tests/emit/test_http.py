"""The client's real HTTP transport (OPENLINEAGE_URL, OPENLINEAGE_API_KEY) against a small
receiver (Starlette under uvicorn on a free port): the wire requests; a receiver that answers
500 for a while gets every event once it recovers."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jobql.emit.client import Sender
from jobql.emit.emitter import Emitter
from tests.emit.support import RECORD, openlineage_env
from tests.factories import data_of, new_workspace


class Receiver:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.refuse = 0  # answer 500 to this many more requests

    async def lineage(self, request: Request) -> JSONResponse:
        body = await request.body()
        if self.refuse > 0:
            self.refuse -= 1
            return JSONResponse({"error": "down"}, status_code=500)
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
