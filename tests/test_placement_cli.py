"""The commands on workspaces placed in two databases (JOBQL_WORKSPACE_DATABASES): `migrate`,
`seed`, `import`, `prune`, `emit` and `collect` as processes of their own, each database checked
with plain SQL afterwards: every workspace's rows in its own database, and nothing elsewhere.

Two SQLite files: main.db (JOBQL_DATABASE_URL: default, ws1 and every other workspace) and b.db
(ws2 and team-*). Migrating two PostgreSQL databases is the last test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from jobql.storage import migrate
from jobql.storage.engine import create_engine
from tests.collect.data import FlinkUpstream
from tests.collect.upstream import ROOT, UPSTREAM_TIMEZONE, Server, jobql_env
from tests.conftest import postgres_url
from tests.emit.support import file_transport, read_events
from tests.factories import make_instance, make_job, make_nodes, new_workspace
from tests.importers.support import EXAMPLES

HEAD = migrate.head_revision()
JOBS = """
SELECT w.name, j.name, j.type, j.vendor_job_id, p.name FROM job j
JOIN workspace w ON w.id = j.workspace_id LEFT JOIN job p ON p.id = j.parent_id
ORDER BY 1, 2
"""
INSTANCES = """
SELECT w.name, j.name, i.vendor_instance_id, i.status, i.plan_time, i.end_time,
       (SELECT count(*) FROM instance_node n WHERE n.instance_id = i.id
        AND n.workspace_id = i.workspace_id)
