"""The benchmark's databases: migrated and seeded with `jobql migrate` / `jobql seed`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

# Every seeded instance goes into one workspace (`default`), so that W2's deep page exists:
# full mode needs a workspace with >= 600,000 matching instances.
WORKSPACES = 1
MARKER = "jobql_bench_marker"


def jobql(*args: str, url: str) -> None:
    env = {**os.environ, "JOBQL_DATABASE_URL": url, "JOBQL_LOG_LEVEL": "warning"}
    print(f"[data] jobql {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "jobql", *args], env=env, check=True)


async def _scalar(url: str, sql: str) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql))
    finally:
        await engine.dispose()


async def _execute(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def create_scratch(admin_url: str, prefix: str) -> tuple[str, str]:
    """A new, empty database on `admin_url`'s server: (name, URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await _execute(admin_url, f'CREATE DATABASE "{name}"')
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


async def drop_database(admin_url: str, name: str) -> None:
    await _execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_database(base: str, name: str, instances: int, *, reuse: bool) -> str:
    """A database `name` on the server `base` holding `instances` seeded instances.

    With `reuse`, an existing database whose marker row says it holds exactly that many is kept;
    anything else is dropped and seeded again.
    """
    url = f"{base}/{name}"
    admin = f"{base}/postgres"
    exists = asyncio.run(
        _scalar(admin, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'")
    )
    if exists and reuse:
        try:
            held = asyncio.run(_scalar(url, f"SELECT instances FROM {MARKER}"))
        except Exception:
            held = None
        if held == instances:
            print(f"[data] reusing {name}: {instances} instances already seeded", flush=True)
            return url
    if exists:
        asyncio.run(_execute(admin, f'DROP DATABASE "{name}" WITH (FORCE)'))
    asyncio.run(_execute(admin, f'CREATE DATABASE "{name}"'))
    jobql("migrate", url=url)
    jobql("seed", "--instances", str(instances), "--workspaces", str(WORKSPACES), url=url)
    asyncio.run(
        _execute(
            url,
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" if _has_pgss(base) else "SELECT 1",
            "VACUUM ANALYZE",
            f"CREATE TABLE {MARKER} (instances integer NOT NULL)",
            f"INSERT INTO {MARKER} VALUES ({instances})",
        )
    )
    return url


def _has_pgss(base: str) -> bool:
    try:
        value = asyncio.run(_scalar(f"{base}/postgres", "SHOW shared_preload_libraries"))
    except Exception:
        return False
    return "pg_stat_statements" in str(value)


def drop_postgres_database(base: str, name: str) -> None:
    asyncio.run(drop_database(f"{base}/postgres", name))


def sqlite_database(path: Path, instances: int, *, reuse: bool) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    if path.exists() and reuse:
        try:
            held = asyncio.run(_scalar(url, f"SELECT instances FROM {MARKER}"))
        except Exception:
            held = None
        if held == instances:
            print(f"[data] reusing {path}: {instances} instances already seeded", flush=True)
            return url
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    jobql("migrate", url=url)
    jobql("seed", "--instances", str(instances), "--workspaces", str(WORKSPACES), url=url)
    asyncio.run(
        _execute(
            url,
            "ANALYZE",
            f"CREATE TABLE {MARKER} (instances integer NOT NULL)",
            f"INSERT INTO {MARKER} VALUES ({instances})",
        )
    )
    return url
