"""The source REST endpoints as Starlette routes, built from what `create_app` has."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from starlette.routing import Route

from jobql.resolvers.context import AsyncEngine, CursorCodec
from jobql.rest import dlf_v1, dlf_v2, flink, lineage, schedulerx
from jobql.rest.endpoint import Backend, with_request_ids
from jobql.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


def rest_routes(
    engine: AsyncEngine,
    cursors: CursorCodec,
    settings: Settings,
    *,
    now: Callable[[], datetime] = utc_now,
) -> list[Route]:
    """Every source endpoint; `now` is the clock of DLF v2's default window (tests fix it).
    Each route gives its requests ids and its replies `X-Request-Id` (`SourceRoute`)."""
    backend = Backend(engine=engine, cursors=cursors, zone=ZoneInfo(settings.timezone), now=now)
    routes = [
        *dlf_v1.routes(backend),
        *dlf_v2.routes(backend),
        *schedulerx.routes(backend),
        *flink.routes(backend),
        *lineage.routes(backend, settings.max_body_bytes),
    ]
    return [with_request_ids(route) for route in routes]
