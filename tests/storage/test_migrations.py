"""The migrations build exactly the models' schema, and go down and up again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.storage import migrate
from jobql.storage.engine import create_engine
from jobql.storage.models import Base
from tests.conftest import create_postgres_database, drop_postgres_database


def diff(connection: Any) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_database_matches_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []
    assert await migrate.is_up_to_date(engine)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_downgrade_to_empty_and_upgrade_again(tmp_path: Path, backend: str) -> None:
    if backend == "sqlite":
        name, engine = None, create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    else:
        name, engine = await create_postgres_database()
    try:
        assert await migrate.current_revision(engine) is None
        assert not await migrate.is_up_to_date(engine)
        await migrate.upgrade(engine)
        await migrate.downgrade(engine, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await migrate.upgrade(engine)
        assert await migrate.is_up_to_date(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
    finally:
        await engine.dispose()
        if name is not None:
            await drop_postgres_database(name)


def test_migration_files_are_named_by_date_and_slug() -> None:
    versions = Path(migrate.MIGRATIONS, "versions")
    names = [p.name for p in versions.glob("*.py")]
    assert names
    for name in names:
        date, _, slug = name.removesuffix(".py").partition("_")
        assert len(date) == 10, name
        assert date[4] == date[7] == "-", name
        assert slug, name


async def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    from sqlalchemy import text

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        async with engine.connect() as connection:
            mode = await connection.scalar(text("PRAGMA journal_mode"))
            keys = await connection.scalar(text("PRAGMA foreign_keys"))
            timeout = await connection.scalar(text("PRAGMA busy_timeout"))
        assert (mode, keys, timeout) == ("wal", 1, 5000)
    finally:
        await engine.dispose()


async def test_upgrading_an_existing_database_keeps_its_data(tmp_path: Path) -> None:
    from sqlalchemy import text

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await migrate.upgrade(engine, "0001")
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO workspace (id, name) VALUES (1, 'w')"))
            await connection.execute(
                text("INSERT INTO job (id, workspace_id, name, type) VALUES (1, 1, 'j', 'BATCH')")
            )
        await migrate.upgrade(engine)
        assert await migrate.is_up_to_date(engine)
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT name, parent_explicit FROM job"))).all()
        assert [tuple(row) for row in rows] == [("j", 0)]
    finally:
        await engine.dispose()
