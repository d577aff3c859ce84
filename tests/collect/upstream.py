"""Real jobql servers for the collector's tests: `jobql serve` subprocesses on their own
databases (the upstream the collector reads through the vendors' SDKs), and GraphQL over HTTP to
any jobql (the upstream's answers and the collecting jobql's, compared)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0
# SchedulerX answers local times; the upstream and the collector's source agree on the zone.
UPSTREAM_TIMEZONE = "Asia/Shanghai"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jobql_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("JOBQL_") or key == "JOBQL_TEST_POSTGRES_URL"
    }
    env.update({"JOBQL_DATABASE_URL": database_url, "JOBQL_LOG_LEVEL": "warning", **extra})
    return env


async def run_jobql(*args: str, env: dict[str, str], limit: float = 60.0) -> tuple[int, str]:
    """`python -m jobql ARGS`; its exit status and output (stdout and stderr together)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobql",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), limit)
    assert process.returncode is not None
    return process.returncode, output.decode()


class Server:
    """`jobql serve` on `database_url` (migrated first), on a free port."""

    def __init__(self, database_url: str, **env: str) -> None:
        self.database_url = database_url
        self.env = jobql_env(database_url, **env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.http = httpx.AsyncClient(base_url=self.url, timeout=30.0)

    async def start(self) -> None:
        status, output = await run_jobql("migrate", env=self.env)
        assert status == 0, output
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "jobql",
            "serve",
            "--port",
            str(self.port),
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert self.process.returncode is None, "jobql serve ended before it served"
            try:
                if (await self.http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no jobql on {self.port}"
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        await self.http.aclose()
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def graphql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], workspace: str
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"workspace": workspace, "accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body["errors"]
    data: dict[str, Any] = body["data"]
    return data
