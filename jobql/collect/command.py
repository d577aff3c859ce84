"""`jobql collect [--config FILE] [--once] [--source NAME] [--status] [--metrics-address
HOST:PORT]`, behind jobql's CLI."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from prometheus_client import REGISTRY, start_http_server

from jobql.collect.config import CollectConfig, ConfigError, SourceConfig, load_config
from jobql.collect.runner import CollectError, collect
from jobql.collect.status import status_lines
from jobql.storage.engine import create_engine
from jobql.storage.migrate import is_up_to_date

logger = logging.getLogger("jobql.collect")


def run(
    *,
    config: str | None,
    sources: list[str] | None,
    once: bool,
    status: bool,
    database_url: str,
    timezone: str,
    url_for: Callable[[str], str] | None = None,
    database_urls: Sequence[str] = (),
    metrics_address: tuple[str, int] | None = None,
) -> int:
    """Exit status: 0 done (or stopped); 1 a pass failed (`--once`), an unhealthy source
    (`--status`) or the database cannot be used; 2 a configuration, or a metrics address,
    that cannot be used.

    Workspaces in several databases (JOBQL_WORKSPACE_DATABASES): `url_for(workspace)` is the
    database each source writes into (its records and checkpoints); `database_urls`, every
    database, the main one first, for `--status`. `metrics_address` (host, port): where the
    process's Prometheus registry is served while it collects (prometheus-client's own
    server, in a thread)."""
    if config is None and not status:
        print("jobql collect: give the collector's file with --config FILE", file=sys.stderr)
        return 2
    loaded: CollectConfig | None = None
    try:
        if config is not None:
            # --status needs no credentials: it only reads the database.
            loaded = load_config(config, default_timezone=timezone, credentials=not status)
        selected = loaded.select(sources) if loaded is not None else None
    except ConfigError as exc:
        print(f"jobql collect: {exc}", file=sys.stderr)
        return 2
    if status:
        return asyncio.run(_status(selected, list(database_urls) or [database_url], sources))
    assert selected is not None
    server = None
    if metrics_address is not None:
        host, port = metrics_address
        try:
            server, thread = start_http_server(port, addr=host)
        except OSError as exc:  # taken, not an address of this host, a host that does not resolve
            print(
                f"jobql collect: cannot serve metrics on {_shown(host, port)}: "
                f"{exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
        logger.info("metrics on http://%s/metrics", _shown(host, port))
    try:
        return asyncio.run(
            collect(
                selected,
                database_url,
                once=once,
                url_for=url_for,
                registry=None if server is None else REGISTRY,
            )
        )
    except CollectError as exc:
        print(f"jobql collect: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
            thread.join()


def _shown(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _status(
    selected: tuple[SourceConfig, ...] | None, database_urls: list[str], names: list[str] | None
) -> int:
    """The checkpoints of every database (each source's are in its workspace's)."""
    engines = [create_engine(url) for url in database_urls]
    try:
        for engine in engines:
            if not await is_up_to_date(engine):
                where = (
                    f" {engine.url.render_as_string(hide_password=True)}"
                    if len(engines) > 1
                    else ""
                )
                print(
                    f"jobql collect: the database{where} is not migrated: run `jobql migrate` "
                    "first",
                    file=sys.stderr,
                )
                return 1
        wanted = None if selected is None else [(s.name, s.kind) for s in selected]
        lines, healthy = await status_lines(engines, wanted, datetime.now(UTC), names=names)
    finally:
        for engine in engines:
            await engine.dispose()
    print("\n".join(lines))
    return 0 if healthy else 1
