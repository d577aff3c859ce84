"""`jobql collect` on the command line: a file that cannot be used is refused before anything
runs, with the file, the key and the problem (exit 2); an unmigrated database is refused (exit 1).
Running sources, SIGKILL/SIGTERM and `--status` are in test_restart.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobql.cli import main

GOOD = """
[sources.dlf]
kind = "dlf"
endpoint = "http://127.0.0.1:9"
region = "cn-north-4"
workspace = "prod"
access_key_env = "COLLECT_AK"
secret_key_env = "COLLECT_SK"
project_id = "p"
"""


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLLECT_AK", "ak")
    monkeypatch.setenv("COLLECT_SK", "sk")
    monkeypatch.setenv("JOBQL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(args)
    return status, capsys.readouterr().err


def test_a_bad_file_is_refused_with_the_file_the_key_and_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "collect.toml"
    path.write_text(GOOD + "rate_limit = 0\n", encoding="utf-8")
    assert run(["collect", "--config", str(path)], capsys) == (
        2,
        f"jobql collect: {path}: sources.dlf.rate_limit: must be more than 0, not 0\n",
    )


def test_an_unset_credentials_variable_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLLECT_SK")
    path = tmp_path / "collect.toml"
    path.write_text(GOOD, encoding="utf-8")
    status, err = run(["collect", "--config", str(path), "--once"], capsys)
    assert status == 2
    assert err == (
        f"jobql collect: {path}: sources.dlf.secret_key_env: "
        "the environment variable COLLECT_SK is not set\n"
    )


def test_the_file_and_the_sources_must_be_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["collect"], capsys) == (
        2,
        "jobql collect: give the collector's file with --config FILE\n",
    )
    path = tmp_path / "collect.toml"
    path.write_text(GOOD, encoding="utf-8")
    status, err = run(["collect", "--config", str(path), "--source", "nope"], capsys)
    assert status == 2
    assert "no source named 'nope' (the file has dlf)" in err


def test_an_unmigrated_database_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "collect.toml"
    path.write_text(GOOD, encoding="utf-8")
    status, err = run(["collect", "--config", str(path), "--once"], capsys)
    assert status == 1
    assert "the database is not migrated: run `jobql migrate` first" in err
    status, err = run(["collect", "--status"], capsys)
    assert status == 1
    assert "the database is not migrated" in err
