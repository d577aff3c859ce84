"""`GET /metrics`: the Prometheus text format (prometheus-client), for tokens with the `metrics`
scope (anyone while jobql runs without tokens).

One worker: its own registry. Several (`PROMETHEUS_MULTIPROC_DIR` set, as `jobql serve --workers
N` does): prometheus-client's multiprocess collector sums every worker's files, so whichever
worker answers the scrape answers for all of them. The collectors' lag is read from the database
at scrape time (`collect_checkpoint`, which every `jobql collect` writes), by the answering
worker. Gauges a worker reads off its own state (its pools' connections) are published by
`publish` before the worker answers a scrape, and every `PUBLISH_EVERY` seconds by each worker
when there are several (`keep_publishing`). A worker's live gauges leave the sums when it stops
(`worker_exit`) or, killed, at the next scrape (`forget_dead_workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobql.access import principal_of
from jobql.collect.checkpoints import SOURCE_SCOPE
from jobql.http.endpoint import JSON, error_response
from jobql.metrics import CollectorLag
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
    directory = multiprocess_dir()
    if directory:
        forget_dead_workers(directory)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    extra = CollectorRegistry()
    extra.register(CollectorLag(sources, datetime.now(UTC)))
    return generate_latest(registry) + generate_latest(extra)


def forget_dead_workers(directory: str) -> list[int]:
    """The live gauges of workers that are gone without `worker_exit` (SIGKILL, a crash, the
    OOM killer) leave the sums: prometheus-client's `mark_process_dead` for every pid of a
    `gauge_live*_<pid>.db` file that names no process. Returns those pids."""
    pids = {
        int(found[1]) for name in os.listdir(directory) if (found := _LIVE_GAUGES.fullmatch(name))
    }
    gone = []
    for pid in sorted(pids):
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            gone.append(pid)
        except PermissionError:
            pass  # it exists, as another user's process
    for pid in gone:
        # Another worker answering a scrape at the same time may have removed a file already.
        with contextlib.suppress(FileNotFoundError):
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    return gone


# prometheus-client's file of a worker's livesum, livemax, livemin or livemostrecent gauges.
_LIVE_GAUGES = re.compile(r"gauge_live[a-z]+_([0-9]+)\.db")


async def _collector_rows(engine: AsyncEngine) -> list[Any]:
    try:
        rows = await asyncio.wait_for(load_checkpoints(engine), COLLECTOR_READ_TIMEOUT)
    except Exception as exc:  # the database is away: the scrape still answers, without them
        logger.warning("/metrics: collector checkpoints not read: %s", exc)
        return []
    return [row for row in rows if row.scope == SOURCE_SCOPE]


__all__ = ["PATH", "keep_publishing", "metrics_route", "multiprocess_dir", "worker_exit"]
