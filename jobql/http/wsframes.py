"""WebSocket connections that write the frames of one event-loop turn together.

A batch of events wakes every subscription stream at once, and each stream sends its message as
soon as it is shaped: a connection that carries ten subscriptions of the batch's job gets ten
frames within one turn of the event loop. uvicorn writes each frame to the socket as it comes,
one `send(2)` each, and on loopback or a virtual machine the system call costs more than making
the frame (measured: a quarter of a worker's CPU at 1,000 subscribers, bench/live.py). Here the
frames of one turn are joined and written once, at the end of the turn: the same bytes in the
same order, at most one turn later.

`CoalescingWebSockets` is uvicorn's sans-I/O WebSocket protocol (what `ws="auto"` picks) with its
transport wrapped in `_TurnWriter`; `jobql serve` passes it as uvicorn's `ws`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

__all__ = ["CoalescingWebSockets"]


class _TurnWriter:
    """A transport whose writes wait for the end of the event loop's turn and go out as one.
    Everything else is the wrapped transport's; closing writes what waits first."""

    __slots__ = ("_inner", "_loop", "_waiting")

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop
        self._waiting: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._waiting:
            self._loop.call_soon(self.flush)
        self._waiting.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        if not self._waiting:
            return
        data = self._waiting[0] if len(self._waiting) == 1 else b"".join(self._waiting)
        self._waiting.clear()
        if not self._inner.is_closing():
            self._inner.write(data)

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def abort(self) -> None:
        self._waiting.clear()
        self._inner.abort()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + sum(map(len, self._waiting))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CoalescingWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, writing each event-loop turn's frames at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = _TurnWriter(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        super().connection_made(writer)  # type: ignore[arg-type]
