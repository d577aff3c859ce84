"""`jobql schema-check`: the committed baseline, a removed field, acknowledgements, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from graphql import build_schema, find_breaking_changes, find_dangerous_changes

from jobql.cli import main
from jobql.schema import schema
from jobql.tools.schema_check import check, coordinate_of

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_HEADER = "type Instance implements Node {\n"

# An acknowledgement of the field the scratch baseline has and the current schema lacks.
ACKNOWLEDGED = """
[[breaking]]
change = "FIELD_REMOVED Instance.legacyStatus"
reason = "legacyStatus was never released"
"""


def current_sdl() -> str:
    return schema.as_str() + "\n"


def with_extra_instance_field(sdl: str) -> str:
    """The current SDL plus a field on Instance: as a baseline, the current schema removed it."""
    assert INSTANCE_HEADER in sdl
    return sdl.replace(
        INSTANCE_HEADER, INSTANCE_HEADER + '  """Gone."""\n  legacyStatus: String\n', 1
    )


def run_check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "jobql", "schema-check", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_repository_passes_against_its_committed_baseline() -> None:
    # What CI runs: the default baseline and acknowledgements of the repository.
    assert (REPO_ROOT / "schema.baseline.graphql").is_file()
    result = run_check(cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 0 breaking" in result.stdout


def test_a_field_missing_from_the_current_schema_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schema.baseline.graphql").write_text(with_extra_instance_field(current_sdl()))
    assert main(["schema-check"]) == 1
    out = capsys.readouterr().out
    assert "Breaking changes (fail the check) (1):" in out
    assert "FIELD_REMOVED Instance.legacyStatus" in out
    assert out.rstrip().splitlines()[-1].startswith("FAIL: 1 breaking")


def test_an_acknowledgement_lets_the_break_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schema.baseline.graphql").write_text(with_extra_instance_field(current_sdl()))
    (tmp_path / "schema.acknowledged.toml").write_text(ACKNOWLEDGED)
    assert main(["schema-check"]) == 0
    out = capsys.readouterr().out
    assert "Acknowledged breaking changes (1):" in out
    assert "legacyStatus was never released" in out
    assert "Breaking changes (fail" not in out
    # An acknowledgement of another change does not cover this one, and is reported as stale.
    (tmp_path / "schema.acknowledged.toml").write_text(
        ACKNOWLEDGED.replace("Instance.legacyStatus", "Job.legacyStatus")
    )
    assert main(["schema-check"]) == 1
    out = capsys.readouterr().out
    assert "FIELD_REMOVED Instance.legacyStatus" in out
    assert "match no change (stale) (1):\n  FIELD_REMOVED Job.legacyStatus" in out


def test_against_a_git_ref(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    (tmp_path / "schema.graphql").write_text(with_extra_instance_field(current_sdl()))
    git("add", "schema.graphql")
    git("commit", "-q", "-m", "old schema")
    git("tag", "v1")
    (tmp_path / "schema.graphql").write_text(current_sdl())
    result = run_check("--against", "v1", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "schema.graphql at git ref v1" in result.stdout
    assert "FIELD_REMOVED Instance.legacyStatus" in result.stdout


def test_added_things_are_safe_or_dangerous_never_breaking() -> None:
    old = build_schema(with_extra_instance_field(current_sdl()))
    new = build_schema(
        with_extra_instance_field(current_sdl())
        .replace("enum JobType {\n", 'enum JobType {\n  """New."""\n  HYBRID\n', 1)
        .replace("type Query {\n", 'type Query {\n  """New."""\n  ping: String\n', 1)
    )
    report = check(new, old, "old", [])
    assert report.ok
    assert [c.key for c in report.safe] == ["FIELD_ADDED Query.ping"]
    assert [c.key for c in report.dangerous] == ["VALUE_ADDED_TO_ENUM JobType.HYBRID"]
    # The groups are graphql-core's own: the same as its find_*_changes functions.
    assert [c.description for c in report.dangerous] == [
        c.description for c in find_dangerous_changes(old, new)
    ]
    removed = check(old, new, "new", [])
    assert [c.description for c in removed.breaking] == [
        c.description for c in find_breaking_changes(new, old)
    ]
    assert sorted(c.key for c in removed.breaking) == [
        "FIELD_REMOVED Query.ping",
        "VALUE_REMOVED_FROM_ENUM JobType.HYBRID",
    ]


def test_a_schema_file_missing_a_field_breaks_against_the_current_schema() -> None:
    current = current_sdl()
    removed = '  """The source\'s instance id; unique within its job, not across jobs."""\n'
    removed += "  instanceId: Long!\n"
    assert removed in current
    report = check(build_schema(current.replace(removed, "", 1)), build_schema(current), "x", [])
    assert [c.key for c in report.breaking] == ["FIELD_REMOVED Instance.instanceId"]


def test_coordinates_of_graphql_core_descriptions() -> None:
    assert coordinate_of("Field Instance.status was removed.") == "Instance.status"
    assert coordinate_of("Argument Query.jobs(after:) was removed.") == "Query.jobs(after:)"
    assert coordinate_of("Dispatch was removed.") == "Dispatch"
    assert coordinate_of("Directive @oneOf was removed.") == "@oneOf"
    assert coordinate_of("Enum value JobType.REALTIME was removed.") == "JobType.REALTIME"
    assert coordinate_of("Standard scalar Int was removed because it is not referenced") == "Int"


@pytest.mark.parametrize(
    ("against", "message"),
    [
        ("missing.graphql", "no such file, and not a git ref"),
        ("no-such-ref-42", "no such file, and not a git ref"),
        ("bad.graphql", "is not a valid GraphQL schema"),
        ("empty.graphql", "is not a valid GraphQL schema"),
    ],
)
def test_a_bad_baseline_is_exit_2_without_traceback(
    tmp_path: Path, against: str, message: str
) -> None:
    (tmp_path / "bad.graphql").write_text("type Query {")
    (tmp_path / "empty.graphql").write_text("")
    result = run_check("--against", against, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[breaking]]\nchange = 'FIELD_REMOVED Instance.legacyStatus'\n", "`reason` must say"),
        ("[[breaking]]\nchange = 'Instance.legacyStatus'\nreason = 'x'\n", "must name one"),
        ("breaking = 3\n", "array of tables"),
        ("[[breaking\n", "not valid TOML"),
    ],
)
def test_a_bad_acknowledgements_file_is_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schema.baseline.graphql").write_text(current_sdl())
    (tmp_path / "schema.acknowledged.toml").write_text(text)
    assert main(["schema-check"]) == 2
    assert message in capsys.readouterr().err
    # Named explicitly, the file must exist.
    assert main(["schema-check", "--acknowledged", "nowhere.toml"]) == 2
    assert "is missing" in capsys.readouterr().err
