"""Measuring one server: sequential latency, wrk throughput, CPU, statements, peak RSS."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "post.lua"


class BenchError(RuntimeError):
    """Stops the run with a readable message."""


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            self.connection.request("POST", path, body, headers)
            response = self.connection.getresponse()
        except (http.client.HTTPException, OSError):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            self.connection.request("POST", path, body, headers)
            response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def sequential(
    port: int,
    path: str,
    body: bytes,
    *,
    seconds: float,
    minimum: int = 3,
    on_start: Callable[[], None] = lambda: None,
    on_end: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Requests one after another on one connection; `on_start`/`on_end` bracket the counted
    ones (after one warm-up request), for exact per-request CPU and statement counts."""
    client = Client(port)
    try:
        status, payload = client.post(path, body)  # warm-up, not counted
        _check(status, payload)
        latencies: list[float] = []
        on_start()
        started = time.perf_counter()
        while time.perf_counter() - started < seconds or len(latencies) < minimum:
            before = time.perf_counter()
            status, payload = client.post(path, body)
            latencies.append(time.perf_counter() - before)
            _check(status, payload)
        on_end()
    finally:
        client.close()
    elapsed = sum(latencies)
    latencies.sort()
    return {
        "requests": len(latencies),
        "elapsed_s": elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))] * 1000,
        "response_bytes": len(payload),
    }


def _check(status: int, payload: bytes) -> None:
    if status != 200 or b'"errors"' in payload:
        raise BenchError(f"HTTP {status}: {payload[:500]!r}")


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("[wrk] apt-get install wrk", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            check=False,
        )
        path = shutil.which("wrk")
        if path:
            return path
    raise BenchError("wrk is missing: `apt-get install wrk` (Debian), then run again")


def wrk(
    url: str, body: bytes, *, connections: int, seconds: float, threads: int = 2
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as handle:
        handle.write(body)
        body_path = handle.name
    try:
        done = subprocess.run(
            [
                ensure_wrk(),
                f"-t{min(threads, connections)}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "120s",
                "-s",
                str(WRK_SCRIPT),
                url,
                "--",
                body_path,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 300,
        )
    finally:
        os.unlink(body_path)
    match = re.search(r"^BENCH_WRK (\{.*\})$", done.stdout, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(match.group(1))
    ok = result["responses"] - result["failures"]
    result["req_s"] = ok / (result["duration_us"] / 1e6) if result["duration_us"] else 0.0
    return result


def settle(pid: int, *, quiet_share: float = 0.05, limit: float = 60.0) -> None:
    """Wait until the server stops working on requests a load generator left in flight."""
    deadline = time.monotonic() + limit
    last = procs.cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = procs.cpu_seconds(pid)
        if now - last <= 0.25 * quiet_share:
            return
        last = now


@dataclass
class PgStats:
    """pg_stat_statements of the benchmark database, through one asyncpg connection."""

    dsn: str
    postmaster: int | None

    def __post_init__(self) -> None:
        import asyncpg

        self.loop = asyncio.new_event_loop()
        self.connection = self.loop.run_until_complete(asyncpg.connect(self.dsn))
        self.enabled = bool(
            self.loop.run_until_complete(
                self.connection.fetchval(
                    "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
                )
            )
        )

    def reset(self) -> None:
        if self.enabled:
            self.loop.run_until_complete(
                self.connection.execute("SELECT pg_stat_statements_reset()")
            )

    def statements(self, *, without_event_log: bool = False) -> tuple[int, int] | None:
        """(statements, of which transaction control) since the last reset, this database.

        `without_event_log`: leave out the statements on `instance_event`. Every idle `jobql
        serve` polls its event log once a second (`JOBQL_LIVE_POLL_INTERVAL`) and prunes it: work
        of no request, which the read workloads (none reads or writes that table) must not count;
        W7's few slow requests a second made it show as 0.5 to 1.7 extra statements a request.
        """
        if not self.enabled:
            return None
        row = self.loop.run_until_complete(
            self.connection.fetchrow(
                """
                SELECT coalesce(sum(calls), 0) AS total,
                       coalesce(sum(calls) FILTER (
                         WHERE query ~* '^\\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION)'), 0) AS tx
                FROM pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND query NOT ILIKE '%pg_stat_statements%'
                  AND NOT ($1 AND query ~* '\\minstance_event\\M')
                """,
                without_event_log,
            )
        )
        return int(row["total"]), int(row["tx"])

    def cpu(self) -> float | None:
        return None if self.postmaster is None else procs.cpu_seconds(self.postmaster)

    def close(self) -> None:
        self.loop.run_until_complete(self.connection.close())
        self.loop.close()
