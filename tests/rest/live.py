"""The whole app in a real HTTP server, for the vendor SDKs: they are synchronous clients that
speak HTTP themselves, so jobql runs in uvicorn on a free port in a thread of its own."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.app import create_app
from jobql.settings import Settings

STARTUP_TIMEOUT_S = 30.0


@contextmanager
def live_app(engine: AsyncEngine | str, **settings: Any) -> Iterator[str]:
    """`http://127.0.0.1:<port>` of the app as `jobql serve` builds it, on `engine`'s database
    (or that URL; and `settings`, such as tokens), until the block ends."""
    url = engine if isinstance(engine, str) else engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, **settings))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            assert thread.is_alive(), "the server thread ended before it started serving"
            assert time.monotonic() < deadline, f"no server on {port} after {STARTUP_TIMEOUT_S} s"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT_S)
        sock.close()
