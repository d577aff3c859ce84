"""`jobql collect [--config FILE] [--once] [--source NAME] [--status]`, behind jobql's CLI."""

from __future__ import annotations

import asyncio
import sys
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
) -> int:
    """Exit status: 0 done (or stopped); 1 a pass failed (`--once`), an unhealthy source
    (`--status`) or the database cannot be used; 2 a configuration that cannot be used."""
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
        return asyncio.run(_status(selected, database_url, sources))
    assert selected is not None
    try:
        return asyncio.run(collect(selected, database_url, once=once))
    except CollectError as exc:
        print(f"jobql collect: {exc}", file=sys.stderr)
        return 1


async def _status(
    selected: tuple[SourceConfig, ...] | None, database_url: str, names: list[str] | None
) -> int:
    engine = create_engine(database_url)
    try:
        if not await is_up_to_date(engine):
            print(
                "jobql collect: the database is not migrated: run `jobql migrate` first",
                file=sys.stderr,
            )
            return 1
        wanted = None if selected is None else [(s.name, s.kind) for s in selected]
        lines, healthy = await status_lines(engine, wanted, datetime.now(UTC), names=names)
    finally:
        await engine.dispose()
    print("\n".join(lines))
    return 0 if healthy else 1
