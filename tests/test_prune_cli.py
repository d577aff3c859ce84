"""`jobql prune`: the real command in a process of its own, on SQLite and PostgreSQL: its report,
its progress, dry runs, and the arguments it refuses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.cli import main
from jobql.storage import migrate
from jobql.storage.engine import create_engine
from jobql.storage.models import Instance, InstanceNode
from jobql.storage.types import parse_utc
from tests.conftest import postgres_url
from tests.factories import make_instance, make_job, make_nodes, new_workspace

TOTAL = re.compile(r"total: 11 instances, 18 nodes removed in 2 workspace\(s\) \([0-9]+\.[0-9] s\)")


async def fill(engine: AsyncEngine) -> None:
    """w1: 7 runs 200 days old (2 nodes each) and 3 of 10 days; w2: 4 old (1 node), 1 recent.
    The recent ones are created last (on SQLite the largest ids stay; see storage/prune.py)."""
    now = datetime.now(UTC)
    plan = [("w1", 7, 2), ("w2", 4, 1)]
    jobs = {name: await make_job(engine, await new_workspace(engine, name)) for name, _, _ in plan}
    for name, count, nodes in plan:
        for n in range(count):
            run = await make_instance(
                engine, jobs[name], plan_time=now - timedelta(days=200, minutes=n)
            )
            await make_nodes(engine, run, nodes)
    for name, recent in (("w1", 3), ("w2", 1)):
        for n in range(recent):
            run = await make_instance(
                engine, jobs[name], plan_time=now - timedelta(days=10, hours=n)
            )
            await make_nodes(engine, run, 1)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database of its own (the command prunes every workspace), with `fill`'s runs."""
    async with _database(request.param, tmp_path) as url:
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine)
            await fill(engine)
        finally:
            await engine.dispose()
        yield url


def _database(backend: str, tmp_path: Path) -> contextlib.AbstractAsyncContextManager[str]:
    if backend == "postgresql":
        return postgres_url()
    return contextlib.nullcontext(f"sqlite+aiosqlite:///{tmp_path / 'prune.db'}")


async def counts(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            instances = await connection.scalar(select(func.count()).select_from(Instance))
            nodes = await connection.scalar(select(func.count()).select_from(InstanceNode))
    finally:
        await engine.dispose()
    return int(instances or 0), int(nodes or 0)


async def jobql(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "jobql", *args],
        env={**os.environ, "JOBQL_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_prune_reports_per_workspace_with_progress(database: str) -> None:
    dry = await jobql(database, "prune", "--older-than", "180d", "--workspace", "w1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[1:] == [
        "workspace w1: 7 instances, 14 nodes would be removed",
        "total: 7 instances, 14 nodes would be removed in 1 workspace(s) "
        "(dry run, nothing deleted)",
    ]
    assert dry.stderr == ""
    assert await counts(database) == (15, 22)

    started = datetime.now(UTC)
    done = await jobql(database, "prune", "--older-than", "180d", "--batch-size", "3")
    finished = datetime.now(UTC)
    assert done.returncode == 0, done.stderr
    first, *workspaces, total = done.stdout.splitlines()
    cutoff = re.fullmatch(r"cutoff: (\S+) \(now - 180d\)", first)
    assert cutoff is not None, first
    assert (
        started - timedelta(days=180, seconds=1)
        <= parse_utc(cutoff[1])
        <= finished - timedelta(days=180)
    )
    assert workspaces == [
        "workspace w1: 7 instances, 14 nodes removed",
        "workspace w2: 4 instances, 4 nodes removed",
    ]
    assert TOTAL.fullmatch(total), total
    # Not a terminal: one line per tenth, from the start to the end.
    progress = done.stderr.splitlines()
    assert progress[0].startswith("pruning: 0/11 (0%")
    assert progress[-1].startswith("pruning: 11/11 (100%")
    assert all(line.startswith("pruning: ") for line in progress), done.stderr
    assert await counts(database) == (4, 4)


async def test_a_bad_age_is_refused_with_exit_code_2(database: str) -> None:
    result = await jobql(database, "prune", "--older-than", "0d")
    assert result.returncode == 2
    assert "argument --older-than: '0d' must be more than zero" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert await counts(database) == (15, 22)


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("--older-than=-5d", "'-5d' must be more than zero"),
        ("--older-than=180", "'180' is not an age: a whole number with h, d or w"),
        ("--older-than=6m", "'6m' is not an age"),
        ("--older-than=1.5d", "'1.5d' is not an age"),
        ("--older-than=180D", "'180D' is not an age"),
        ("--older-than= 180d", "' 180d' is not an age"),
        ("--older-than=1000000w", "'1000000w' reaches back before the year 1"),
        ("--older-than=99999999999999999999d", "reaches back before the year 1"),
        ("--batch-size=0", "0 must be at least 1"),
    ],
)
def test_bad_arguments_name_the_problem(
    argument: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["prune", argument] if "older-than" in argument else ["prune", "--older-than=1d"]
    if "batch-size" in argument:
        args.append(argument)
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_the_age_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["prune"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --older-than" in capsys.readouterr().err


def test_an_unknown_workspace_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setenv("JOBQL_DATABASE_URL", url)
    assert main(["prune", "--older-than", "1d"]) == 1
    assert "not migrated" in capsys.readouterr().err
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["prune", "--older-than", "1d", "--workspace", "nope"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "jobql: there is no workspace named 'nope'\n"
    assert captured.out == ""


def test_a_negative_age_after_a_space_is_argparses_missing_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # argparse reads "-5d" after a space as an option, not as the value (`--older-than=-5d`
    # reaches the check above): still exit 2 with a message, never a traceback.
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--older-than", "-5d"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --older-than: expected one argument" in err
    assert "Traceback" not in err
