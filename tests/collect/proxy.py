"""A fault-injecting HTTP proxy between the collector and the upstream jobql.

Every request is read whole, then either forwarded (and the answer relayed) or answered with a
fault, as `decide(exchange)` says:
- `500`, `502`, `503`: a server error in the vendor's own body (a gateway's HTML page for 502);
- `throttle`: the vendor's throttling answer: Huawei's API gateway 429 `APIGW.0308`, SchedulerX's
  400 `Throttling.User`, Realtime Compute's 503 `Throttling`;
- `timeout`: no answer at all (the client's read timeout ends it);
- `reset`: the connection is reset (TCP RST) instead of an answer;
- `slow`: the real answer, late (within the client's timeout);
- `malformed`: the real status and headers with half the body (a truncated JSON document);
- `truncated`: the real head, then half the body and the connection closes (a short read).
Answers close the connection (every request opens one), as `Connection: close` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

FAULTS = ("500", "502", "503", "throttle", "timeout", "reset", "slow", "malformed", "truncated")


@dataclass
class Exchange:
    method: str
    target: str
    headers: dict[str, str]
    head: bytes
    body: bytes

    @property
    def vendor(self) -> str:
        if self.target.startswith(("/v1/", "/v2/")):
            return "dlf"
        if self.target.startswith("/api/v2/"):
            return "flink"
        return "schedulerx"


@dataclass
class Seen:
    at: float
    vendor: str
    target: str
    fault: str | None


Decide = Callable[[Exchange], str | None]


def never(_exchange: Exchange) -> str | None:
    return None


def every(step: int, faults: Iterable[str] = FAULTS, vendor: str | None = None) -> Decide:
    """A fault on every `step`-th request (of `vendor`), the kinds in turn."""
    kinds = itertools.cycle(list(faults))
    count = itertools.count(1)

    def decide(exchange: Exchange) -> str | None:
        if vendor is not None and exchange.vendor != vendor:
            return None
        return next(kinds) if next(count) % step == 0 else None

    return decide


def mostly(faults: Iterable[str] = FAULTS, answered: int = 3) -> Decide:
    """Faults on every request but each `answered`-th, the kinds in turn (so no request fails
    more than `answered - 1` times in a row)."""
    kinds = itertools.cycle(list(faults))
    count = itertools.count(1)

    def decide(_exchange: Exchange) -> str | None:
        return None if next(count) % answered == 0 else next(kinds)

    return decide


def at_random(rng: random.Random, probability: float, faults: Iterable[str] = FAULTS) -> Decide:
    kinds = list(faults)

    def decide(_exchange: Exchange) -> str | None:
        return rng.choice(kinds) if rng.random() < probability else None

    return decide


@dataclass
class FaultProxy:
    upstream: str
    decide: Decide = never
    # How long a `timeout` holds the request (longer than the client's timeout), how late `slow`.
    hold: float = 3.0
    slow: float = 0.3
    seen: list[Seen] = field(default_factory=list)

    async def start(self) -> None:
        parts = urlsplit(self.upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    def injected(self, vendor: str | None = None) -> list[str]:
        return [s.fault for s in self.seen if s.fault and vendor in (None, s.vendor)]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            exchange = await self._read(reader)
            if exchange is None:
                return
            fault = self.decide(exchange)
            self.seen.append(Seen(time.monotonic(), exchange.vendor, exchange.target, fault))
            await self._answer(exchange, fault, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Exchange | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        return Exchange(method, target, headers, head, body)

    async def _answer(
        self, exchange: Exchange, fault: str | None, writer: asyncio.StreamWriter
    ) -> None:
        if fault in ("500", "502", "503", "throttle"):
            writer.write(_error(exchange.vendor, fault))
            await writer.drain()
            return
        if fault == "timeout":
            await asyncio.sleep(self.hold)
            return
        if fault == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        status_line, headers, body = await self._forward(exchange)
        if fault == "slow":
            await asyncio.sleep(self.slow)
        if fault == "malformed":
            body = body[: len(body) // 2]
        length = len(body)
        if fault == "truncated":
            body = body[: len(body) // 2]
        writer.write(_response(status_line, headers, body, length))
        await writer.drain()

    async def _forward(self, exchange: Exchange) -> tuple[str, list[tuple[str, str]], bytes]:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            lines = exchange.head.decode("latin-1").split("\r\n")
            kept = [
                line for line in lines[1:] if line and not line.lower().startswith("connection:")
            ]
            request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
            writer.write(request + exchange.body)
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        head_lines = head.decode("latin-1").split("\r\n")
        headers = []
        for line in head_lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() not in ("connection", "content-length", "transfer-encoding"):
                headers.append((name.strip(), value.strip()))
        if any(line.lower().startswith("transfer-encoding: chunked") for line in head_lines):
            body = _dechunk(body)
        return head_lines[0], headers, body


def _response(status_line: str, headers: list[tuple[str, str]], body: bytes, length: int) -> bytes:
    lines = [status_line, *(f"{name}: {value}" for name, value in headers)]
    lines += [f"content-length: {length}", "connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


def _error(vendor: str, fault: str) -> bytes:
    request_id = str(uuid.uuid4()).upper()
    headers = [("content-type", "application/json"), ("x-request-id", request_id)]
    status = {"500": "500 Internal Server Error", "502": "502 Bad Gateway"}.get(
        fault, "503 Service Unavailable"
    )
    if fault == "502":
        body = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
        headers[0] = ("content-type", "text/html")
    elif vendor == "dlf":
        if fault == "throttle":
            status = "429 Too Many Requests"
            payload = {
                "error_code": "APIGW.0308",
                "error_msg": "The throttling threshold has been reached: policy user over "
                "ratelimit,limit:20,time:1 minute",
                "request_id": request_id,
            }
        else:
            payload = {"error_code": "DLF.0500", "error_msg": "Internal server error."}
        body = json.dumps(payload).encode()
    else:
        host = f"{vendor}.cn-hangzhou.aliyuncs.com"
        if fault == "throttle" and vendor == "schedulerx":
            status = "400 Bad Request"
            payload = {
                "RequestId": request_id,
                "HostId": host,
                "Code": "Throttling.User",
                "Message": "Request was denied due to user flow control.",
            }
        elif fault == "throttle":
            payload = {
                "RequestId": request_id,
                "HostId": host,
                "Code": "Throttling",
                "Message": "Request was denied due to request throttling.",
            }
        else:
            payload = {
                "RequestId": request_id,
                "HostId": host,
                "Code": "ServiceUnavailable",
                "Message": "The request has failed due to a temporary failure of the server.",
            }
        body = json.dumps(payload).encode()
    return _response(f"HTTP/1.1 {status}", headers, body, len(body))
