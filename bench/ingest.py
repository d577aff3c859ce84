"""Ingestion throughput: `jobql import` of a large file, and recordInstances in batches.

    python -m bench.ingest [--instances 100000] [--batch 500] [--batches 20] [--only sqlite]
    python -m bench.ingest --into URL [...]

Each run uses fresh databases (a temporary SQLite file; a scratch PostgreSQL database on
JOBQL_BENCH_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/test, created
and dropped here) and prints one table. `--into URL`: an existing jobql database instead (the
benchmark's 10M one, say: the rate into tables and indexes that already hold that much), each
measurement into a workspace of its own, whose instances `jobql prune` deletes afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.data import create_scratch, drop_database
from jobql.importers import parse_body
from jobql.resolvers.context import RequestContext
from jobql.resolvers.ingest import import_instances
from jobql.schema import schema
from jobql.settings import DEFAULT_CURSOR_SECRET
from jobql.storage import migrate, prune
from jobql.storage.engine import create_engine
from jobql.storage.identifiers import CursorCodec
from jobql.storage.models import Instance

POSTGRES = os.environ.get(
    "JOBQL_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
BASE_MS = 1_551_671_580_000
RECORD = """
mutation($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome userErrors { code } } }
}
"""


def dlf_v2_body(instances: int) -> str:
    """A DLF v2 list body: `instances` runs over instances // 50 jobs."""
    jobs = max(1, instances // 50)
    rows = [
        {
            "job_name": f"job_{n % jobs}",
            "job_id": 600_000 + n % jobs,
            "job_instance_name": f"job_{n % jobs}",
            "instance_id": n,
            "status": "success" if n % 10 else "fail",
            "plan_time": BASE_MS + n * 1000,
            "start_time": BASE_MS + n * 1000 + 500,
            "end_time": BASE_MS + n * 1000 + 60_000,
            "submit_time": BASE_MS,
            "execute_time": 1.0,
            "instance_type": 0,
            "force_success": False,
            "ignore_success": False,
            "version": 1,
        }
        for n in range(1, instances + 1)
    ]
    return json.dumps({"total": instances, "instances": rows})


def mutation_batch(start: int, size: int) -> list[dict[str, Any]]:
    return [
        {
            "jobName": f"push_{n % 20}",
            "instanceId": n,
            "status": "SUCCESS",
            "planTime": "2019-03-04T03:53:00Z",
            "startTime": "2019-03-04T03:53:01Z",
            "endTime": "2019-03-04T03:54:00Z",
            "nodes": [
                {"name": f"step_{s}", "type": "Shell", "status": "SUCCESS"} for s in range(5)
            ],
        }
        for n in range(start, start + size)
    ]


@asynccontextmanager
async def existing_database(url: str, workspace: str) -> AsyncIterator[AsyncEngine]:
    """`url`'s database as it is; the instances written to `workspace` deleted afterwards."""
    engine = create_engine(url)
    try:
        yield engine
    finally:
        started = time.perf_counter()
        removed = await prune.prune(engine, datetime(9999, 1, 1, tzinfo=UTC), workspace=workspace)
        print(
            f"  removed {removed.instances:,} instances of {workspace} "
            f"({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        await engine.dispose()


@asynccontextmanager
async def fresh_database(kind: str, folder: Path) -> AsyncIterator[AsyncEngine]:
    if kind == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{folder / f'{uuid.uuid4().hex}.db'}")
        await migrate.upgrade(engine)
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    name, url = await create_scratch(POSTGRES, "jobql_bench")
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        yield engine
    finally:
        await engine.dispose()
        await drop_database(POSTGRES, name)


async def measure_import(
    engine: AsyncEngine, body: str, instances: int, workspace: str | None = None
) -> dict[str, float]:
    started = time.perf_counter()
    parsed = parse_body(body, source="bench.json", workspace=workspace)
    parsed_at = time.perf_counter()
    done = 0

    def progress(count: int) -> None:
        nonlocal done
        done += count
        if done % 20_000 < count:
            print(f"  import: {done}/{instances}", flush=True)

    summary = await import_instances(engine, parsed.instances, progress=progress)
    finished = time.perf_counter()
    assert summary.counts["created"] == instances, summary.line()
    return {
        "parse s": parsed_at - started,
        "write s": finished - parsed_at,
        "records/s": instances / (finished - started),
    }


async def measure_mutations(
    engine: AsyncEngine, batch: int, batches: int, workspace: str = "bench"
) -> dict[str, float]:
    codec = CursorCodec(DEFAULT_CURSOR_SECRET)
    started = time.perf_counter()
    for number in range(batches):
        context = RequestContext.open(engine, codec, workspace)
        try:
            result = await schema.execute(
                RECORD,
                variable_values={"input": mutation_batch(number * batch + 1, batch)},
                context_value=context,
            )
        finally:
            await context.close()
        assert result.errors is None, result.errors
    elapsed = time.perf_counter() - started
    return {"batches/s": batches / elapsed, "instances/s": batches * batch / elapsed}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--into", metavar="URL", help="an existing jobql database (see above)")
    args = parser.parse_args()
    body = dlf_v2_body(args.instances)
    rows: list[tuple[str, str, str]] = []
    if args.into:
        rows = await into_existing(args.into, body, args.instances, args.batch, args.batches)
        _print(rows)
        return
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("sqlite", "postgresql"):
            if args.only and kind != args.only:
                continue
            print(f"{kind}: import of {args.instances} instances", flush=True)
            async with fresh_database(kind, Path(folder)) as engine:
                figures = await measure_import(engine, body, args.instances)
            rows.append((kind, f"import {args.instances:,} (DLF v2 file)", _format(figures)))
            print(f"{kind}: {args.batches} x recordInstances({args.batch}, 5 nodes each)")
            async with fresh_database(kind, Path(folder)) as engine:
                figures = await measure_mutations(engine, args.batch, args.batches)
            rows.append(
                (kind, f"recordInstances x{args.batches}, {args.batch}/batch", _format(figures))
            )
    _print(rows)


async def into_existing(
    url: str, body: str, instances: int, batch: int, batches: int
) -> list[tuple[str, str, str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            held = await connection.scalar(select(func.count()).select_from(Instance))
    finally:
        await engine.dispose()
    where = f"existing database ({held:,} instances)"
    rows = []
    suffix = uuid.uuid4().hex[:8]
    workspace = f"bench-import-{suffix}"
    print(f"{where}: import of {instances} instances into {workspace}", flush=True)
    async with existing_database(url, workspace) as engine:
        figures = await measure_import(engine, body, instances, workspace)
    rows.append((where, f"import {instances:,} (DLF v2 file)", _format(figures)))
    workspace = f"bench-push-{suffix}"
    print(f"{where}: {batches} x recordInstances({batch}, 5 nodes each) into {workspace}")
    async with existing_database(url, workspace) as engine:
        figures = await measure_mutations(engine, batch, batches, workspace)
    rows.append((where, f"recordInstances x{batches}, {batch}/batch", _format(figures)))
    return rows


def _print(rows: list[tuple[str, str, str]]) -> None:
    print()
    print("| database | workload | result |")
    print("| --- | --- | --- |")
    for row in rows:
        print(f"| {' | '.join(row)} |")


def _format(figures: dict[str, float]) -> str:
    return ", ".join(f"{value:,.1f} {name}" for name, value in figures.items())


if __name__ == "__main__":
    asyncio.run(main())
