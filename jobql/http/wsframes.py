"""WebSocket connections that write the frames of one event-loop turn together.

A batch of events wakes every subscription stream at once, and each stream sends its message as
soon as it is shaped: a connection that carries ten subscriptions of the batch's job gets ten
frames within one turn of the event loop. uvicorn writes each frame to the socket as it comes,
one `send(2)` each, and on loopback or a virtual machine the system call costs more than making
the frame (measured: a quarter of a worker's CPU at 1,000 subscribers, bench/live.py). Here the
frames of one turn are joined and written once, at the end of the turn: the same bytes in the
same order, at most one turn later.

`CoalescingWebSockets` is uvicorn's sans-I/O WebSocket protocol (what `ws="auto"` picks) with its
transport wrapped in `_TurnWriter`; `jobql serve` passes it as uvicorn's `ws`. It also offers the
application, in its ASGI scope's extensions (`SEND_TEXT_NOW`), a synchronous send of one text
frame: a subscription group hands each result to its waiting subscribers at once instead of
waking each subscriber's task to `await send` it (jobql/http/subscriptions.py).

HTTP answers the same way: uvicorn writes a response's status line and headers, then its body,
each with its own `send(2)`; `CoalescingHttpTools` (uvicorn's httptools protocol, what
`http="auto"` picks, on the same `_TurnWriter`) sends a fast-lane answer in one (measured on W2:
a system call was a sixth of a worker's CPU, three per request).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

__all__ = ["SEND_TEXT_NOW", "CoalescingHttpTools", "CoalescingWebSockets"]

# The scope extension: `send(data: bytes) -> bool`, True when the text frame was sent.
SEND_TEXT_NOW = "jobql.send_text_now"

# What may wait for the end of a turn: more goes out at once, so that a response streamed in
# one turn meets the transport's flow control (pause_writing) as it would unwrapped.
TURN_LIMIT = 64 * 1024


class _TurnWriter:
    """A transport whose writes wait for the end of the event loop's turn and go out as one.
    Everything else is the wrapped transport's; closing writes what waits first."""

    __slots__ = ("_inner", "_loop", "_size", "_waiting")

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop
        self._waiting: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._waiting:
            self._loop.call_soon(self.flush)
        self._waiting.append(bytes(data))
        self._size += len(data)
        if self._size >= TURN_LIMIT:
            self.flush()

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        if not self._waiting:
            return
        data = self._waiting[0] if len(self._waiting) == 1 else b"".join(self._waiting)
        self._waiting.clear()
        self._size = 0
        if not self._inner.is_closing():
            self._inner.write(data)

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def abort(self) -> None:
        self._waiting.clear()
        self._size = 0
        self._inner.abort()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + self._size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _turn_writer(transport: asyncio.BaseTransport) -> _TurnWriter:
    if isinstance(transport, _TurnWriter):  # a WebSocket upgraded from CoalescingHttpTools
        return transport
    return _TurnWriter(transport, asyncio.get_running_loop())  # type: ignore[arg-type]


class CoalescingHttpTools(HttpToolsProtocol):
    """uvicorn's httptools HTTP protocol, writing each event-loop turn's bytes at once: a
    response's head and body together."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_turn_writer(transport))  # type: ignore[arg-type]

    def eof_received(self) -> None:
        # The client half-closed: the event loop closes the wrapped transport itself when this
        # returns (not through `_TurnWriter.close`), so what waits is written first.
        self.transport.flush()  # type: ignore[attr-defined]
        return super().eof_received()


class CoalescingWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, writing each event-loop turn's frames at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_turn_writer(transport))  # type: ignore[arg-type]

    def eof_received(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]  # as CoalescingHttpTools does
        return super().eof_received()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][SEND_TEXT_NOW] = self.send_text_now

    def send_text_now(self, data: bytes) -> bool:
        """One text frame (UTF-8 `data`), sent as uvicorn's `websocket.send` sends it, without
        waiting: False, and nothing sent, when it cannot go now (before the handshake, after a
        close, or while the transport asks to pause writing): the caller then awaits the ASGI
        send, which waits for that."""
        if (
            not self.handshake_complete
            or self.initial_response is not None
            or self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        self.conn.send_text(data)
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True
