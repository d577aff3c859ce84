"""The Starlette application: engine lifecycle and routes."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from jobql.access import Access, Authentication
from jobql.dashboard import dashboard_routes
from jobql.health import Health
from jobql.http.admission import ConcurrencyLimit
from jobql.http.body import BodyLimit, LingeringClose
from jobql.http.endpoint import GraphQLEndpoint
from jobql.http.lane import FastLane
from jobql.http.metrics import keep_publishing, metrics_route, multiprocess_dir, worker_exit
from jobql.http.persisted import Allowlist, PersistedQueries
from jobql.http.sse import GraphQLOverSSE
from jobql.http.subscriptions import LiveLimits, Runner
from jobql.http.telemetry import Telemetry
from jobql.logs import ACCESS_LOGGER
from jobql.resolvers.live import Broker
from jobql.rest import RequestIds, rest_routes
from jobql.rest.endpoint import request_id_of
from jobql.schema import create_schema
from jobql.schema.limits import Limits
from jobql.settings import Settings
from jobql.storage.engine import create_engine, publish_pool_metrics
from jobql.storage.identifiers import CursorCodec
from jobql.storage.migrate import is_up_to_date
from jobql.storage.placement import Databases
from jobql.storage.placement import attach as attach_databases
from jobql.storage.replicas import Replicas
from jobql.storage.replicas import attach as attach_replicas
from jobql.storage.replicas import from_urls as replicas_from_urls
from jobql.tracing import Tracing, provider_from_settings

logger = logging.getLogger("jobql")


class DatabaseNotMigrated(RuntimeError):
    pass


def serve_app() -> Starlette:
    """`jobql serve`'s app (uvicorn's factory, in each worker): `create_app` that also tunes the
    garbage collector once started (`tune_collector`)."""
    return create_app(tune_gc=True)


def tune_collector(threshold: int) -> None:
    """What start-up made (the schema, the models, the modules: most of a worker's objects)
    leaves the collector's sight (gc.freeze), and the youngest generation is collected every
    `threshold` allocations instead of 700. Full collections then scan only what requests and
    subscriptions hold: in bench.live (1,000 subscribers) a worker's longest collection pause
    went from about 140-170 ms to 55 ms, and its collections from about 10% of its CPU to 3%."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, *gc.get_threshold()[1:])


def create_app(
    settings: Settings | None = None, *, tracer_provider: Any = None, tune_gc: bool = False
) -> Starlette:
    """The app; `tracer_provider` (OpenTelemetry) traces it whatever JOBQL_OTEL_EXPORTER says;
    `tune_gc` (`jobql serve`): `tune_collector` once started, unless JOBQL_GC_THRESHOLD=0."""
    settings = settings or Settings.from_env()
    access = Access.from_config(settings.tokens, settings.tokens_file)
    engine = create_engine(
        settings.database_url,
        pool_size=settings.pool_size,
        pool_timeout=settings.pool_timeout,
        plan_cache_mode=settings.plan_cache_mode,
        observe=settings.metrics,
    )
    # Workspaces in other databases (JOBQL_WORKSPACE_DATABASES): their engines, pooled alike.
    databases = _databases(settings, engine)
    replicas = _replicas(settings, engine)
    provider = tracer_provider or provider_from_settings(settings.otel_exporter)
    tracing = Tracing(provider, engine) if provider is not None else None
    request_log = (
        logging.getLogger(ACCESS_LOGGER)
        if settings.access_log and settings.log_format == "json"
        else None
    )
    if settings.log_format == "json":
        logging.captureWarnings(True)  # a warning is a JSON line too, not raw stderr
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
        tracer_provider=provider,
    )
    cursors = CursorCodec(settings.cursor_secret)
    live_limits = LiveLimits(
        queue_size=settings.live_queue_size,
        max_per_worker=settings.live_max_subscriptions,
        max_per_connection=settings.live_max_per_connection,
        keepalive=settings.live_keepalive,
    )

    # This worker's reader of the event log, started and stopped with the app; one per database.
    def make_broker(database: AsyncEngine) -> Broker:
        return Broker(
            database,
            poll_interval=settings.live_poll_interval,
            batch_interval=settings.live_batch_interval,
            max_age=timedelta(seconds=settings.event_retention_seconds),
            max_count=settings.event_retention_count,
            # At most half the pool for subscriptions' reads: writes and queries keep the rest.
            read_concurrency=max(1, settings.pool_size // 2),
        )

    broker = make_broker(engine)
    other_brokers = {
        other: make_broker(other) for other in databases.engines if other is not engine
    }
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
    graphql.runner = Runner(schema, broker, engine, cursors, live_limits, others=other_brokers)
    # OpenLineage out (off unless configured): reads the event log in the background, one per
    # database.
    emitter = _emitter(settings, engine)
    other_emitters = [
        found
        for other in databases.engines
        if other is not engine and (found := _emitter(settings, other)) is not None
    ]

    def publish_pools() -> None:
        publish_pool_metrics(engine)

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
            for database in databases.engines:
                if not await is_up_to_date(database):
                    where = (
                        ""
                        if database is engine
                        else f" ({database.url.render_as_string(hide_password=True)})"
                    )
                    raise DatabaseNotMigrated(
                        f"The database{where} is not migrated to this version of jobql: run "
                        "`jobql migrate`."
                    )
            if replicas is not None:
                await replicas.start()
            await broker.start()
            for other in other_brokers.values():
                await other.start()
            for started in [*([emitter] if emitter is not None else []), *other_emitters]:
                await started.start()
            # Several workers: another worker may answer a scrape; this one's gauges go out
            # every second (one worker publishes when it answers).
            publisher = (
                asyncio.create_task(keep_publishing(publish_pools), name="jobql-metrics")
                if settings.metrics and multiprocess_dir()
                else None
            )
            if tune_gc and settings.gc_threshold:
                tune_collector(settings.gc_threshold)
            try:
                yield
            finally:
                if publisher is not None:
                    publisher.cancel()
                assert graphql.runner is not None
                await graphql.runner.close()
                for stopped in [*([emitter] if emitter is not None else []), *other_emitters]:
                    await stopped.close()
                for other in other_brokers.values():
                    await other.close()
                await broker.close()
        finally:
            if replicas is not None:
                await replicas.close()
            await databases.dispose_others()
            await engine.dispose()
            if tracing is not None:
                tracing.close()
            worker_exit()

    app = Starlette(
        routes=[
            # No method list: the view answers other methods with a JSON 405 itself.
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            # GraphQL over Server-Sent Events (graphql-sse, distinct connections).
            Route("/graphql/stream", GraphQLOverSSE(graphql)),
            # /livez, /readyz, /healthz (jobql/health.py) and Prometheus' /metrics.
            *Health(
                engine, timeout=settings.pool_timeout, replicas=replicas, others=databases.engines
            ).routes(),
            *(
                [metrics_route(engine, publish_pools, others=databases.engines)]
                if settings.metrics
                else []
            ),
            Mount("/static", StaticFiles(packages=[("jobql", "static")]), name="static"),
            # The example dashboard (examples/dashboard/): static files that call /graphql.
            *dashboard_routes(settings.dashboard_dir),
            # The source APIs of the seed pages (DLF, SchedulerX, Realtime Compute).
            *rest_routes(engine, CursorCodec(settings.cursor_secret), settings),
        ],
        lifespan=lifespan,
        middleware=[
            # The request's span (traceparent in), around everything else.
            *([tracing.middleware()] if tracing is not None else []),
            # Metrics, the JSON request line, the span's name: of every answer, early ones too.
            *(
                [
                    Middleware(
                        Telemetry,
                        count=settings.metrics,
                        log=request_log,
                        request_id=_request_id,
                        tracing=tracing is not None,
                    )
                ]
                if settings.metrics or request_log is not None or tracing is not None
                else []
            ),
            # Every reply names its request (X-Request-Id), early answers and the fast lane's
            # too; inside Telemetry, whose log line names the same id.
            Middleware(RequestIds),
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
    app.state.replicas = replicas
    app.state.databases = databases
    app.state.broker = broker
    app.state.emitter = emitter
    app.state.tracing = tracing
    return app


def _databases(settings: Settings, engine: AsyncEngine) -> Databases:
    """The databases the workspaces live in: `engine`'s (JOBQL_DATABASE_URL) and those
    JOBQL_WORKSPACE_DATABASES names, attached so that every request context finds its own."""

    def make(url: str) -> AsyncEngine:
        return create_engine(
            url,
            pool_size=settings.pool_size,
            pool_timeout=settings.pool_timeout,
            plan_cache_mode=settings.plan_cache_mode,
        )

    databases = Databases(settings.placement(), engine, make)
    if databases.placement.spread:
        attach_databases(databases)
    return databases


def _replicas(settings: Settings, engine: AsyncEngine) -> Replicas | None:
    """The read replicas (JOBQL_DATABASE_REPLICA_URLS), each with pools like the primary's,
    attached to the primary's engine so that every request context finds them."""
    if not settings.replica_urls:
        return None
    engines = [
        create_engine(
            url,
            pool_size=settings.pool_size,
            pool_timeout=settings.pool_timeout,
            plan_cache_mode=settings.plan_cache_mode,
        )
        for url in settings.replica_urls
    ]
    replicas = replicas_from_urls(
        engine,
        settings.replica_urls,
        engines,
        max_lag=settings.replica_max_lag,
        check_interval=settings.replica_check_interval,
        timeout=settings.pool_timeout,
    )
    attach_replicas(engine, replicas)
    return replicas


def _emitter(settings: Settings, engine: Any) -> Any:
    """The OpenLineage emitter, or None; openlineage-python is only imported when it runs."""
    if settings.openlineage == "off":
        return None
    from jobql.emit.emitter import from_settings

    return from_settings(settings, engine)


def _request_id(scope: Scope) -> str:
    """The request's id in its log line: the one its reply's `X-Request-Id` carries."""
    return request_id_of(Request(scope))
