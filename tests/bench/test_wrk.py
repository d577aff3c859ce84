"""The load generator counts what a load test must not count as served: non-200 answers and 200
answers with GraphQL `errors`, by kind (the benchmark's `failed` column)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench import measure, procs

ANSWERS = [
    (200, b'{"data":{"ok":true}}'),
    (200, b'{"errors":[{"message":"no"}],"data":null}'),
    (503, b'{"errors":[{"message":"busy"}]}'),
    (500, b"oops"),
    (400, b'{"errors":[{"message":"bad"}]}'),
]


@pytest.fixture
def server() -> Iterator[str]:
    turns = itertools.cycle(ANSWERS)

    async def answer(_request: Request) -> Response:
        status, body = next(turns)
        return Response(body, status_code=status, media_type="application/json")

    app = Starlette(routes=[Route("/graphql", answer, methods=["POST"])])
    port = procs.free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/graphql"
    running.should_exit = True
    thread.join(timeout=10)


def test_wrk_counts_failures_by_kind(server: str) -> None:
    result = measure.wrk(server, b'{"query": "{ ok }"}', connections=1, seconds=1, threads=1)
    kinds = result["failed_by"]
    assert result["responses"] >= 10
    assert set(kinds) == {"200 errors", "503", "5xx", "4xx"}
    assert all(count >= 1 for count in kinds.values()), kinds
    assert result["failures"] == sum(kinds.values())
    served = result["responses"] - result["failures"]
    # One answer in five is a clean 200; req/s counts only those.
    assert abs(served * 5 - result["responses"]) <= 5
    assert result["req_s"] == pytest.approx(served / (result["duration_us"] / 1e6))
