"""Engine settings that reach the database."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.settings import Settings, SettingsError
from jobql.storage.engine import create_engine


@pytest.mark.parametrize("mode", ["force_generic_plan", "auto"])
async def test_the_plan_cache_mode_reaches_every_postgresql_connection(
    engine: AsyncEngine, mode: str
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting; SQLite has no plan cache mode")
    url = engine.url.render_as_string(hide_password=False)
    configured = create_engine(url, plan_cache_mode=mode)
    try:
        async with configured.connect() as connection:
            shown = (await connection.execute(text("SHOW plan_cache_mode"))).scalar_one()
    finally:
        await configured.dispose()
    assert shown == mode


def test_the_plan_cache_mode_setting_is_checked() -> None:
    assert Settings.from_env({}).plan_cache_mode == "auto"
    chosen = Settings.from_env({"JOBQL_PLAN_CACHE_MODE": "FORCE_GENERIC_PLAN"})
    assert chosen.plan_cache_mode == "force_generic_plan"
    with pytest.raises(SettingsError, match="JOBQL_PLAN_CACHE_MODE='sometimes'"):
        Settings.from_env({"JOBQL_PLAN_CACHE_MODE": "sometimes"})
