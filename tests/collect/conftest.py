"""An upstream jobql serving the sources' endpoints (a `jobql serve` subprocess on its own SQLite
database), and the collecting jobql's GraphQL on the test database of each backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.storage import migrate
from jobql.storage.engine import create_engine
from tests.collect.proxy import FaultProxy
from tests.collect.upstream import UPSTREAM_TIMEZONE, Server
from tests.rest.live import live_app


@pytest.fixture(scope="session")
async def upstream(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """The source: jobql's own DLF, SchedulerX and Realtime Compute endpoints, as the vendors'
    SDKs call them, on a database of its own (tests write into workspaces of their own)."""
    path = tmp_path_factory.mktemp("upstream") / "upstream.db"
    server = Server(f"sqlite+aiosqlite:///{path}", JOBQL_TIMEZONE=UPSTREAM_TIMEZONE)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def mirror_url(engine: AsyncEngine) -> Iterator[str]:
    """The collecting jobql (the test database) serving GraphQL."""
    with live_app(engine) as url:
        yield url


@pytest.fixture
async def mirror(mirror_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mirror_url, timeout=30.0) as http:
        yield http


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
async def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    """A collecting database of its own, on SQLite only (for tests whose subject is the
    collector's behaviour under faults, not the backend)."""
    path = tmp_path_factory.mktemp("collector") / "collector.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def sqlite_mirror_url(sqlite_engine: AsyncEngine) -> Iterator[str]:
    with live_app(sqlite_engine) as url:
        yield url


@pytest.fixture
async def sqlite_mirror(sqlite_mirror_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sqlite_mirror_url, timeout=30.0) as http:
        yield http


@pytest.fixture
async def proxy(upstream: Server) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of the upstream (no faults until a test says so)."""
    fault_proxy = FaultProxy(upstream.url, hold=1.0, slow=0.2)
    await fault_proxy.start()
    yield fault_proxy
    await fault_proxy.close()
