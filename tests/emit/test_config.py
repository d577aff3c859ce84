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
