"""`GET /metrics`: the Prometheus text format (prometheus-client), for tokens with the `metrics`
scope (anyone while jobql runs without tokens).

One worker: its own registry. Several (`PROMETHEUS_MULTIPROC_DIR` set, as `jobql serve --workers
N` does): prometheus-client's multiprocess collector sums every worker's files, so whichever
worker answers the scrape answers for all of them. The collectors' lag is read from the database
at scrape time (`collect_checkpoint`, which every `jobql collect` writes), by the answering
worker. Gauges a worker reads off its own state (its pools' connections) are published by
`publish` before the worker answers a scrape, and every `PUBLISH_EVERY` seconds by each worker
when there are several (`keep_publishing`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobql.access import principal_of
from jobql.collect.checkpoints import SOURCE_SCOPE
from jobql.http.endpoint import JSON, error_response
from jobql.resolvers.checkpoints import load_checkpoints
from jobql.resolvers.context import AsyncEngine

logger = logging.getLogger("jobql")

PATH = "/metrics"
SCOPE = "metrics"
# The collectors' checkpoints are read at most this long per scrape; past it they are left out.
COLLECTOR_READ_TIMEOUT = 2.0
PUBLISH_EVERY = 1.0


def multiprocess_dir() -> str | None:
    """Where the workers' values are kept (prometheus-client's own variable), if anywhere."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def worker_exit() -> None:
    """This worker stops: its gauges leave the sums (its counters stay)."""
    if multiprocess_dir():
        # prometheus-client's multiprocess module is not annotated (here and below).
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


async def keep_publishing(publish: Callable[[], None]) -> None:
    """A worker of several: its gauges, every PUBLISH_EVERY seconds (another worker may answer
    the scrape)."""
    while True:
        try:
            publish()
        except Exception:
            logger.exception("/metrics: publishing this worker's gauges failed")
        await asyncio.sleep(PUBLISH_EVERY)


def metrics_route(
    engine: AsyncEngine,
    publish: Callable[[], None] = lambda: None,
    *,
    others: Sequence[AsyncEngine] = (),
) -> Route:
    """/metrics; the collector's checkpoints are read from `engine` and `others` (the
    databases other workspaces live in)."""
    engines = [engine, *(other for other in others if other is not engine)]

    async def endpoint(request: Request) -> Response:
        if SCOPE not in principal_of(request.scope).scopes:
            return error_response(
                403, "This token may not read /metrics (scope `metrics`).", JSON, code="FORBIDDEN"
            )
        publish()
        sources = [
            row
            for rows in await asyncio.gather(*(_collector_rows(each) for each in engines))
            for row in rows
        ]
        body = await run_in_threadpool(_exposition, sources)
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return Route(PATH, endpoint, methods=["GET"])


def _exposition(sources: list[Any]) -> bytes:
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    extra = CollectorRegistry()
    extra.register(CollectorLag(sources, datetime.now(UTC)))
    return generate_latest(registry) + generate_latest(extra)


async def _collector_rows(engine: AsyncEngine) -> list[Any]:
    try:
        rows = await asyncio.wait_for(load_checkpoints(engine), COLLECTOR_READ_TIMEOUT)
    except Exception as exc:  # the database is away: the scrape still answers, without them
        logger.warning("/metrics: collector checkpoints not read: %s", exc)
        return []
    return [row for row in rows if row.scope == SOURCE_SCOPE]


class CollectorLag(Collector):
    """Per source of `jobql collect`: how far behind now its data is known complete (as
    `jobql collect --status` says), its last success and last error."""

    def __init__(self, sources: Iterable[Any], now: datetime) -> None:
        self.sources = list(sources)
        self.now = now

    def collect(self) -> Iterator[Metric]:
        labels = ["source", "kind"]
        lag = GaugeMetricFamily(
            "jobql_collector_lag_seconds",
            "How far behind now a collector source's data is known complete.",
            labels=labels,
        )
        success = GaugeMetricFamily(
            "jobql_collector_last_success_timestamp_seconds",
            "When a collector source's last pass succeeded (Unix time).",
            labels=labels,
        )
        error = GaugeMetricFamily(
            "jobql_collector_last_error_timestamp_seconds",
            "When a collector source's last failure was (Unix time).",
            labels=labels,
        )
        for row in self.sources:
            values = [row.source, row.kind]
            if row.high_water is not None:
                lag.add_metric(values, max(0.0, (self.now - _utc(row.high_water)).total_seconds()))
            if row.last_success_at is not None:
                success.add_metric(values, _utc(row.last_success_at).timestamp())
            if row.last_error_at is not None:
                error.add_metric(values, _utc(row.last_error_at).timestamp())
        yield from (lag, success, error)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


__all__ = ["PATH", "keep_publishing", "metrics_route", "multiprocess_dir", "worker_exit"]
