"""GraphQL over SSE end to end: a subscriber that stops reading falls behind and is dropped
with SUBSCRIBER_TOO_SLOW (or cut, when not even that goes out), while writes and a subscriber
that keeps reading go on."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from pathlib import Path
from typing import Any

import httpx

from tests.live.conftest import Server, serve
from tests.live.test_clients import BIG, EVENTS_SMALL, RECORD, _item, _migrate

FILTER = {"filter": {"jobName": "sse_slow"}}
COUNT = 300


def _request(server: Server, query: str) -> bytes:
    body = json.dumps({"query": query, "variables": FILTER}).encode()
    host = server.url.removeprefix("http://")
    return (
        f"POST /graphql/stream HTTP/1.1\r\nHost: {host}\r\n"
        "Accept: text/event-stream\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _stalled(server: Server) -> socket.socket:
    """A subscriber with a tiny receive buffer that reads nothing after subscribing."""
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = server.url.removeprefix("http://").split(":")
    stalled.connect((host, int(port)))
    stalled.sendall(_request(server, BIG))
    return stalled


async def _steady(server: Server, seen: list[dict[str, Any]], ready: asyncio.Event) -> None:
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream(
            "POST",
            f"{server.url}/graphql/stream",
            json={"query": EVENTS_SMALL, "variables": FILTER},
            headers={"accept": "text/event-stream"},
        ) as response,
    ):
        assert response.status_code == 200
        ready.set()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if len(seen) >= COUNT:
                    return


async def _run(server: Server) -> tuple[list[dict[str, Any]], bytes]:
    stalled = _stalled(server)
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    steady = asyncio.create_task(_steady(server, seen, ready))
    await ready.wait()
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(timeout=60) as http:
        for start in range(0, COUNT, 20):
            items = [
                # Incompressible and large: the stalled socket's buffers fill up.
                {
                    **_item("sse_slow", i, "RUNNING", at=1),
                    "runtime": {"code": secrets.token_urlsafe(20_000)},
                }
                for i in range(start, start + 20)
            ]
            response = await http.post(
                f"{server.url}/graphql", json={"query": RECORD, "variables": {"input": items}}
            )
            assert "errors" not in response.json(), response.text[:500]
    await asyncio.wait_for(steady, 60)
    # Now read what the stalled subscriber was sent: its stream must have ended.
    stalled.settimeout(30)
    received = b""
    while True:
        chunk = await asyncio.to_thread(stalled.recv, 1 << 20)
        if not chunk:
            break
        received += chunk
    stalled.close()
    return seen, received


def test_a_stalled_sse_subscriber_is_dropped_and_others_go_on(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sse.db'}"
    _migrate(url)
    with serve(tmp_path, url, JOBQL_LIVE_QUEUE_SIZE="20") as server:
        seen, received = asyncio.run(_run(server))
    assert [event["data"]["instanceEvents"]["instance"]["instanceId"] for event in seen] == list(
        range(COUNT)
    )
    nexts = received.count(b"event: next")
    assert nexts < COUNT  # it was dropped before it got them all
    # The server ended its stream (the read above saw the end): with a last `next` that says
    # why when that could still go out, else by cutting it; never with `complete`, which would
    # tell the client the subscription is over rather than to resubscribe.
    assert b"event: complete" not in received
    if b"SUBSCRIBER_TOO_SLOW" in received:
        assert received.count(b"SUBSCRIBER_TOO_SLOW") == 1
        assert received.rindex(b"SUBSCRIBER_TOO_SLOW") > received.rindex(b"event: next")
