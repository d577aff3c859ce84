"""Every setting, read from the environment in one place."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from jobql.storage.placement import Placement

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./jobql.db"
# A fixed default keeps cursors valid across restarts and workers; set your own in production so
# that nobody can mint cursors offline (they would still only page within the caller's workspace).
DEFAULT_CURSOR_SECRET = "jobql-cursor-v1"
# compiled: one SQL statement per root field where the selection allows; reference: resolvers and
# loaders for everything (the specification the compiled strategy is tested against).
READ_STRATEGIES = ("compiled", "reference")
PLAN_CACHE_MODES = ("auto", "force_generic_plan", "force_custom_plan")
LOG_FORMATS = ("text", "json")
OTEL_EXPORTERS = ("none", "otlp", "console")
OPENLINEAGE_MODES = ("auto", "on", "off")


class SettingsError(ValueError):
    """A JOBQL_* variable holds a value jobql cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # Read replicas of a PostgreSQL primary (jobql.storage.replicas): queries read from them.
    replica_urls: tuple[str, ...] = ()
    # Workspaces in other databases (jobql.storage.placement): (name or pattern, URL) in order.
    workspace_databases: tuple[tuple[str, str], ...] = ()
    replica_max_lag: float = 10.0
    replica_check_interval: float = 1.0
    timezone: str = "UTC"
    cursor_secret: str = DEFAULT_CURSOR_SECRET
    pool_size: int = 10
    pool_timeout: float = 5.0
    max_concurrency: int = 100
    demo_instances: int = 5_000
    log_level: str = "info"
    max_depth: int = 12
    max_aliases: int = 100
    max_tokens: int = 5_000
    max_cost: int = 50_000
    max_body_bytes: int = 1_048_576
    request_timeout: float = 10.0
    public_schema: bool = True
    tokens: str | None = None
    tokens_file: str | None = None
    read_strategy: str = "compiled"
    debug_strategy: bool = False
    fast_path: bool = True
    fast_lane: bool = True
    plan_cache_mode: str = "auto"
    access_log: bool = False
    # Operations: Prometheus metrics on /metrics, the log format, OpenTelemetry traces.
    metrics: bool = True
    log_format: str = "text"
    otel_exporter: str = "none"
    persisted_queries: bool = True
    persisted_query_cache_size: int = 10_000
    cache_max_age: int = 5
    allowed_operations: str | None = None
    # None: examples/dashboard of the source checkout (see jobql/dashboard.py).
    dashboard_dir: str | None = None
    # Live data (subscriptions): the event log's retention, and limits per subscriber.
    event_retention_seconds: float = 7 * 24 * 3600.0
    event_retention_count: int = 1_000_000
    live_poll_interval: float = 1.0
    live_batch_interval: float = 0.05
    live_compression: bool = False
    live_queue_size: int = 1_000
    live_max_subscriptions: int = 10_000
    live_max_per_connection: int = 100
    live_keepalive: float = 15.0
    # `jobql serve` workers: gc.freeze() after start-up and this first-generation threshold
    # (0: Python's own collector settings, untouched).
    gc_threshold: int = 10_000
    # OpenLineage out (jobql/emit): auto = on when openlineage-python is configured.
    openlineage: str = "auto"
    openlineage_namespace: str = "jobql/{workspace}"
    openlineage_batch_size: int = 500
    openlineage_poll_interval: float = 1.0
    openlineage_lease: float = 30.0
    # `jobql collect`: where it serves its own /metrics (host, port), if anywhere.
    collect_metrics_address: tuple[str, int] | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def placement(self) -> Placement:
        """Which database holds each workspace (JOBQL_WORKSPACE_DATABASES; by default, all in
        JOBQL_DATABASE_URL)."""
        from jobql.storage.placement import Placement

        return Placement.of(self.database_url, self.workspace_databases)

    @property
    def is_default_database(self) -> bool:
        return self.database_url == DEFAULT_DATABASE_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        log_format = env.get("JOBQL_LOG_FORMAT", "text").lower()
        settings = cls(
            database_url=env.get("JOBQL_DATABASE_URL", DEFAULT_DATABASE_URL),
            replica_urls=tuple(
                url.strip()
                for url in env.get("JOBQL_DATABASE_REPLICA_URLS", "").split(",")
                if url.strip()
            ),
            workspace_databases=_workspace_databases(env.get("JOBQL_WORKSPACE_DATABASES", "")),
            replica_max_lag=_float(env, "JOBQL_REPLICA_MAX_LAG", 10.0),
            replica_check_interval=_float(env, "JOBQL_REPLICA_CHECK_INTERVAL", 1.0),
            timezone=env.get("JOBQL_TIMEZONE", "UTC"),
            cursor_secret=env.get("JOBQL_CURSOR_SECRET", DEFAULT_CURSOR_SECRET),
            pool_size=_int(env, "JOBQL_POOL_SIZE", 10, minimum=1),
            pool_timeout=_float(env, "JOBQL_POOL_TIMEOUT", 5.0),
            max_concurrency=_int(env, "JOBQL_MAX_CONCURRENCY", 100, minimum=1),
            demo_instances=_int(env, "JOBQL_DEMO_INSTANCES", 5_000, minimum=0),
            log_level=env.get("JOBQL_LOG_LEVEL", "info").lower(),
            max_depth=_int(env, "JOBQL_MAX_DEPTH", 12, minimum=2),
            max_aliases=_int(env, "JOBQL_MAX_ALIASES", 100, minimum=1),
            max_tokens=_int(env, "JOBQL_MAX_TOKENS", 5_000, minimum=100),
            max_cost=_int(env, "JOBQL_MAX_COST", 50_000, minimum=1),
            max_body_bytes=_int(env, "JOBQL_MAX_BODY_BYTES", 1_048_576, minimum=1_024),
            request_timeout=_float(env, "JOBQL_REQUEST_TIMEOUT", 10.0),
            public_schema=_bool(env, "JOBQL_PUBLIC_SCHEMA", True),
            tokens=env.get("JOBQL_TOKENS") or None,
            tokens_file=env.get("JOBQL_TOKENS_FILE") or None,
            read_strategy=env.get("JOBQL_READ_STRATEGY", "compiled").lower(),
            debug_strategy=_bool(env, "JOBQL_DEBUG_STRATEGY", False),
            fast_path=_bool(env, "JOBQL_FAST_PATH", True),
            fast_lane=_bool(env, "JOBQL_FAST_LANE", True),
            plan_cache_mode=env.get("JOBQL_PLAN_CACHE_MODE", "auto").lower(),
            # JSON logs are for machines: a line per request is what they are read for.
            access_log=_bool(env, "JOBQL_ACCESS_LOG", log_format == "json"),
            metrics=_bool(env, "JOBQL_METRICS", True),
            log_format=log_format,
            otel_exporter=env.get("JOBQL_OTEL_EXPORTER", "none").lower() or "none",
            persisted_queries=_bool(env, "JOBQL_PERSISTED_QUERIES", True),
            persisted_query_cache_size=_int(
                env, "JOBQL_PERSISTED_QUERY_CACHE_SIZE", 10_000, minimum=1
            ),
            cache_max_age=_int(env, "JOBQL_CACHE_MAX_AGE", 5, minimum=0),
            allowed_operations=env.get("JOBQL_ALLOWED_OPERATIONS") or None,
            dashboard_dir=env.get("JOBQL_DASHBOARD_DIR") or None,
            event_retention_seconds=_float(env, "JOBQL_EVENT_RETENTION_SECONDS", 7 * 24 * 3600.0),
            event_retention_count=_int(env, "JOBQL_EVENT_RETENTION_COUNT", 1_000_000, minimum=1),
            live_poll_interval=_float(env, "JOBQL_LIVE_POLL_INTERVAL", 1.0),
            live_batch_interval=_float(env, "JOBQL_LIVE_BATCH_INTERVAL", 0.05),
            live_compression=_bool(env, "JOBQL_LIVE_COMPRESSION", False),
            live_queue_size=_int(env, "JOBQL_LIVE_QUEUE_SIZE", 1_000, minimum=1),
            live_max_subscriptions=_int(env, "JOBQL_LIVE_MAX_SUBSCRIPTIONS", 10_000, minimum=1),
            live_max_per_connection=_int(env, "JOBQL_LIVE_MAX_PER_CONNECTION", 100, minimum=1),
            live_keepalive=_float(env, "JOBQL_LIVE_KEEPALIVE", 15.0),
            gc_threshold=_int(env, "JOBQL_GC_THRESHOLD", 10_000, minimum=0),
            openlineage=env.get("JOBQL_OPENLINEAGE", "auto").lower() or "auto",
            openlineage_namespace=env.get("JOBQL_OPENLINEAGE_NAMESPACE", "jobql/{workspace}"),
            openlineage_batch_size=_int(env, "JOBQL_OPENLINEAGE_BATCH_SIZE", 500, minimum=1),
            openlineage_poll_interval=_float(env, "JOBQL_OPENLINEAGE_POLL_INTERVAL", 1.0),
            openlineage_lease=_float(env, "JOBQL_OPENLINEAGE_LEASE", 30.0),
            collect_metrics_address=_address(env, "JOBQL_COLLECT_METRICS_ADDRESS"),
        )
        try:
            ZoneInfo(settings.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(
                f"JOBQL_TIMEZONE={settings.timezone!r} is not an IANA time zone"
            ) from exc
        if settings.read_strategy not in READ_STRATEGIES:
            raise SettingsError(
                f"JOBQL_READ_STRATEGY={settings.read_strategy!r} must be one of "
                + ", ".join(READ_STRATEGIES)
            )
        if settings.plan_cache_mode not in PLAN_CACHE_MODES:
            raise SettingsError(
                f"JOBQL_PLAN_CACHE_MODE={settings.plan_cache_mode!r} must be one of "
                + ", ".join(PLAN_CACHE_MODES)
            )
        if settings.log_format not in LOG_FORMATS:
            raise SettingsError(
                f"JOBQL_LOG_FORMAT={settings.log_format!r} must be one of " + ", ".join(LOG_FORMATS)
            )
        if settings.otel_exporter not in OTEL_EXPORTERS:
            raise SettingsError(
                f"JOBQL_OTEL_EXPORTER={settings.otel_exporter!r} must be one of "
                + ", ".join(OTEL_EXPORTERS)
            )
        if settings.openlineage not in OPENLINEAGE_MODES:
            raise SettingsError(
                f"JOBQL_OPENLINEAGE={settings.openlineage!r} must be one of "
                + ", ".join(OPENLINEAGE_MODES)
            )
        try:
            namespace = settings.openlineage_namespace.format(workspace="ws")
        except (KeyError, IndexError, ValueError):
            namespace = ""
        if not namespace:
            raise SettingsError(
                f"JOBQL_OPENLINEAGE_NAMESPACE={settings.openlineage_namespace!r} is not a "
                "namespace (text, where {workspace} stands for the workspace's name)"
            )
        if settings.workspace_databases:
            from jobql.storage.placement import PlacementError

            try:
                settings.placement()
            except PlacementError as exc:
                raise SettingsError(f"JOBQL_WORKSPACE_DATABASES: {exc}") from exc
        if settings.replica_urls:
            if not settings.database_url.startswith("postgresql"):
                raise SettingsError(
                    "JOBQL_DATABASE_REPLICA_URLS needs a PostgreSQL primary: "
                    f"JOBQL_DATABASE_URL is {settings.database_url.split(':', 1)[0]}"
                )
            for url in settings.replica_urls:
                if not url.startswith("postgresql+asyncpg://"):
                    raise SettingsError(
                        f"JOBQL_DATABASE_REPLICA_URLS: {url.split('@')[-1]!r} is not a "
                        "postgresql+asyncpg:// URL (separate several with commas)"
                    )
        if not settings.cursor_secret:
            raise SettingsError("JOBQL_CURSOR_SECRET must not be empty")
        if settings.dashboard_dir and not (Path(settings.dashboard_dir) / "index.html").is_file():
            # Unset, a missing dashboard is a quiet 404; named explicitly, it is a mistake.
            raise SettingsError(
                f"JOBQL_DASHBOARD_DIR={settings.dashboard_dir!r} holds no index.html "
                "(it should be a copy of examples/dashboard/)"
            )
        return settings


def _workspace_databases(raw: str) -> tuple[tuple[str, str], ...]:
    """JOBQL_WORKSPACE_DATABASES: a JSON object, or the path of a TOML or JSON file holding
    one, of workspace names or patterns to database URLs."""
    text = raw.strip()
    if not text:
        return ()
    where = "JOBQL_WORKSPACE_DATABASES"
    if not text.startswith("{"):
        path = Path(text)
        try:
            content = path.read_text("utf-8")
        except OSError as exc:
            raise SettingsError(
                f"{where}={raw!r}: neither a JSON object nor a readable file ({exc.strerror})"
            ) from exc
        where = f"{where} file {text}"
        if path.suffix.lower() == ".toml":
            try:
                loaded: object = tomllib.loads(content)
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"{where} is not TOML: {exc}") from exc
            return _pairs(loaded, where)
        text = content
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"{where} is not JSON: {exc}") from exc
    return _pairs(loaded, where)


def _pairs(loaded: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(loaded, dict):
        raise SettingsError(f"{where} must map workspace names or patterns to database URLs")
    for key, value in loaded.items():
        if not isinstance(value, str):
            raise SettingsError(f"{where}: workspace {key!r} maps to {value!r}, not a URL")
    return tuple(loaded.items())


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:9100` for an IPv6 address; an empty host is every interface) as
    (host, port); ValueError says what is wrong."""
    host, colon, port = text.strip().rpartition(":")
    if not colon or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ValueError("not HOST:PORT (a port from 1 to 65535, such as 127.0.0.1:9464)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 address without brackets (write it as [::1]:9464)")
    return host or "0.0.0.0", int(port)


def _address(env: Mapping[str, str], name: str) -> tuple[str, int] | None:
    raw = env.get(name)
    if not raw:
        return None
    try:
        return parse_address(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is {exc}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds") from exc
    if not value > 0:
        raise SettingsError(f"{name}={raw} must be more than 0")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not true or false")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not an integer") from exc
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value
