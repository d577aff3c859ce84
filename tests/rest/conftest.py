"""Clients for the source REST endpoints: the whole app, or its REST routes with a fixed clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from jobql.app import create_app
from jobql.rest.routes import rest_routes, utc_now
from jobql.settings import DEFAULT_CURSOR_SECRET, Settings
from jobql.storage.identifiers import CursorCodec

BASE_URL = "http://jobql.test"

RestClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The whole application, as `jobql serve` builds it."""
    app = create_app(Settings(database_url=engine.url.render_as_string(hide_password=False)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        yield http
    await app.state.engine.dispose()


@pytest.fixture
def rest_client(engine: AsyncEngine) -> RestClient:
    """The REST routes alone on the test engine, with a fixed clock and a time zone of choice."""

    @asynccontextmanager
    async def make(
        *, now: datetime | None = None, timezone: str = "UTC"
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(
            database_url=engine.url.render_as_string(hide_password=False), timezone=timezone
        )
        clock = utc_now if now is None else (lambda: now)
        app = Starlette(
            routes=rest_routes(engine, CursorCodec(DEFAULT_CURSOR_SECRET), settings, now=clock)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield http

    return make
