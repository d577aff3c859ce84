"""OpenLineage in: RunEvents accepted per second by one `jobql serve` worker, and its CPU per event.

    .venv/bin/python -m bench.lineage [--seconds 10] [--clients 4] [--database-url URL]

A fresh SQLite file (or a scratch database at `--database-url`, migrated here) behind one worker;
`--clients` threads post the events of DAG runs (START, two tasks START and COMPLETE, COMPLETE: 6
events a run, each its own transaction) for `--seconds`. The server's CPU is read from /proc
before and after. A measurement, not a test: nothing is asserted, and figures on a shared
machine are for comparison only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from jobql.storage import migrate


def _events(dag: str, run: str, base: int) -> list[dict[str, Any]]:
    def event(kind: str, run_id: str, job: str, at: int, parent: bool) -> dict[str, Any]:
        facets: dict[str, Any] = {}
        if parent:
            facets["parent"] = {
                "run": {"runId": run},
                "job": {"namespace": "bench", "name": dag},
            }
        return {
            "eventType": kind,
            "eventTime": f"2024-01-01T00:{(base + at) // 60 % 60:02d}:{(base + at) % 60:02d}Z",
            "run": {"runId": run_id, "facets": facets},
            "job": {"namespace": "bench", "name": job},
            "producer": "https://jobql/bench",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        }

    tasks = [str(uuid.uuid4()), str(uuid.uuid4())]
    return [
        event("START", run, dag, 0, False),
        *(event("START", t, f"{dag}.t{i}", 1 + i, True) for i, t in enumerate(tasks)),
        *(event("COMPLETE", t, f"{dag}.t{i}", 10 + i, True) for i, t in enumerate(tasks)),
        event("COMPLETE", run, dag, 20, False),
    ]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{folder}/bench.db"
        asyncio.run(_migrate(url))
        port = _free_port()
        env = {**os.environ, "JOBQL_DATABASE_URL": url, "JOBQL_DEMO_INSTANCES": "0"}
        server = subprocess.Popen(
            [sys.executable, "-m", "jobql", "serve", "--port", str(port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait(base)
            before = _cpu_seconds(server.pid)
            accepted, elapsed = _load(base, args.seconds, args.clients)
            cpu = _cpu_seconds(server.pid) - before
        finally:
            server.terminate()
            server.wait(10)
    print(f"database: {url.split(':')[0]}, clients: {args.clients}, {elapsed:.1f} s")
    print(f"events accepted: {accepted} ({accepted / elapsed:.0f}/s on one worker)")
    print(f"server CPU per event: {cpu / max(accepted, 1) * 1000:.2f} ms")


async def _migrate(url: str) -> None:
    engine = create_async_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


def _wait(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/livez").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("jobql serve did not start")


def _load(base: str, seconds: float, clients: int) -> tuple[int, float]:
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(base_url=base) as http:
            runs = 0
            while time.monotonic() < stop:
                for event in _events(f"dag{index}", str(uuid.uuid4()), runs % 3000):
                    answer = http.post("/api/v1/lineage", json=event)
                    assert answer.status_code == 201, answer.text
                    counts[index] += 1
                runs += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), time.monotonic() - started


if __name__ == "__main__":
    main()
