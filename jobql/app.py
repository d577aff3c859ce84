"""The Starlette application: engine lifecycle and routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from jobql.access import Access, Authentication
from jobql.dashboard import dashboard_routes
from jobql.http.admission import ConcurrencyLimit
from jobql.http.body import BodyLimit, LingeringClose
from jobql.http.endpoint import GraphQLEndpoint
from jobql.http.lane import FastLane
from jobql.http.persisted import Allowlist, PersistedQueries
from jobql.http.sse import GraphQLOverSSE
from jobql.http.subscriptions import LiveLimits, Runner
from jobql.resolvers.live import Broker
from jobql.rest import RequestIds, rest_routes
from jobql.schema import create_schema
from jobql.schema.limits import Limits
from jobql.settings import Settings
from jobql.storage.engine import create_engine
from jobql.storage.identifiers import CursorCodec
from jobql.storage.migrate import is_up_to_date

logger = logging.getLogger("jobql")


class DatabaseNotMigrated(RuntimeError):
    pass


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    access = Access.from_config(settings.tokens, settings.tokens_file)
    engine = create_engine(
        settings.database_url,
        pool_size=settings.pool_size,
        pool_timeout=settings.pool_timeout,
        plan_cache_mode=settings.plan_cache_mode,
    )
    limits = Limits(
        max_depth=settings.max_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        max_cost=settings.max_cost,
    )
    schema = create_schema(
        limits,
        public=settings.public_schema,
        read_strategy=settings.read_strategy,
        report_strategy=settings.debug_strategy,
        fast_path=settings.fast_path,
    )
    cursors = CursorCodec(settings.cursor_secret)
    live_limits = LiveLimits(
        queue_size=settings.live_queue_size,
        max_per_worker=settings.live_max_subscriptions,
        max_per_connection=settings.live_max_per_connection,
        keepalive=settings.live_keepalive,
    )
    # This worker's reader of the event log, started and stopped with the app.
    broker = Broker(
        engine,
        poll_interval=settings.live_poll_interval,
        batch_interval=settings.live_batch_interval,
        max_age=timedelta(seconds=settings.event_retention_seconds),
        max_count=settings.event_retention_count,
        # At most half the pool for subscriptions' reads: writes and queries keep the rest.
        read_concurrency=max(1, settings.pool_size // 2),
    )
    graphql = GraphQLEndpoint(
        schema,
        engine,
        cursors,
        graphiql=settings.public_schema,
        max_body_bytes=settings.max_body_bytes,
        timeout=settings.request_timeout,
        persisted=PersistedQueries(
            enabled=settings.persisted_queries,
            max_entries=settings.persisted_query_cache_size,
            allowlist=(
                Allowlist.from_directory(settings.allowed_operations)
                if settings.allowed_operations
                else None
            ),
        ),
        cache_max_age=settings.cache_max_age,
        access=access,
        live_limits=live_limits,
    )
    graphql.runner = Runner(schema, broker, engine, cursors, live_limits)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if access.open:
            logger.warning(
                "no API tokens configured: jobql is OPEN, anyone who reaches it may read and "
                "write every workspace (set JOBQL_TOKENS or JOBQL_TOKENS_FILE)"
            )
        else:
            logger.info("%d API token(s) configured", len(access.tokens))
        try:
            if not await is_up_to_date(engine):
                raise DatabaseNotMigrated(
                    "The database is not migrated to this version of jobql: run `jobql migrate`."
                )
            await broker.start()
            try:
                yield
            finally:
                assert graphql.runner is not None
                await graphql.runner.close()
                await broker.close()
        finally:
            await engine.dispose()

    async def healthz(_request: Request) -> JSONResponse:
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            logger.exception("health check: database unreachable")
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            # No method list: the view answers other methods with a JSON 405 itself.
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            # GraphQL over Server-Sent Events (graphql-sse, distinct connections).
            Route("/graphql/stream", GraphQLOverSSE(graphql)),
            Route("/healthz", healthz, methods=["GET"]),
            Mount("/static", StaticFiles(packages=[("jobql", "static")]), name="static"),
            # The example dashboard (examples/dashboard/): static files that call /graphql.
            *dashboard_routes(settings.dashboard_dir),
            # The source APIs of the seed pages (DLF, SchedulerX, Realtime Compute).
            *rest_routes(engine, CursorCodec(settings.cursor_secret), settings),
        ],
        lifespan=lifespan,
        middleware=[
            # Every reply but /graphql's names its request (X-Request-Id), early answers too.
            Middleware(RequestIds, exempt=("/graphql",)),
            # Outermost but for that, so that it sees every early answer (413, 503, 401, 405 ...).
            Middleware(LingeringClose, max_body_bytes=settings.max_body_bytes),
            # /graphql answers its own 413 (the fast lane hands oversized bodies on to it).
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes, exempt=("/graphql",)),
            Middleware(ConcurrencyLimit, limit=settings.max_concurrency),
            # Known fast-path documents are answered here, before routing (see FastLane).
            *(
                [Middleware(FastLane, endpoint=graphql, access=access)]
                if settings.fast_lane
                else []
            ),
            Middleware(Authentication, access=access),
        ],
    )
    app.state.engine = engine
    app.state.broker = broker
    return app
