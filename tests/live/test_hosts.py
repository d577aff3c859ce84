"""Several hosts: two separate `jobql serve` processes (not workers of one) on one PostgreSQL.
A subscriber of either gets every event, whichever process took the write (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.conftest import drop_postgres_database
from tests.live.conftest import Server, serve
from tests.live.test_clients import EVENTS_SMALL, RECORD, _in_thread, _item, _migrate, _new_postgres


async def _subscribe(server: Server, job: str) -> websockets.ClientConnection:
    socket = await websockets.connect(
        server.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    )
    await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    payload = {"query": EVENTS_SMALL, "variables": {"filter": {"jobName": job}}}
    await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return socket


async def _received(socket: websockets.ClientConnection, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while len(events) < count:
        message = json.loads(await asyncio.wait_for(socket.recv(), 20))
        if message["type"] == "next":
            events.append(message["payload"]["data"]["instanceEvents"])
    return events


async def _exchange(a: Server, b: Server) -> None:
    on_a, on_b = await _subscribe(a, "hosts"), await _subscribe(b, "hosts")
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(timeout=30) as http:
        for n in range(10):  # alternately through each process
            target = a if n % 2 else b
            items = [_item("hosts", n, "RUNNING", at=1)]
            response = await http.post(
                f"{target.url}/graphql", json={"query": RECORD, "variables": {"input": items}}
            )
            assert "errors" not in response.json(), response.text
    for socket in (on_a, on_b):
        events = await _received(socket, 10)
        assert [e["instance"]["instanceId"] for e in events] == list(range(10))
        await socket.close()


def test_every_process_delivers_every_write(tmp_path: Path) -> None:
    name, engine = _in_thread(_new_postgres())
    url = engine.url.render_as_string(hide_password=False)
    try:
        _migrate(url)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        # No polling within the test's time: what one process writes reaches the other's
        # subscribers by NOTIFY alone.
        quiet = {"JOBQL_LIVE_POLL_INTERVAL": "600"}
        with serve(tmp_path / "a", url, **quiet) as a, serve(tmp_path / "b", url, **quiet) as b:
            asyncio.run(_exchange(a, b))
    finally:
        _in_thread(drop_postgres_database(name))
