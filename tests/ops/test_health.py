"""/livez answers without the database; /readyz is 503 with the reason while the database is
unreachable or behind the code's Alembic head, and 200 again once it is back; no token needed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

import jobql.health
from jobql.app import create_app
from jobql.settings import Settings
from jobql.storage import migrate
from jobql.storage.engine import create_engine
from tests.conftest import postgres_url
from tests.ops.conftest import token_entry, tokens_json
from tests.ops.proxy import CuttableProxy

# Every route but the health checks needs one of these.
TOKENS = tokens_json(token_entry("ops-reader", ["*"], ["read"]))


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of its own (the test migrates and downgrades it)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'health.db'}"
        return
    async with postgres_url() as url:
        yield url


def client_of(url: str, **fields: Any) -> tuple[httpx.AsyncClient, Starlette]:
    app = create_app(Settings(database_url=url, tokens=TOKENS, **fields))
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://jobql.test"), app


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_unreachable_database(backend: str, tmp_path: Path) -> None:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
        if backend == "sqlite"
        else "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    )
    client, app = client_of(url, pool_timeout=1.0)
    async with client:
        assert (await client.get("/livez")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["reason"].startswith("database unreachable")
        assert (await client.get("/healthz")).status_code == 503
    await app.state.engine.dispose()


async def test_revision_behind_the_code(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(fresh_database)
    await migrate.upgrade(engine)
    head = migrate.head_revision()
    client, app = client_of(fresh_database)
    try:
        async with client:
            assert (await client.get("/readyz")).json() == {"status": "ok", "revision": head}
            await migrate.downgrade(engine, "-1")
            older = await migrate.current_revision(engine)
            # Within the cache's lifetime the revision read before stands.
            assert (await client.get("/readyz")).status_code == 200
            monkeypatch.setattr(jobql.health, "REVISION_TTL", 0.0)
            behind = await client.get("/readyz")
            assert behind.status_code == 503
            assert behind.json() == {
                "status": "unavailable",
                "reason": f"database at revision {older}, this jobql needs {head}: "
                "run `jobql migrate`",
            }
            assert (await client.get("/livez")).status_code == 200
            await migrate.upgrade(engine)
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await app.state.engine.dispose()
        await engine.dispose()


async def test_readiness_follows_the_database() -> None:
    """PostgreSQL behind a TCP proxy that goes away (open connections reset, new ones refused),
    then comes back."""
    async with postgres_url() as url:
        await _follow_the_database(url)


async def _follow_the_database(fresh_database: str) -> None:
    engine = create_engine(fresh_database)
    await migrate.upgrade(engine)
    await engine.dispose()
    url = httpx.URL(fresh_database.replace("postgresql+asyncpg", "http"))
    proxy = CuttableProxy(url.host, url.port or 5432)
    await proxy.start()
    through = fresh_database.replace(f"{url.host}:{url.port}", f"127.0.0.1:{proxy.port}")
    client, app = client_of(through, pool_timeout=2.0)
    try:
        async with client:
            assert (await client.get("/readyz")).status_code == 200
            await proxy.cut()
            cut = await client.get("/readyz")
            assert cut.status_code == 503
            assert cut.json()["reason"].startswith("database unreachable")
            assert (await client.get("/livez")).status_code == 200
            await proxy.restore()
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await proxy.cut()
        await app.state.engine.dispose()