FROM instance i JOIN job j ON j.id = i.job_id AND j.workspace_id = i.workspace_id
JOIN workspace w ON w.id = i.workspace_id
ORDER BY 1, 2, 3
"""
PER_WORKSPACE = """
SELECT w.name, count(*) FROM instance i JOIN workspace w ON w.id = i.workspace_id GROUP BY 1
"""
STRAY_JOBS = "SELECT count(*) FROM job WHERE workspace_id NOT IN (SELECT id FROM workspace)"
STRAY_NODES = """
SELECT count(*) FROM instance_node n LEFT JOIN instance i ON i.id = n.instance_id
WHERE i.workspace_id IS NOT n.workspace_id
"""


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as database:
        return database.execute(sql).fetchall()


def names(path: Path, sql: str) -> set[Any]:
    return {row[0] for row in query(path, sql)}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobql", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Two:
    """main.db and b.db, and the environment that places ws2 and team-* in b.db."""

    main: Path
    b: Path
    env: dict[str, str]

    def jobql(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(self.env, *args)

    def migrated(self) -> Two:
        result = self.jobql("migrate")
        assert result.returncode == 0, result.stderr
        return self


@pytest.fixture
def two(tmp_path: Path) -> Two:
    main, b = tmp_path / "main.db", tmp_path / "b.db"
    placed = {"ws2": sqlite_url(b), "team-*": sqlite_url(b)}
    env = jobql_env(sqlite_url(main), JOBQL_WORKSPACE_DATABASES=json.dumps(placed))
    return Two(main, b, env)


def test_migrate_migrates_every_database_the_main_one_first(two: Two) -> None:
    first = two.jobql("migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"migrated {sqlite_url(two.main)}: empty -> {HEAD}",
        f"migrated {sqlite_url(two.b)}: empty -> {HEAD}",
    ]
    for path in (two.main, two.b):
        assert query(path, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    again = two.jobql("migrate")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"migrated {sqlite_url(two.main)}: {HEAD} -> {HEAD}",
        f"migrated {sqlite_url(two.b)}: {HEAD} -> {HEAD}",
    ]


def test_migrate_stops_at_the_database_that_fails_and_names_it(tmp_path: Path) -> None:
    main, broken, b = tmp_path / "main.db", tmp_path / "broken.db", tmp_path / "b.db"
    # Opens, but is no database. (Not a path SQLite cannot open: aiosqlite 0.22's worker thread
    # may then report the failed open to the closed event loop, a traceback after the message.)
    broken.write_bytes(b"not a database, " * 100)
    placed = {"ws2": sqlite_url(broken), "team-*": sqlite_url(b)}
    env = jobql_env(sqlite_url(main), JOBQL_WORKSPACE_DATABASES=json.dumps(placed))
    result = run(env, "migrate")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"migrated {sqlite_url(main)}: empty -> {HEAD}"]
    assert result.stderr == (
        f"jobql: migrating {sqlite_url(broken)} failed: DatabaseError: file is not a database; "
        "the databases before it are migrated, the ones after it were not tried\n"
    )
    assert not b.exists()  # after the one that failed: not tried


def test_seed_writes_each_workspace_into_its_own_database(two: Two, tmp_path: Path) -> None:
    refused = two.jobql("seed", "--instances", "60")
    assert refused.returncode == 1
    assert "the database sqlite+aiosqlite:///" in refused.stderr
    assert "is not migrated: run `jobql migrate` first" in refused.stderr

    two.migrated()
    seeded = two.jobql("seed", "--instances", "60", "--seed", "3")
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 60 instances" in seeded.stderr
    assert "in 3 workspaces, 2 databases" in seeded.stderr

    assert names(two.main, "SELECT name FROM workspace") == {"default", "ws1"}
    assert names(two.b, "SELECT name FROM workspace") == {"ws2"}
    for path, expected in ((two.main, {"default", "ws1"}), (two.b, {"ws2"})):
        assert {row[0] for row in query(path, JOBS)} == expected
        assert {row[0] for row in query(path, INSTANCES)} == expected
        # No row of a workspace the database does not hold, no node apart from its instance.
        assert query(path, STRAY_JOBS) == [(0,)]
        assert query(path, STRAY_NODES) == [(0,)]
    # Each database numbers its own rows, from the largest next id of both: none is taken twice.
    assert not names(two.main, "SELECT id FROM instance") & names(two.b, "SELECT id FROM instance")

    # The same data as the same seed into one database, only spread.
    single = tmp_path / "single.db"
    env = jobql_env(sqlite_url(single))
    assert run(env, "migrate").returncode == 0
    alone = run(env, "seed", "--instances", "60", "--seed", "3")
    assert alone.returncode == 0, alone.stderr
    assert "databases" not in alone.stderr
    for sql in (JOBS, INSTANCES):
        assert sorted(query(two.main, sql) + query(two.b, sql)) == sorted(query(single, sql))


def test_import_writes_into_the_database_of_its_workspace(two: Two) -> None:
    two.migrated()
    dlf = str(EXAMPLES / "000_example3.json")  # names no workspace: --workspace's
    into_b = two.jobql("import", "--workspace", "ws2", dlf)
    assert into_b.returncode == 0, into_b.stderr
    assert (
        into_b.stdout
        == "1 file(s) imported: 2 created, 0 updated, 0 unchanged, 0 stale, 0 rejected\n"
    )
    assert query(two.b, PER_WORKSPACE) == [("ws2", 2)]
    assert query(two.main, "SELECT count(*) FROM instance") == [(0,)]
    assert query(two.main, "SELECT count(*) FROM workspace") == [(0,)]

    into_main = two.jobql("import", "--workspace", "ws1", dlf)
    assert into_main.returncode == 0, into_main.stderr
    assert names(two.main, "SELECT name FROM workspace") == {"ws1"}
    assert query(two.main, "SELECT count(*) FROM instance") == [(2,)]
    assert query(two.b, "SELECT count(*) FROM instance") == [(2,)]  # unchanged

    # A body that names its workspace (Realtime Compute's project) goes to that one's database,
    # the others of the same import to --workspace's.
    flink = str(EXAMPLES / "004_example.xml")
    both = two.jobql("import", "--workspace", "team-x", dlf, flink)
    assert both.returncode == 0, both.stderr
    assert "3 created" in both.stdout
    assert names(two.main, "SELECT name FROM workspace") == {"ws1", "project1"}
    assert names(two.b, "SELECT name FROM workspace") == {"ws2", "team-x"}


async def fill(url: str, plan: list[tuple[str, int, int]]) -> None:
    """Per workspace: (name, runs 200 days old with 2 nodes each, recent runs with 1), the
    recent ones last (SQLite keeps the largest ids; see storage/prune.py)."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    try:
        jobs = {
            name: await make_job(engine, await new_workspace(engine, name)) for name, *_ in plan
        }
        for name, old, _ in plan:
            for n in range(old):
                run_ = await make_instance(
                    engine, jobs[name], plan_time=now - timedelta(days=200, minutes=n)
                )
                await make_nodes(engine, run_, 2)
        for name, _, recent in plan:
            for n in range(recent):
                run_ = await make_instance(
                    engine, jobs[name], plan_time=now - timedelta(days=1, hours=n)
                )
                await make_nodes(engine, run_, 1)
    finally:
        await engine.dispose()


