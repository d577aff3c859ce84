"""Operations tests: an app in process (metrics, health, spans) and `jobql serve` as a process
(several workers, JSON logs); `/metrics` is read with prometheus-client's own parser."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from jobql.app import create_app
from jobql.settings import Settings


def token_entry(secret: str, workspaces: list[str], scopes: list[str]) -> dict[str, Any]:
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return {"name": secret, "sha256": digest, "workspaces": workspaces, "scopes": scopes}


def tokens_json(*entries: dict[str, Any]) -> str:
    return json.dumps(list(entries))


@dataclass(frozen=True)
class Metrics:
    """One scrape: every sample by name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Metrics:
        samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(samples)

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 without any)."""
        wanted = set(labels.items())
        return sum(
            value
            for (sample, found), value in self.samples.items()
            if sample == name and wanted <= found
        )

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


def delta(before: Metrics, after: Metrics, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


AppClient = Callable[..., Awaitable[tuple[Starlette, httpx.AsyncClient]]]


@pytest.fixture
async def app_client(engine: AsyncEngine) -> AsyncIterator[AppClient]:
    """Apps on the test database (`Settings` fields as keywords), each with an httpx client;
    all closed at the end."""
    opened: list[tuple[Starlette, httpx.AsyncClient]] = []

    async def make(**fields: Any) -> tuple[Starlette, httpx.AsyncClient]:
        fields.setdefault("database_url", engine.url.render_as_string(hide_password=False))
        tracer_provider = fields.pop("tracer_provider", None)
        app = create_app(Settings(**fields), tracer_provider=tracer_provider)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
        )
        opened.append((app, client))
        return app, client

    yield make
    for app, client in opened:
        await client.aclose()
        if app.state.tracing is not None:
            app.state.tracing.close()
        await app.state.engine.dispose()


async def scrape(client: httpx.AsyncClient, **headers: str) -> Metrics:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Metrics.parse(response.text)
