"""Off by default: no emitter without openlineage-python's configuration or JOBQL_OPENLINEAGE=on;
OPENLINEAGE_DISABLED and JOBQL_OPENLINEAGE=off win."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobql.app import create_app
from jobql.emit.config import emitter_enabled
from jobql.settings import Settings, SettingsError
from tests.emit.support import openlineage_env


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No openlineage.yml in the working directory nor in ~/.openlineage."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_off_by_default(elsewhere: Path) -> None:
    with openlineage_env():
        app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{elsewhere / 'x.db'}"))
        assert app.state.emitter is None
        assert not emitter_enabled("auto")


def test_on_with_the_standard_configuration(elsewhere: Path) -> None:
    env = {"OPENLINEAGE_URL": "http://127.0.0.1:9"}
    assert emitter_enabled("auto", env)
    assert emitter_enabled("on", {})
    assert not emitter_enabled("off", env)
    assert not emitter_enabled("on", {**env, "OPENLINEAGE_DISABLED": "true"})
    assert emitter_enabled("auto", {"OPENLINEAGE__TRANSPORT__TYPE": "console"})
    (elsewhere / "openlineage.yml").write_text("transport:\n  type: console\n")
    assert emitter_enabled("auto", {})
    with openlineage_env():
        app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{elsewhere / 'x.db'}"))
        assert app.state.emitter is not None
        assert app.state.emitter.sender.kind == "console"
        assert app.state.emitter.namespace("ws1") == "jobql/ws1"


def test_settings() -> None:
    settings = Settings.from_env(
        {"JOBQL_OPENLINEAGE": "ON", "JOBQL_OPENLINEAGE_NAMESPACE": "prod/{workspace}"}
    )
    assert (settings.openlineage, settings.openlineage_namespace) == ("on", "prod/{workspace}")
    assert Settings.from_env({}).openlineage == "auto"
    with pytest.raises(SettingsError, match="JOBQL_OPENLINEAGE="):
        Settings.from_env({"JOBQL_OPENLINEAGE": "maybe"})
    with pytest.raises(SettingsError, match="JOBQL_OPENLINEAGE_NAMESPACE"):
        Settings.from_env({"JOBQL_OPENLINEAGE_NAMESPACE": "{job}"})


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("OPENLINEAGE_URL", "::bad", "Need valid url"),
        ("OPENLINEAGE__TRANSPORT__TYPE", "nosuch", "Failed to import nosuch"),
    ],
)
def test_serve_refuses_a_client_configuration_it_cannot_use(
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    named: str,
) -> None:
    """By name, before any worker starts (no traceback per worker, no half-started server)."""
    from jobql import cli

    monkeypatch.setenv("JOBQL_DATABASE_URL", f"sqlite+aiosqlite:///{elsewhere / 'x.db'}")
    started: list[str] = []
    monkeypatch.setattr(cli, "_prepare_database", lambda settings: started.append("db"))
    with openlineage_env(**{variable: value}):
        assert cli.main(["serve", "--port", "1"]) == 1
    message = capsys.readouterr().err
    assert message.startswith("jobql: OpenLineage client configuration: "), message
    assert named in message
    assert not started
