"""Shared fixtures: one migrated database per backend and session, isolated by workspace."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.storage import migrate
from jobql.storage.engine import create_engine

PG_ADMIN_URL = os.environ.get(
    "JOBQL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]


def _postgres_unavailable(reason: str) -> None:
    message = (
        f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({reason}). Start one with trust auth, or "
        "point JOBQL_TEST_POSTGRES_URL at a database the tests may create databases from."
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


async def create_postgres_database() -> tuple[str, AsyncEngine]:
    name = f"jobql_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to create one means "not available"
        await admin.dispose()
        _postgres_unavailable(str(exc).splitlines()[0])
    await admin.dispose()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    return name, create_engine(url)


async def drop_postgres_database(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@contextlib.asynccontextmanager
async def postgres_url() -> AsyncIterator[str]:
    """The URL of a PostgreSQL database of its own, dropped at the end."""
    name, engine = await create_postgres_database()
    await engine.dispose()
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await drop_postgres_database(name)


@pytest.fixture(scope="session", params=BACKENDS)
async def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """A migrated database of each backend, shared by the session; tests isolate by workspace."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "jobql.db"
        sqlite_engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(sqlite_engine)
        yield sqlite_engine
        await sqlite_engine.dispose()
        return
    name, pg_engine = await create_postgres_database()
    try:
        await migrate.upgrade(pg_engine)
        yield pg_engine
    finally:
        await pg_engine.dispose()
        await drop_postgres_database(name)


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.parameters: list[Any] = []

    def __call__(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any
    ) -> None:
        if statement.startswith("BEGIN"):
            return  # transaction control (SQLite's explicit BEGIN), not a query
        self.statements.append(statement)
        self.parameters.append(parameters)

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()
        self.parameters.clear()


@pytest.fixture
def statements(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[StatementCounter]:
    """Every SQL statement the engine sends, counted at SQLAlchemy's cursor-execute event and,
    for the compiled reads sent straight to asyncpg, where they leave for the driver."""
    from jobql.storage.engine import Reader

    counter = StatementCounter()
    event.listen(engine.sync_engine, "before_cursor_execute", counter)
    straight = Reader.fetch_driver

    async def counted(self: Reader, sql: str, args: Any, **options: Any) -> Any:
        if self._engine is engine:
            counter(None, None, sql, args)
        return await straight(self, sql, args, **options)

    monkeypatch.setattr(Reader, "fetch_driver", counted)
    yield counter
    event.remove(engine.sync_engine, "before_cursor_execute", counter)
