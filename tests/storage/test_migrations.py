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
from jobql.storage.partitions import schema_filters
from tests.conftest import create_postgres_database, drop_postgres_database


def diff(connection: Any) -> list[Any]:
    # Partitions, and what the models mark for the other dialect, are left out (see
    # jobql/storage/partitions.py): the same filters the migrations' environment uses.
    opts = {"compare_type": True, **schema_filters(connection.dialect.name)}
    context = MigrationContext.configure(connection, opts=opts)
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


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrading_and_downgrading_keep_the_data(tmp_path: Path, backend: str) -> None:
    """Every migration after the baseline, up and down, on a database with rows in every table
    (a table rebuilt with foreign keys on would take every instance with it)."""
    from sqlalchemy import text

    if backend == "sqlite":
        name, engine = None, create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    else:
        name, engine = await create_postgres_database()
    rows = [
        "INSERT INTO workspace (id, name) VALUES (1, 'w')",
        "INSERT INTO job (id, workspace_id, name, type) VALUES (1, 1, 'j', 'BATCH')",
        "INSERT INTO instance (id, workspace_id, job_id, vendor_instance_id, status, "
        "instance_type, plan_time, force_success, ignore_success) VALUES "
        "(1, 1, 1, 7, 'SUCCESS', 'GENERAL', '2019-03-04T03:53:00.000Z', false, false)",
        "INSERT INTO instance_node (id, workspace_id, instance_id, position, name, type, status) "
        "VALUES (1, 1, 1, 0, 'n', 'Dummy', 'SUCCESS')",
    ]

    async def counts() -> list[int]:
        async with engine.connect() as connection:
            return [
                int(await connection.scalar(text(f"SELECT count(*) FROM {table}")))
                for table in ("workspace", "job", "instance", "instance_node")
            ]

    try:
        await migrate.upgrade(engine, "0001")
        async with engine.begin() as connection:
            for statement in rows:
                await connection.execute(text(statement))
        await migrate.upgrade(engine)
        assert await counts() == [1, 1, 1, 1]
        await migrate.downgrade(engine, "0001")
        assert await counts() == [1, 1, 1, 1]
        await migrate.upgrade(engine)
        assert await counts() == [1, 1, 1, 1]
        assert await migrate.is_up_to_date(engine)
    finally:
        await engine.dispose()
        if name is not None:
            await drop_postgres_database(name)
