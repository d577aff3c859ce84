"""Schema migrations (Alembic), run programmatically on an async engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(
    connection: Connection | None = None, progress: Callable[[str], None] | None = None
) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    config.attributes["connection"] = connection
    if progress is not None:  # long migrations report their steps here (default: stderr)
        config.attributes["progress"] = progress
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def upgrade(
    engine: AsyncEngine, revision: str = "head", progress: Callable[[str], None] | None = None
) -> None:
    await _run(engine, lambda config: command.upgrade(config, revision), progress)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, lambda config: command.downgrade(config, revision))


async def _run(
    engine: AsyncEngine,
    step: Callable[[Config], None],
    progress: Callable[[str], None] | None = None,
) -> None:
    """One migration run in one transaction.

    On SQLite, foreign keys are off while it runs (they can only be switched outside a
    transaction): a migration that rebuilds a table drops the old one, and with foreign keys on
    that drop would cascade to every referencing row. The keys are checked before commit.
    """
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            await _pragma(connection, "PRAGMA foreign_keys=OFF")
        try:
            async with connection.begin():
                await connection.run_sync(lambda sync: step(alembic_config(sync, progress)))
                if sqlite:
                    broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                await _pragma(connection, "PRAGMA foreign_keys=ON")


async def _pragma(connection: AsyncConnection, statement: str) -> None:
    # Straight to the driver: through SQLAlchemy it would run inside an (auto)begun transaction,
    # where SQLite ignores this pragma.
    raw = await connection.get_raw_connection()
    await raw.driver_connection.execute(statement)  # type: ignore[union-attr]


async def is_up_to_date(engine: AsyncEngine) -> bool:
    return await current_revision(engine) == head_revision()
