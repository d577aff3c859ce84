"""Engine settings that reach the database."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from jobql.settings import Settings, SettingsError
from jobql.storage import engine as storage_engine
from jobql.storage.engine import Reader, _connection_lost, create_engine, is_unavailable


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


def _postgresql_only(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the driver pool is PostgreSQL's; SQLite reads through SQLAlchemy")


async def _backend_pids(engine: AsyncEngine) -> set[int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        return {row[0] for row in rows}


async def test_a_driver_read_survives_a_connection_the_server_dropped(
    engine: AsyncEngine,
) -> None:
    _postgresql_only(engine)
    configured = create_engine(engine.url.render_as_string(hide_password=False), pool_size=1)
    reader = Reader(configured)
    try:
        first = (await reader.fetch_driver("SELECT pg_backend_pid()", ()))[0][0]
        async with engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        # The one pooled connection is gone; the read runs on a fresh one without an error.
        again = (await reader.fetch_driver("SELECT pg_backend_pid(), $1::int + 1", (41,)))[0]
    finally:
        await configured.dispose()
    assert again[0] != first
    assert again[1] == 42


async def test_the_driver_pool_closes_with_its_engine(engine: AsyncEngine) -> None:
    _postgresql_only(engine)
    configured = create_engine(engine.url.render_as_string(hide_password=False))
    before = await _backend_pids(engine)
    try:
        pid = (await Reader(configured).fetch_driver("SELECT pg_backend_pid()", ()))[0][0]
        assert pid in await _backend_pids(engine) - before
    finally:
        await configured.dispose()
    for _ in range(50):  # the server notices the closed socket a moment later
        if pid not in await _backend_pids(engine):
            break
        await asyncio.sleep(0.02)
    assert pid not in await _backend_pids(engine)
    # A disposed engine opens a new driver pool on its next read, like its own pool.
    try:
        assert (await Reader(configured).fetch_driver("SELECT 7", ()))[0][0] == 7
    finally:
        await configured.dispose()


async def test_the_driver_pool_has_the_plan_cache_mode(engine: AsyncEngine) -> None:
    _postgresql_only(engine)
    url = engine.url.render_as_string(hide_password=False)
    configured = create_engine(url, plan_cache_mode="force_generic_plan")
    try:
        rows = await Reader(configured).fetch_driver("SHOW plan_cache_mode", ())
    finally:
        await configured.dispose()
    assert rows[0][0] == "force_generic_plan"


async def test_a_driver_read_can_ask_for_other_planner_settings(engine: AsyncEngine) -> None:
    """A read that asks for settings runs on a connection with them; the others keep the
    configured ones; asking for the configured ones opens no second pool; both close with the
    engine."""
    _postgresql_only(engine)
    url = engine.url.render_as_string(hide_password=False)
    configured = create_engine(url, pool_size=1)
    reader = Reader(configured)
    try:
        generic = await reader.fetch_driver(
            "SELECT current_setting('plan_cache_mode'), pg_backend_pid(), "
            "current_setting('enable_seqscan')",
            (),
            settings=(("plan_cache_mode", "force_generic_plan"), ("enable_seqscan", "off")),
        )
        assert generic[0][2] == "off"
        plain = await reader.fetch_driver(
            "SELECT current_setting('plan_cache_mode'), pg_backend_pid()", ()
        )
        same = await reader.fetch_driver(
            "SELECT current_setting('plan_cache_mode'), pg_backend_pid()",
            (),
            settings=(("plan_cache_mode", "auto"),),
        )
        assert generic[0][0] == "force_generic_plan"
        assert plain[0][0] == same[0][0] == "auto"
        assert plain[0][1] == same[0][1] != generic[0][1]
        pids = {generic[0][1], plain[0][1]}
        assert pids <= await _backend_pids(engine)
    finally:
        await configured.dispose()
    for _ in range(50):
        if not pids & await _backend_pids(engine):
            break
        await asyncio.sleep(0.05)
    assert not pids & await _backend_pids(engine)


async def test_a_custom_plan_read_is_planned_for_its_values_and_leaves_the_mode_as_it_was(
    engine: AsyncEngine,
) -> None:
    """A plan-time window on the partitioned tables (json_sql.windowed, docs/partitioning.md)."""
    _postgresql_only(engine)
    url = engine.url.render_as_string(hide_password=False)
    configured = create_engine(url, plan_cache_mode="force_generic_plan", pool_size=1)
    try:
        reader = Reader(configured)
        custom = await reader.fetch_driver(
            "SHOW plan_cache_mode", (), settings=(("plan_cache_mode", "force_custom_plan"),)
        )
        after = await reader.fetch_driver("SHOW plan_cache_mode", ())
    finally:
        await configured.dispose()
    assert (custom[0][0], after[0][0]) == ("force_custom_plan", "force_generic_plan")


def test_a_lost_driver_connection_is_unavailability_and_a_statement_error_is_not() -> None:
    assert is_unavailable(asyncpg.exceptions.AdminShutdownError("shutting down"))
    assert is_unavailable(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    assert is_unavailable(ConnectionResetError("reset by peer"))
    assert not is_unavailable(asyncpg.exceptions.QueryCanceledError("statement timeout"))
    assert not is_unavailable(asyncpg.exceptions.UndefinedColumnError("no such column"))
    assert not is_unavailable(asyncpg.exceptions.DataError("invalid input for query argument"))
    # Never run a statement twice that timed out, nor one whose arguments were wrong.
    assert not _connection_lost(TimeoutError())
    assert not _connection_lost(asyncpg.exceptions.DataError("invalid input"))


async def test_driver_reads_work_from_every_postgresql_engine(engine: AsyncEngine) -> None:
    """An `execution_options()` copy shares its engine's driver pool; a URL option only
    SQLAlchemy knows does not reach asyncpg; an engine made elsewhere reads on its own pool."""
    _postgresql_only(engine)
    url = engine.url.render_as_string(hide_password=False)
    configured = create_engine(url + "?prepared_statement_cache_size=50")
    elsewhere = create_async_engine(url)
    try:
        copy = configured.execution_options(isolation_level="AUTOCOMMIT")
        first = (await Reader(configured).fetch_driver("SELECT pg_backend_pid()", ()))[0][0]
        again = (await Reader(copy).fetch_driver("SELECT pg_backend_pid()", ()))[0][0]
        assert again == first  # the one pooled connection of the same driver pool
        own = Reader(elsewhere)
        try:
            assert (await own.fetch_driver("SELECT $1::int * 2", (21,)))[0][0] == 42
        finally:
            await own.close()  # a request's reader is closed at its end
    finally:
        await configured.dispose()
        await elsewhere.dispose()


# SQLAlchemy, invalidating the connection that the cancellation interrupted, leaves one asyncpg
# connect() coroutine unawaited (its own cleanup, not ours).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_write_cancelled_in_a_statement_ends_with_the_cancellation(
    engine: AsyncEngine,
) -> None:
    """Cancelled while the database works (a request's timeout, a server stopping): the caller
    gets CancelledError, not an error of the cleanup (which cannot even ask the invalidated
    connection for its info), and the next write works."""
    _postgresql_only(engine)

    async def slow(connection: Any) -> None:
        await connection.execute(text("SELECT pg_sleep(5)"))

    task = asyncio.create_task(storage_engine.write(engine, slow))
    await asyncio.sleep(0.3)
    task.cancel()
    # Not pytest.raises: the test's own task would count the CancelledError as its own.
    outcome = (await asyncio.gather(task, return_exceptions=True))[0]
    assert isinstance(outcome, asyncio.CancelledError), repr(outcome)

    async def quick(connection: Any) -> int:
        return int((await connection.execute(text("SELECT 1"))).scalar_one())

    assert await storage_engine.write(engine, quick) == 1
