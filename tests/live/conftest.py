"""Live tests: real `jobql serve` processes, and the protocols' reference clients from npm
(graphql-ws, graphql-sse) driven through `agent.mjs`.

`npm ci` in tests/live installs the clients (scripts/test does). Without node or them the tests
skip, and fail under CI=true, as the other e2e tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    STARTUP_TIMEOUT_S,
    _free_port,
    _healthy,
    _log_tail,
    _missing,
    _server_env,
    _stop,
)

LIVE_DIR = Path(__file__).resolve().parent
AGENT = LIVE_DIR / "agent.mjs"
NODE_PACKAGES = ("graphql-ws", "graphql-sse", "ws")

TOKENS = {
    "writer-secret": (["*"], ["read", "write"]),
    "ws1-reader": (["ws1"], ["read"]),
    "ws2-reader": (["ws2"], ["read"]),
}


def tokens_config() -> str:
    return json.dumps(
        [
            {
                "name": name,
                "sha256": hashlib.sha256(name.encode()).hexdigest(),
                "workspaces": workspaces,
                "scopes": scopes,
            }
            for name, (workspaces, scopes) in TOKENS.items()
        ]
    )


@pytest.fixture(scope="session")
def node_for_live() -> str:
    path = shutil.which("node")
    if path is None:
        _missing("node is not on PATH; install Node.js 20+ to run the live tests")
    for package in NODE_PACKAGES:
        if not (LIVE_DIR / "node_modules" / package / "package.json").is_file():
            _missing(
                f"{LIVE_DIR / 'node_modules' / package} is missing; run `npm ci` in {LIVE_DIR}"
            )
    return path


@dataclass
class Server:
    url: str
    database_url: str
    workdir: Path
    log: Path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"

    def jobql(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jobql", *args],
            cwd=self.workdir,
            env={**_server_env(), "JOBQL_DATABASE_URL": self.database_url},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


@contextlib.contextmanager
def serve(workdir: Path, database_url: str, *, workers: int = 1, **env: str) -> Iterator[Server]:
    """`jobql migrate`, then `jobql serve --workers N` until the block ends."""
    log_path = workdir / "server.log"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server_env = {**_server_env(), "JOBQL_DATABASE_URL": database_url, **env}
    migrated = subprocess.run(
        [sys.executable, "-m", "jobql", "migrate"],
        cwd=workdir,
        env=server_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    command = [
        *(sys.executable, "-m", "jobql", "serve", "--host", "127.0.0.1"),
        *("--port", str(port), "--workers", str(workers)),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=server_env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(base):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"jobql serve did not start:\n{_log_tail(log_path)}", pytrace=False)
            time.sleep(0.25)
        yield Server(base, database_url, workdir, log_path)
    finally:
        _stop(process)


@dataclass
class Agent:
    """agent.mjs: send commands, collect what the clients see."""

    process: asyncio.subprocess.Process
    seen: list[dict[str, Any]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            if line.strip():
                self.seen.append(json.loads(line))

    def of(self, sub: str, kind: str = "next") -> list[dict[str, Any]]:
        return [m for m in self.seen if m.get("sub") == sub and m["ev"] == kind]

    def closed(self, client: str) -> list[dict[str, Any]]:
        return [m for m in self.seen if m.get("client") == client and m["ev"] == "closed"]

    async def wait(
        self, condition: Callable[[], bool], within: float = 30.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + within
        while not condition():
            errors = [m for m in self.seen if m["ev"] == "agent-error"]
            assert not errors, errors
            if time.monotonic() > deadline:
                tail = json.dumps(self.seen[-5:], indent=1)[:3000]
                raise AssertionError(f"timed out waiting for {what}; last seen:\n{tail}")
            await asyncio.sleep(0.05)

    async def connect(self, client: str, url: str, **params: Any) -> None:
        await self.send(cmd="connect", client=client, url=url, params=params)

    async def subscribe(
        self, client: str, sub: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        await self.send(cmd="subscribe", client=client, sub=sub, query=query, variables=variables)


@pytest.fixture
async def agent(node_for_live: str) -> AsyncIterator[Agent]:
    process = await asyncio.create_subprocess_exec(
        node_for_live,
        str(AGENT),
        cwd=LIVE_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ},
        limit=64 * 1024 * 1024,
    )
    running = Agent(process)
    running.reader = asyncio.create_task(running._read())
    await running.wait(lambda: any(m["ev"] == "ready" for m in running.seen), what="agent")
    try:
        yield running
    finally:
        with contextlib.suppress(Exception):
            await running.send(cmd="exit")
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
        running.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running.reader
