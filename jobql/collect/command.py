"""`jobql collect [--config FILE] [--once] [--source NAME] [--status]`, behind jobql's CLI."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from jobql.collect.config import CollectConfig, ConfigError, SourceConfig, load_config
from jobql.collect.runner import CollectError, collect
from jobql.collect.status import status_lines
from jobql.storage.engine import create_engine
from jobql.storage.migrate import is_up_to_date


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
) -> int:
    """Exit status: 0 done (or stopped); 1 a pass failed (`--once`), an unhealthy source
    (`--status`) or the database cannot be used; 2 a configuration that cannot be used.

    Workspaces in several databases (JOBQL_WORKSPACE_DATABASES): `url_for(workspace)` is the
    database each source writes into (its records and checkpoints); `database_urls`, every
    database, the main one first, for `--status`."""
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
    try:
        return asyncio.run(collect(selected, database_url, once=once, url_for=url_for))
    except CollectError as exc:
        print(f"jobql collect: {exc}", file=sys.stderr)
        return 1


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
