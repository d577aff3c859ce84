"""The Prometheus metrics (prometheus-client) that any layer may count, and what one HTTP request
notes for its own metrics, log line and span.

Neutral ground: it imports nothing of jobql, so that storage, resolvers, schema and http may all
count here without importing each other. `jobql/http/metrics.py` serves them on `/metrics`;
`jobql/http/telemetry.py` turns each request's `RequestRecord` into its request metrics.

`jobql collect --metrics-address` serves the collector's process's set, `jobql import
--metrics-textfile` writes the import's.

One set per process. With `PROMETHEUS_MULTIPROC_DIR` set before this module is first imported
(`jobql serve --workers N` sets it for its workers), prometheus-client keeps every value in a
file of that directory per process, and `/metrics` sums them over the workers: counters and
histograms of every worker that ever ran, gauges of the live ones (`livesum`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Seconds. Fine below 10 ms, where the fast lane answers.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
POOL_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)

# Its count is the requests answered (as OpenTelemetry's http.server.request.duration): one
# update per request, not a counter beside it.
REQUESTS = Histogram(
    "jobql_http_request_duration_seconds",
    "HTTP requests, by route, GraphQL operation, read strategy and outcome: the time from "
    "arrival to the end of the answer (on /graphql/stream, the stream's life).",
    ["route", "operation", "strategy", "outcome"],
    buckets=LATENCY_BUCKETS,
)
ERRORS = Counter(
    "jobql_graphql_errors",
    "Error entries of GraphQL answers over HTTP, by extensions.code.",
    ["code"],
)
ADMISSION_REJECTED = Counter(
    "jobql_admission_rejected",
    "Requests refused with 503 because JOBQL_MAX_CONCURRENCY requests were in flight.",
)
PERSISTED_QUERIES = Counter(
    "jobql_persisted_queries",
    "Automatic persisted queries: hit (hash known), miss (PersistedQueryNotFound), "
    "registered (text sent with its hash).",
    ["result"],
)
FALLBACKS = Counter(
    "jobql_compiled_fallbacks",
    "Compiled statements the database failed, each answered again by the reference strategy, "
    "by root field.",
    ["field"],
)
INGEST_ITEMS = Counter(
    "jobql_ingest_items",
    "Items written by recordInstances, upsertJobs, imports and the collector, by outcome "
    "(created, updated, unchanged, stale, rejected).",
    ["kind", "outcome"],
)
POOL_WAIT = Histogram(
    "jobql_db_pool_wait_seconds",
    "Time to get a connection from a pool (waiting, and opening or pinging it); its count is "
    "the pool's checkouts.",
    ["pool"],
    buckets=POOL_WAIT_BUCKETS,
)
POOL_TIMEOUTS = Counter(
    "jobql_db_pool_timeouts",
    "Checkouts that waited JOBQL_POOL_TIMEOUT and failed.",
    ["pool"],
)
POOL_IN_USE = Gauge(
    "jobql_db_pool_in_use_connections",
    "Connections checked out of the pool now.",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_OPEN = Gauge(
    "jobql_db_pool_open_connections",
    "Connections the pool holds open now (in use or idle).",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "jobql_db_pool_max_connections",
    "Connections the pool may open at most (JOBQL_POOL_SIZE per worker).",
    ["pool"],
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS_ACTIVE = Gauge(
    "jobql_subscriptions_active",
    "Subscriptions running now, both transports.",
    multiprocess_mode="livesum",
)
SUBSCRIPTION_RESULTS = Counter(
    "jobql_subscription_results_delivered",
    "Subscription results sent to subscribers (`next` messages), by transport (ws, sse).",
    ["transport"],
)
SUBSCRIBERS_TOO_SLOW = Counter(
    "jobql_subscribers_too_slow",
    "Subscribers disconnected because they fell JOBQL_LIVE_QUEUE_SIZE results behind.",
)
LIVE_EVENTS_READ = Counter(
    "jobql_live_events_read",
    "Events each worker's broker read from the event log.",
)
LINEAGE_EMITTED = Counter(
    "jobql_lineage_events_emitted",
    "OpenLineage RunEvents the emitter's transport accepted, by eventType (START, COMPLETE, "
    "FAIL, ABORT); at least once: a batch sent again after a failure or restart counts again.",
    ["type"],
)
LINEAGE_REFUSED = Counter(
    "jobql_lineage_events_refused",
    "OpenLineage RunEvents the receiver refused for good (HTTP 400, 409, 413, 415, 422), by "
    "eventType: logged and passed over, not sent again.",
    ["type"],
)
LINEAGE_SEND_FAILURES = Counter(
    "jobql_lineage_send_failures",
    "Attempts of the OpenLineage emitter to send a batch that the transport failed (each is "
    "retried).",
)
LINEAGE_LAG = Gauge(
    "jobql_lineage_lag_seconds",
    "How long ago the oldest change the OpenLineage emitter has not sent yet was logged (0 when "
    "it is caught up, or in a worker that does not hold the cursor).",
    multiprocess_mode="max",
)
REPLICA_IN_ROTATION = Gauge(
    "jobql_replica_in_rotation",
    "1 while a read replica (JOBQL_DATABASE_REPLICA_URLS) serves reads, 0 while it is out "
    "(unreachable, not a standby, or lagging more than JOBQL_REPLICA_MAX_LAG), by replica.",
    ["replica"],
    multiprocess_mode="livemin",
)
REPLICA_LAG = Gauge(
    "jobql_replica_lag_seconds",
    "How far a read replica's replay is behind the primary, as its last check measured it.",
    ["replica"],
    multiprocess_mode="livemax",
)
READ_ROUTES = Counter(
    "jobql_read_routes",
    "Read-only requests (queries, source API GETs) by where their reads went when they began: "
    "replica, or primary (no replica in rotation had replayed what the request asked for).",
    ["target"],
)

# Children of the counters incremented per event, bound once.
DELIVERED_WS = SUBSCRIPTION_RESULTS.labels("ws")
DELIVERED_SSE = SUBSCRIPTION_RESULTS.labels("sse")

ANONYMOUS = "anonymous"
OTHER = "other"
# Distinct operation labels a worker keeps; later names count as OTHER (clients choose them).
MAX_OPERATIONS = 200
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
_HASH = re.compile(r"[0-9a-fA-F]{64}")
_operations: set[str] = set()


def operation_label(name: object, extensions: object) -> str:
    """The operation's label: its name, else its persisted query hash, else ANONYMOUS; at most
    MAX_OPERATIONS distinct ones per process, OTHER after that."""
    if isinstance(name, str) and name in _operations:  # the usual case: a name seen before
        return name
    label: str | None = None
    if isinstance(name, str) and _NAME.fullmatch(name):
        label = name
    elif isinstance(extensions, dict):
        persisted = extensions.get("persistedQuery")
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if isinstance(digest, str) and _HASH.fullmatch(digest):
            label = digest.lower()
    if label is None:
        return ANONYMOUS
    if label not in _operations:
        if len(_operations) >= MAX_OPERATIONS:
            return OTHER
        _operations.add(label)
    return label


class RequestRecord:
    """What the layers a request passes through note about it (set by the telemetry middleware
    in `CURRENT` for the request's task and the tasks it starts). The defaults are class
    attributes: a record costs next to nothing until something is noted."""

    operation: str | None = None
    named: bool = False  # the client sent `operationName`
    workspace: str | None = None
    # How each root field was read (the request context's `strategies`, by response key).
    strategies: dict[str, str] | None = None
    fast_path: bool = False
    # Response keys of root fields whose compiled read failed and were read the reference way.
    fallbacks: tuple[str, ...] = ()
    persisted: str | None = None  # hit, miss or registered
    errors: tuple[str, ...] = ()  # extensions.code of each error answered

    def note_request(self, workspace: str, operation_name: object, extensions: object) -> None:
        self.workspace = workspace
        self.note_operation(operation_name, extensions)

    def note_operation(self, operation_name: object, extensions: object) -> None:
        self.operation = operation_label(operation_name, extensions)
        self.named = isinstance(operation_name, str) and self.operation != ANONYMOUS

    def note_document_name(self, name: str | None) -> None:
        """The name of the operation the document holds, when the request named none: a name
        is a better label than a persisted query's hash."""
        if name and not self.named:
            self.operation = operation_label(name, None)
            self.named = True

    def strategy(self) -> str:
        """fast_path, fallback, compiled, reference, mixed (both), or none (no root field read)."""
        if self.fast_path:
            return "fast_path"
        if self.fallbacks:
            return "fallback"
        used = set(self.strategies.values()) if self.strategies else set()
        if not used:
            return "none"
        return used.pop() if len(used) == 1 else "mixed"


CURRENT: ContextVar[RequestRecord | None] = ContextVar("jobql_request_record", default=None)


def current() -> RequestRecord | None:
    return CURRENT.get()


_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


def note_errors(errors: Any) -> None:
    """The codes of a GraphQL answer's `errors` entries, for the request's metrics."""
    record = CURRENT.get()
    if record is None or not errors:
        return
    for error in errors:
        code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
        record.errors += (code if isinstance(code, str) and _CODE.fullmatch(code) else OTHER,)


def note_error(code: str) -> None:
    record = CURRENT.get()
    if record is not None:
        record.errors += (code,)


class CollectorLag(Collector):
    """Per source of `jobql collect`: how far behind now its data is known complete (as
    `jobql collect --status` says), its last success and last error. `sources` are a source's
    checkpoint rows (`source`, `kind`, `high_water`, `last_success_at`, `last_error_at`): serve's
    /metrics reads them from the database per scrape, `jobql collect --metrics-address` shows
    its own sources' as it wrote them."""

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
