"""The WebSocket adapter of graphql-transport-ws: a send after the connection closed is the
protocol handler's "disconnected" (its operation ends quietly), never an error in the log."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.websockets import WebSocket, WebSocketState
from strawberry.http.exceptions import WebSocketDisconnected

from jobql.http.endpoint import TextWebSocketAdapter


def closed_socket() -> WebSocket:
    async def receive() -> dict[str, Any]:
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(_message: dict[str, Any]) -> None:
        raise AssertionError("nothing may be sent on a closed connection")

    socket = WebSocket({"type": "websocket", "path": "/graphql", "headers": []}, receive, send)
    # This side already sent its close frame (the client closed first, or the subscriber was
    # cut): Starlette refuses any later send with its own WebSocketDisconnected.
    socket.client_state = WebSocketState.CONNECTED
    socket.application_state = WebSocketState.DISCONNECTED
    return socket


async def test_a_send_after_close_is_a_disconnect() -> None:
    adapter = TextWebSocketAdapter.__new__(TextWebSocketAdapter)
    adapter.ws = closed_socket()
    with pytest.raises(WebSocketDisconnected):
        await adapter.send_json({"type": "next", "id": "1", "payload": {"data": None}})
    with pytest.raises(WebSocketDisconnected):
        await adapter.send_text(b'{"type":"next","id":"1","payload":{"data":null}}')