async def test_prune_prunes_every_database_or_the_one_of_its_workspace(two: Two) -> None:
    two.migrated()
    await fill(sqlite_url(two.main), [("ws1", 3, 1)])
    await fill(sqlite_url(two.b), [("team-a", 2, 1), ("ws2", 4, 1)])

    one = await asyncio.to_thread(
        two.jobql, "prune", "--older-than", "180d", "--workspace", "team-a", "--dry-run"
    )
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines()[1:] == [
        "workspace team-a: 2 instances, 4 nodes would be removed",
        "total: 2 instances, 4 nodes would be removed in 1 workspace(s) (dry run, nothing deleted)",
    ]

    done = await asyncio.to_thread(two.jobql, "prune", "--older-than", "180d")
    assert done.returncode == 0, done.stderr
    _, *workspaces, total = done.stdout.splitlines()
    assert workspaces == [
        "workspace team-a: 2 instances, 4 nodes removed",
        "workspace ws1: 3 instances, 6 nodes removed",
        "workspace ws2: 4 instances, 8 nodes removed",
    ]
    assert re.fullmatch(
        r"total: 9 instances, 18 nodes removed in 3 workspace\(s\) \([0-9]+\.[0-9] s\)", total
    ), total
    # A progress bar per database, named.
    progress = done.stderr.splitlines()
    assert f"pruning {sqlite_url(two.main)}: 3/3 (100%" in done.stderr, progress
    assert f"pruning {sqlite_url(two.b)}: 6/6 (100%" in done.stderr, progress
    assert query(two.main, "SELECT count(*) FROM instance") == [(1,)]
    assert query(two.b, "SELECT count(*) FROM instance") == [(2,)]
    assert query(two.b, "SELECT count(*) FROM instance_node") == [(2,)]

    unknown = await asyncio.to_thread(
        two.jobql, "prune", "--older-than", "1d", "--workspace", "team-z"
    )
    assert unknown.returncode == 1
    assert unknown.stderr == "jobql: there is no workspace named 'team-z'\n"


def test_emit_sends_the_events_of_every_database(two: Two, tmp_path: Path) -> None:
    two.migrated()
    for workspace in ("ws1", "ws2"):
        imported = two.jobql("import", "--workspace", workspace, str(EXAMPLES / "001_example.json"))
        assert imported.returncode == 0, imported.stderr
    events_file = tmp_path / "events.jsonl"
    env = {
        **{key: value for key, value in two.env.items() if not key.startswith("OPENLINEAGE")},
        **file_transport(events_file),
    }

    before = run(env, "emit", "--status")
    assert before.returncode == 0, before.stderr
    assert before.stdout.splitlines() == [
        f"{sqlite_url(path)}: no OpenLineage cursor yet (the emitter never ran)"
        for path in (two.main, two.b)
    ]

    sent = run(env, "emit", "--once")
    assert sent.returncode == 0, sent.stderr
    lines = sent.stdout.splitlines()
    assert len(lines) == 2, sent.stdout
    for line, path in zip(lines, (two.main, two.b), strict=True):
        assert re.fullmatch(
            rf"jobql emit: {re.escape(sqlite_url(path))}: [1-9][0-9]* event\(s\) sent; "
            r"cursor 'default' at [0-9]+",
            line,
        ), line
    events = read_events(events_file)
    assert {event["job"]["namespace"] for event in events} == {"jobql/ws1", "jobql/ws2"}

    status = run(env, "emit", "--status")
    assert status.returncode == 0, status.stderr
    found = status.stdout.splitlines()
    assert len(found) == 2, status.stdout
    for line, path in zip(found, (two.main, two.b), strict=True):
        assert line.startswith(f"{sqlite_url(path)}: default: at event "), line
        assert "(0 behind at most); not held" in line

    again = run(env, "emit", "--once")
    assert again.returncode == 0, again.stderr
    assert [line.split(": ", 2)[-1].split(";")[0] for line in again.stdout.splitlines()] == [
        "0 event(s) sent",
        "0 event(s) sent",
    ]
    assert len(read_events(events_file)) == len(events)


