"""`jobql import`: summaries, idempotence, bad files, and concurrent writers on SQLite."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from jobql.cli import main
from jobql.storage import migrate
from jobql.storage.engine import create_engine
from jobql.storage.models import Instance
from tests.importers.support import EXAMPLES

# Examples that do not describe the same instance differently (000 example 1, 001 and 003 all
# describe job_batch/34765, each its own way).
GOOD = ["000_example3.json", "002_example.json", "003_example.json", "004_example.xml"]


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'import.db'}"
    monkeypatch.setenv("JOBQL_DATABASE_URL", url)

    async def prepare() -> None:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()

    asyncio.run(prepare())
    return url


def dump(url: str) -> list[tuple[Any, ...]]:
    """Every stored fact without surrogate keys, in a stable order."""

    async def read() -> list[tuple[Any, ...]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    text(
                        "SELECT w.name, j.name, j.type, j.vendor_job_id, i.vendor_instance_id, "
                        "i.status, i.plan_time, i.start_time, i.end_time, i.execute_time, "
                        "i.dispatch_result, i.runtime_packages, n.position, n.name, n.status "
                        "FROM instance i JOIN job j ON j.id = i.job_id "
                        "JOIN workspace w ON w.id = i.workspace_id "
                        "LEFT JOIN instance_node n ON n.instance_id = i.id "
                        "ORDER BY 1, 2, 5, 13"
                    )
                )
                return [tuple(row) for row in rows.all()]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def count(url: str) -> int:
    async def read() -> int:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return int(await connection.scalar(select(func.count()).select_from(Instance)))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_importing_the_same_files_twice_changes_nothing(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(EXAMPLES / name) for name in GOOD]
    assert main(["import", "--workspace", "w1", *files]) == 0
    first = capsys.readouterr().out
    assert (
        first.strip()
        == "4 file(s) imported: 5 created, 0 updated, 0 unchanged, 0 stale, 0 rejected"
    )
    before = dump(database)
    assert main(["import", "--workspace", "w1", *files]) == 0
    second = capsys.readouterr().out
    assert "0 created, 0 updated, 5 unchanged" in second
    assert dump(database) == before


def test_stdin_and_progress(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO((EXAMPLES / "001_example.json").read_text()))
    assert main(["import", "-"]) == 0
    captured = capsys.readouterr()
    assert "2 created" in captured.out
    assert "importing: 2/2 (100%" in captured.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"total": 1, "instances": [{"jobName": "a", "instanceId": 1', "invalid JSON"),
        ("<html><body>Login</body></html>", "cannot tell the format"),
        (
            '{"total":1,"instances":[{"jobName":"a","instanceId":1e30,"status":"success",'
            '"planTime":1551671580000}]}',
            "instances[0]",
        ),
        (
            '{"total":1,"instances":[{"jobName":"a","instanceId":1,"status":"success"}]}',
            "planTime",
        ),
        (
            '{"total":1,"instances":[{"jobName":"a","instanceId":1,"status":"done",'
            '"planTime":1551671580000}]}',
            "'done'",
        ),
    ],
)
def test_bad_files_are_refused_whole_with_file_and_record(
    database: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    good = EXAMPLES / "001_example.json"
    assert main(["import", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err
    assert message in err
    assert "Traceback" not in err
    # The good file landed; nothing of the bad one did.
    assert count(database) == 2


def test_missing_file_is_a_clear_error(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "/nonexistent/feed.json"]) == 1
    assert "/nonexistent/feed.json: cannot read" in capsys.readouterr().err


def feed(job: str, count: int) -> str:
    instances = [
        {
            "job_name": job,
            "job_instance_name": job,
            "instance_id": n,
            "status": "success",
            "plan_time": 1551671580000 + n * 60_000,
            "start_time": 1551671580000 + n * 60_000,
            "submit_time": 1550910278706,
            "instance_type": 0,
        }
        for n in range(1, count + 1)
    ]
    return json.dumps({"total": count, "instances": instances})


def test_eight_concurrent_importers_on_sqlite_store_everything(
    database: str, tmp_path: Path
) -> None:
    files = []
    for writer in range(8):
        path = tmp_path / f"feed{writer}.json"
        path.write_text(feed(f"job_{writer}", 1200), encoding="utf-8")
        files.append(path)
    env = {**os.environ, "JOBQL_DATABASE_URL": database}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "jobql", "import", str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in files
    ]
    outcomes = [process.communicate(timeout=300) for process in processes]
    for process, (out, err) in zip(processes, outcomes, strict=True):
        assert process.returncode == 0, err
        assert "1200 created" in out
        assert "locked" not in err
    assert count(database) == 8 * 1200
