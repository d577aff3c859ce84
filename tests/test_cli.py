"""The command line: migrate, seed, serve's database preparation, settings errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, select

from jobql.cli import main
from jobql.storage import migrate
from jobql.storage.engine import create_engine
from jobql.storage.models import Instance, Workspace


def count_rows(url: str, model: Any) -> int:
    async def count() -> int:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return int(await connection.scalar(select(func.count()).select_from(model)))
        finally:
            await engine.dispose()

    return asyncio.run(count())


def revision(url: str) -> str | None:
    async def read() -> str | None:
        engine = create_engine(url)
        try:
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.fixture
def no_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    return calls


def test_migrate_creates_and_then_keeps_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("JOBQL_DATABASE_URL", url)
    assert main(["migrate"]) == 0
    head = migrate.head_revision()
    assert capsys.readouterr().out.strip() == f"migrated: empty -> {head}"
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out.strip() == f"migrated: {head} -> {head}"
    assert revision(url) == head


def test_serve_refuses_an_unmigrated_database(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_uvicorn: list[dict[str, Any]],
) -> None:
    monkeypatch.setenv("JOBQL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    assert main(["serve"]) == 1
    assert "run `jobql migrate` first" in capsys.readouterr().err
    assert no_uvicorn == []


def test_serve_creates_migrates_and_seeds_the_default_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_uvicorn: list[dict[str, Any]]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JOBQL_DATABASE_URL", raising=False)
    monkeypatch.setenv("JOBQL_DEMO_INSTANCES", "60")
    assert main(["serve", "--port", "8123", "--workers", "2"]) == 0
    url = "sqlite+aiosqlite:///./jobql.db"
    assert (tmp_path / "jobql.db").exists()
    assert revision(url) == migrate.head_revision()
    assert count_rows(url, Instance) == 60
    assert count_rows(url, Workspace) >= 1
    assert no_uvicorn[0]["port"] == 8123
    assert no_uvicorn[0]["workers"] == 2
    assert no_uvicorn[0]["factory"] is True
    assert no_uvicorn[0]["access_log"] is False  # JOBQL_ACCESS_LOG: off unless asked for
    # A second start finds data and seeds nothing more.
    monkeypatch.setenv("JOBQL_ACCESS_LOG", "true")
    assert main(["serve"]) == 0
    assert count_rows(url, Instance) == 60
    assert no_uvicorn[1]["access_log"] is True


def test_seed_command_adds_instances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    monkeypatch.setenv("JOBQL_DATABASE_URL", url)
    assert main(["seed", "--instances", "40"]) == 1
    assert "not migrated" in capsys.readouterr().err
    assert main(["migrate"]) == 0
    assert main(["seed", "--instances", "40", "--workspaces", "2", "--seed", "7"]) == 0
    err = capsys.readouterr().err
    assert "seeding: 40/40 (100%" in err
    assert "seeded 40 instances" in err
    assert count_rows(url, Instance) == 40
    assert count_rows(url, Workspace) == 2


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JOBQL_POOL_SIZE", "lots", "JOBQL_POOL_SIZE='lots' is not an integer"),
        ("JOBQL_POOL_SIZE", "0", "JOBQL_POOL_SIZE=0 must be at least 1"),
        ("JOBQL_TIMEZONE", "Mars/Olympus", "is not an IANA time zone"),
    ],
)
def test_bad_settings_are_reported_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(name, value)
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_bad_arguments_exit_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["seed", "--instances", "0"])
    assert exit_info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
