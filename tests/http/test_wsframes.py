"""WebSocket frames of one event-loop turn go out in one write (jobql/http/wsframes.py), in order,
through a real uvicorn server and a real WebSocket client; an HTTP response's head and body too,
through a real HTTP client; and `jobql serve` uses both."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from jobql.cli import main
from jobql.http import wsframes
from jobql.http.wsframes import CoalescingHttpTools, CoalescingWebSockets

MESSAGES = 10


class Transport:
    """A transport that records its writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def test_one_turns_writes_go_out_once_in_order() -> None:
    inner = Transport()
    writer = wsframes._TurnWriter(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    for n in range(3):
        writer.write(b"frame%d;" % n)
    assert inner.writes == []  # not before the end of the turn
    assert writer.get_write_buffer_size() == 3 * len(b"frame0;")
    await asyncio.sleep(0)
    assert inner.writes == [b"frame0;frame1;frame2;"]
    writer.write(b"next")
    await asyncio.sleep(0)
    assert inner.writes[1:] == [b"next"]
    assert writer.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the transport's


async def test_close_writes_what_waits_and_abort_drops_it() -> None:
    inner = Transport()
    writer = wsframes._TurnWriter(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    writer.write(b"last words")
    writer.close()
    assert (inner.writes, inner.closed) == ([b"last words"], True)
    await asyncio.sleep(0)  # the scheduled flush finds nothing more
    assert inner.writes == [b"last words"]

    other = Transport()
    writer = wsframes._TurnWriter(other, asyncio.get_running_loop())  # type: ignore[arg-type]
    writer.write(b"never")
    writer.abort()
    await asyncio.sleep(0)
    assert (other.writes, other.aborted) == ([], True)


async def burst(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts, then sends MESSAGES text frames without a pause, then waits for the close."""
    assert scope["type"] == "websocket"
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    for n in range(MESSAGES):
        await send({"type": "websocket.send", "text": f"message {n}"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


NOW: list[bool] = []


async def sends_now(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Sends three frames through the scope's synchronous send (`SEND_TEXT_NOW`), recording what
    it answered; before the handshake it must refuse."""
    send_now = scope["extensions"][wsframes.SEND_TEXT_NOW]
    await receive()  # websocket.connect
    NOW.append(send_now(b"too early"))
    await send({"type": "websocket.accept"})
    NOW.extend(send_now(f"now {n}".encode()) for n in range(3))
    while (await receive())["type"] != "websocket.disconnect":
        pass


@contextlib.asynccontextmanager
async def server(port: int, app: Any = burst) -> AsyncIterator[None]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=CoalescingHttpTools,
        ws=CoalescingWebSockets,
        log_level="warning",
    )
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())
    while not running.started:  # noqa: ASYNC110 (uvicorn offers no event to wait for)
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        running.should_exit = True
        await task


def count_writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What each `_TurnWriter` hands its transport, one entry per write."""
    writes: list[bytes] = []
    flush = wsframes._TurnWriter.flush

    def counted(self: wsframes._TurnWriter) -> None:
        if self._waiting:
            writes.append(b"".join(self._waiting))
        flush(self)

    monkeypatch.setattr(wsframes._TurnWriter, "flush", counted)
    return writes


async def test_a_burst_of_frames_reaches_a_real_client_in_one_write(
    monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    # The connection starts as HTTP (CoalescingHttpTools) and is upgraded: its transport is
    # wrapped once, so the frames still leave with the turn.
    writes = count_writes(monkeypatch)
    url = f"ws://127.0.0.1:{unused_tcp_port}"
    async with server(unused_tcp_port), websockets.connect(url, compression=None) as client:
        received = [await asyncio.wait_for(client.recv(), 5) for _ in range(MESSAGES)]
    assert received == [f"message {n}" for n in range(MESSAGES)]
    # The handshake's response, then every frame of the burst in one write.
    burst_writes = [data for data in writes if b"message" in data]
    assert len(burst_writes) == 1
    assert all(f"message {n}".encode() in burst_writes[0] for n in range(MESSAGES))


async def test_frames_sent_now_through_the_scope_reach_a_real_client(
    unused_tcp_port: int,
) -> None:
    NOW.clear()
    url = f"ws://127.0.0.1:{unused_tcp_port}"
    async with (
        server(unused_tcp_port, sends_now),
        websockets.connect(url, compression=None) as client,
    ):
        received = [await asyncio.wait_for(client.recv(), 5) for _ in range(3)]
    assert received == ["now 0", "now 1", "now 2"]
    assert NOW == [False, True, True, True]


CHUNK = 32 * 1024


async def http_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """/small: a head and a body; /stream: ten chunks of CHUNK bytes sent in one turn."""
    assert scope["type"] == "http"
    if scope["path"] == "/small":
        body = b'{"data": {"ok": true}}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for n in range(10):
        chunk = bytes([ord("a") + n]) * CHUNK
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def test_an_http_response_leaves_in_one_write_and_a_stream_meets_flow_control(
    monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    writes = count_writes(monkeypatch)
    base = f"http://127.0.0.1:{unused_tcp_port}"
    async with server(unused_tcp_port, http_app), httpx.AsyncClient(base_url=base) as client:
        for _ in range(3):  # on one kept-alive connection
            small = await client.get("/small")
            assert (small.status_code, small.json()) == (200, {"data": {"ok": True}})
        answers = [data for data in writes if data.startswith(b"HTTP/1.1 200")]
        assert len(answers) == 3
        assert all(data.endswith(b'{"data": {"ok": true}}') for data in answers)

        writes.clear()
        streamed = await client.get("/stream")
    assert streamed.content == b"".join(bytes([ord("a") + n]) * CHUNK for n in range(10))
    # Not all 320 KiB held for the end of the turn: out whenever TURN_LIMIT bytes wait.
    assert len(writes) >= 5
    assert max(map(len, writes)) < wsframes.TURN_LIMIT + CHUNK + 100


def half_closing_get(port: int) -> bytes:
    """GET /small, then shutdown(SHUT_WR) at once (as `nc -N` and some health checks do), then
    read until the server closes."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /small HTTP/1.1\r\nhost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


async def test_a_client_that_half_closes_after_its_request_gets_the_answer(
    unused_tcp_port: int,
) -> None:
    # The event loop closes the transport on EOF itself, not through the writer: the answer
    # written in that turn must leave first.
    async with server(unused_tcp_port, http_app):
        answers = [await asyncio.to_thread(half_closing_get, unused_tcp_port) for _ in range(20)]
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    assert all(answer.endswith(b'{"data": {"ok": true}}') for answer in answers)


async def test_a_websocket_writes_what_waits_when_the_client_half_closes() -> None:
    # On EOF the event loop closes the real transport itself once `eof_received` returns.
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    inner = Transport()
    protocol = CoalescingWebSockets(config=Config(quiet), server_state=ServerState(), app_state={})
    protocol.connection_made(inner)  # type: ignore[arg-type]
    protocol.transport.write(b"a pong")
    assert inner.writes == []
    protocol.eof_received()
    assert inner.writes == [b"a pong"]
    protocol.connection_lost(None)


async def quiet(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts, then waits for the close."""
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def test_serve_runs_uvicorn_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JOBQL_DATABASE_URL", raising=False)
    monkeypatch.setenv("JOBQL_DEMO_INSTANCES", "20")
    assert main(["serve", "--port", "8124"]) == 0
    assert calls[0]["ws"] is CoalescingWebSockets
    assert calls[0]["http"] is CoalescingHttpTools
