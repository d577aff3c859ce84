"""Which database holds a workspace (JOBQL_WORKSPACE_DATABASES): exact names, patterns, the
main database, and the maps jobql refuses, by name. (The commands on two databases:
tests/test_placement_cli.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobql.settings import Settings, SettingsError
from jobql.storage.placement import Placement, PlacementError

MAIN = "sqlite+aiosqlite:///main.db"
B = "sqlite+aiosqlite:///b.db"
C = "sqlite+aiosqlite:///c.db"


def test_an_exact_name_beats_every_pattern_written_before_it() -> None:
    placement = Placement.of(MAIN, {"team-*": B, "team-a": C})
    assert placement.url_for("team-a") == C
    assert placement.url_for("team-b") == B


def test_the_first_pattern_written_wins() -> None:
    placement = Placement.of(MAIN, [("team-a*", B), ("team-*", C), ("ws?", C)])
    assert placement.url_for("team-ab") == B
    assert placement.url_for("team-x") == C
    assert placement.url_for("ws2") == C
    assert placement.url_for("ws22") == MAIN  # `?` is one character
    assert placement.url_for("Team-x") == MAIN  # case-sensitive


def test_a_workspace_nothing_matches_lives_in_the_main_database() -> None:
    placement = Placement.of(MAIN, {"ws2": B})
    assert placement.url_for("default") == MAIN
    assert placement.url_for("ws1") == MAIN
    assert placement.spread
    assert not Placement.of(MAIN, {}).spread
    assert not Placement.of(MAIN, {"ws2": MAIN}).spread  # written out, but the main one


def test_a_name_is_no_pattern() -> None:
    # Only names with *, ? or [ are patterns: "ws2" does not match "ws2x".
    placement = Placement.of(MAIN, {"ws2": B})
    assert placement.url_for("ws2x") == MAIN


def test_urls_lists_every_database_once_the_main_one_first() -> None:
    placement = Placement.of(MAIN, [("b-*", B), ("ws2", C), ("b2", B), ("main", MAIN)])
    assert placement.urls() == [MAIN, B, C]
    assert Placement.of(MAIN, {}).urls() == [MAIN]


def test_describe_hides_the_password() -> None:
    placement = Placement.of("postgresql+asyncpg://jobql:secret@db1:5432/jobql", {})
    described = placement.describe("postgresql+asyncpg://jobql:secret@db2:5432/jobql")
    assert "secret" not in described
    assert described == "postgresql+asyncpg://jobql:***@db2:5432/jobql"


def test_a_database_of_another_backend_than_the_main_one_is_refused() -> None:
    with pytest.raises(PlacementError, match=r"workspace 'ws2': postgresql beside a sqlite"):
        Placement.of(MAIN, {"ws2": "postgresql+asyncpg://u:pw@h/db"})


@pytest.mark.parametrize("url", ["not a url", "mysql://h/db", ""])
def test_something_that_is_no_database_url_is_refused(url: str) -> None:
    with pytest.raises(PlacementError, match=r"workspace 'ws2': .* is not a database URL"):
        Placement.of(MAIN, {"ws2": url})


def settings(value: str, **env: str) -> Settings:
    return Settings.from_env(
        {"JOBQL_DATABASE_URL": MAIN, "JOBQL_WORKSPACE_DATABASES": value, **env}
    )


def test_settings_read_a_json_object_in_order() -> None:
    found = settings(json.dumps({"team-*": B, "ws2": C}))
    assert found.workspace_databases == (("team-*", B), ("ws2", C))
    assert found.placement().url_for("team-x") == B
    assert settings("").placement().urls() == [MAIN]


def test_settings_read_a_toml_or_json_file(tmp_path: Path) -> None:
    toml = tmp_path / "databases.toml"
    toml.write_text(f'ws2 = "{B}"\n"team-*" = "{C}"\n', encoding="utf-8")
    assert settings(str(toml)).workspace_databases == (("ws2", B), ("team-*", C))
    as_json = tmp_path / "databases.json"
    as_json.write_text(json.dumps({"ws2": B}), encoding="utf-8")
    assert settings(str(as_json)).placement().url_for("ws2") == B


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"ws2": ', r"JOBQL_WORKSPACE_DATABASES is not JSON: Expecting value"),
        ('["ws2"]', r"""JOBQL_WORKSPACE_DATABASES='\["ws2"\]': neither a JSON object nor a"""),
        ('{"ws2": 5}', r"JOBQL_WORKSPACE_DATABASES: workspace 'ws2' maps to 5, not a URL"),
        (
            '{"ws2": "postgresql+asyncpg://h/db"}',
            r"JOBQL_WORKSPACE_DATABASES: workspace 'ws2': postgresql beside a sqlite main",
        ),
        (
            '{"ws2": "nowhere"}',
            r"JOBQL_WORKSPACE_DATABASES: workspace 'ws2': 'nowhere' is not a database URL",
        ),
        ("/no/such/file.toml", r"neither a JSON object nor a readable file"),
    ],
)
def test_settings_refuse_a_map_they_cannot_use_by_name(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(value)


def test_settings_refuse_a_file_that_is_not_toml_or_json(tmp_path: Path) -> None:
    toml = tmp_path / "databases.toml"
    toml.write_text("ws2 = \n", encoding="utf-8")
    with pytest.raises(SettingsError, match=rf"JOBQL_WORKSPACE_DATABASES file {toml} is not TOML"):
        settings(str(toml))
    as_json = tmp_path / "databases.json"
    as_json.write_text("{", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"databases.json is not JSON"):
        settings(str(as_json))
    as_json.write_text('["ws2"]', encoding="utf-8")
    with pytest.raises(SettingsError, match=r"databases.json must map workspace names or patterns"):
        settings(str(as_json))