COLLECT = """
[defaults]
poll_interval = 0.3
rate_limit = 300
retries = 2
backoff = 0.02

[sources.to-b]
kind = "flink"
endpoint = "{endpoint}"
region = "cn-hangzhou"
workspace = "ws2"
access_key_env = "COLLECT_AK"
secret_key_env = "COLLECT_SK"
project = "{project}"
instances = [{instances}]

[sources.to-main]
kind = "flink"
endpoint = "{endpoint}"
region = "cn-hangzhou"
workspace = "ws1"
access_key_env = "COLLECT_AK"
secret_key_env = "COLLECT_SK"
project = "{project}"
instances = [{instances}]
"""


async def test_collect_writes_each_source_into_its_workspaces_database(
    two: Two, tmp_path: Path
) -> None:
    upstream = Server(sqlite_url(tmp_path / "upstream.db"), JOBQL_TIMEZONE=UPSTREAM_TIMEZONE)
    await upstream.start()
    try:
        up = FlinkUpstream(upstream.http, "flink", random.Random(7))
        for state in ("RUNNING", "SUCCESS", "FAIL"):
            up.add_instance("orders_stream", state)
        await up.push()
        config = tmp_path / "collect.toml"
        config.write_text(
            COLLECT.format(
                endpoint=upstream.url,
                project=up.workspace,
                instances=", ".join(
                    f'{{ job = "{job}", id = {key} }}' for job, key in sorted(up.instances)
                ),
            ),
            encoding="utf-8",
        )
        two.migrated()
        env = {**two.env, "COLLECT_AK": "dummy-ak", "COLLECT_SK": "dummy-sk"}
        collected = await asyncio.to_thread(run, env, "collect", "--config", str(config), "--once")
        assert collected.returncode == 0, collected.stdout + collected.stderr
    finally:
        await upstream.stop()

    assert names(two.b, "SELECT name FROM workspace") == {"ws2"}
    assert names(two.main, "SELECT name FROM workspace") == {"ws1"}
    for path in (two.main, two.b):
        assert query(path, "SELECT count(*) FROM instance") == [(3,)]
    # Each source's checkpoints in the database it writes into.
    assert names(two.b, "SELECT DISTINCT source FROM collect_checkpoint") == {"to-b"}
    assert names(two.main, "SELECT DISTINCT source FROM collect_checkpoint") == {"to-main"}

    # --status reads every database's checkpoints.
    status = await asyncio.to_thread(run, env, "collect", "--status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"^to-b\s+flink\s+\d{4}-\d\d-\d\dT", status.stdout, re.MULTILINE)
    assert re.search(r"^to-main\s+flink\s+\d{4}-\d\d-\d\dT", status.stdout, re.MULTILINE)


async def test_migrate_migrates_two_postgresql_databases() -> None:
    async with postgres_url() as main, postgres_url() as other:
        env = jobql_env(main, JOBQL_WORKSPACE_DATABASES=json.dumps({"team-*": other}))
        result = await asyncio.to_thread(run, env, "migrate")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"migrated {main}: empty -> {HEAD}",
            f"migrated {other}: empty -> {HEAD}",
        ]
        for url in (main, other):
            engine = create_engine(url)
            try:
                async with engine.connect() as connection:
                    found = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            finally:
                await engine.dispose()
            assert found == HEAD
