"""Request bodies: the size limit on every route, and what happens to a body left unread.

An answer sent before the body was read (a 413, 401, 503, 405 ...) must reach every client.
uvicorn closes the connection once the response is complete when the client asked it to
(`Connection: close`, as Python's urllib does) or when the server chose to; a client still
uploading then gets a TCP reset instead of the answer, because the kernel resets a connection
closed with unread data. Over keep-alive, uvicorn reads and drops the rest of the body itself,
with no bound at all. `LingeringClose` reads the rest before completing the answer, within a
bound, and then closes.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobql.asgi import send_error

# After an early answer, at most this many times JOBQL_MAX_BODY_BYTES (and never less than
# DRAIN_MIN_BYTES) of the body is read and dropped, for at most DRAIN_SECONDS; then the
# connection is closed, read to the end or not. 64 MiB takes well under a second on a LAN,
# and any client sending at 16 Mbit/s or more gets 10 MB uploads through.
DRAIN_FACTOR = 16
DRAIN_MIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 5.0


class BodyLimit:
    """ASGI middleware: a request whose Content-Length is over `max_bytes` is answered 413
    before anything else runs, on every route but `exempt` (the GraphQL endpoint answers its
    own 413, in the media type the client negotiated). A chunked body declares no length; the
    routes that read bodies count it while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.exempt:
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                    await send_error(
                        send,
                        413,
                        f"The request body is larger than {self.max_bytes} bytes.",
                        "PAYLOAD_TOO_LARGE",
                    )
                    return
        await self.app(scope, receive, send)


class LingeringClose:
    """ASGI middleware, the outermost: when an answer starts before the request body was read
    to its end, its last (empty) part waits until the rest of the body has been read and
    dropped (within the drain bound). The answer itself (with its Content-Length) reaches the
    client at once. A body over the limit or of unknown length (chunked) gets `Connection:
    close` and the connection closes after the answer; one within the limit (a 401 to an
    ordinary request) is read to its end and the connection stays open.

    A client that sent `Expect: 100-continue` and was answered before anything asked for the
    body (uvicorn sends `100 Continue` on the first `receive()`) has sent no body: nothing is
    read, and the connection closes after the answer."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.drain_bytes = max(DRAIN_FACTOR * max_body_bytes, DRAIN_MIN_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = expects_continue = False
        declared: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                has_body = value != b"0"
                declared = int(value) if value.isdigit() else None
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"expect":
                expects_continue = value.lower() == b"100-continue"
        if not has_body:  # GETs and other bodiless requests: nothing to keep track of
            await self.app(scope, receive, send)
            return
        # A body within the limit (a 401 or 503 to an ordinary request) is read to its end
        # and the connection stays open; only a larger or unmeasured one closes it.
        keep_alive = declared is not None and declared <= self.max_body_bytes
        cycle = _Cycle(receive, send, expects_continue, keep_alive)
        try:
            await self.app(scope, cycle.receive, cycle.send)
        finally:
            if cycle.held:
                await cycle.finish(self.drain_bytes)


class _Cycle:
    """One request's body and answer, as `LingeringClose` watches them."""

    def __init__(
        self, receive: Receive, send: Send, expects_continue: bool, keep_alive: bool
    ) -> None:
        self._receive = receive
        self._send = send
        self.keep_alive = keep_alive and not expects_continue
        self.read = 0
        self.body_done = False
        # Without a receive() before the answer, an Expect: 100-continue client was never told
        # to send its body.
        self.body_coming = not expects_continue
        self.started = False
        self.held = False

    async def receive(self) -> Message:
        if not self.started:
            self.body_coming = True
        message = await self._receive()
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            self.body_done = not message.get("more_body", False)
        else:  # http.disconnect: nothing more will come
            self.body_done = True
        return message

    async def send(self, message: Message) -> None:
        if self.body_done:
            await self._send(message)
        elif message["type"] == "http.response.start":
            self.started = True
            if self.keep_alive:
                await self._send(message)
                return
            headers = [
                (name, value)
                for name, value in message.get("headers", [])
                if name.lower() != b"connection"
            ]
            headers.append((b"connection", b"close"))
            await self._send({**message, "headers": headers})
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            # The answer goes out now; its end waits for finish().
            self.held = True
            if message.get("body"):
                await self._send({**message, "more_body": True})
        else:
            await self._send(message)

    async def finish(self, drain_bytes: int) -> None:
        try:
            if self.body_coming:
                async with asyncio.timeout(DRAIN_SECONDS):
                    while not self.body_done and self.read < drain_bytes:
                        await self.receive()
        except TimeoutError:
            pass
        finally:
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
