"""`jobql emit [--once] [--cursor NAME] [--status]`, behind jobql's CLI."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.emit.client import Sender
from jobql.emit.config import disabled_by_client
from jobql.emit.emitter import DEFAULT_NAME, Emitter
from jobql.resolvers import emit as use_cases
from jobql.settings import Settings
from jobql.storage.engine import create_engine
from jobql.storage.migrate import is_up_to_date


def run(settings: Settings, *, once: bool, cursor: str | None, status: bool) -> int:
    """Exit status: 0 done (or stopped by SIGTERM/SIGINT); 1 the database cannot be used, or
    (`--once`) another process holds the cursor; 2 openlineage-python is switched off."""
    if status:
        return asyncio.run(_status(settings))
    if disabled_by_client():
        print(
            "jobql emit: OPENLINEAGE_DISABLED=true: the client would drop every event",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(_emit(settings, once=once, name=cursor or DEFAULT_NAME))


async def _emit(settings: Settings, *, once: bool, name: str) -> int:
    engine = create_engine(settings.database_url)
    emitter: Emitter | None = None
    try:
        if not await _migrated(engine):
            return 1
        emitter = Emitter(
            engine,
            Sender.from_environment(),
            name=name,
            namespace=settings.openlineage_namespace,
            batch_size=settings.openlineage_batch_size,
            poll_interval=settings.openlineage_poll_interval,
            lease=settings.openlineage_lease,
        )
        task = asyncio.create_task(emitter.run(once=once))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            return 0  # stopped: the batch in flight is sent again on the next start
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        if once and emitter.position is None:
            print(f"jobql emit: cursor {name!r} is held by another process", file=sys.stderr)
            return 1
        print(f"jobql emit: {emitter.sent} event(s) sent; cursor {name!r} at {emitter.position}")
        return 0
    finally:
        if emitter is not None:
            with contextlib.suppress(Exception):
                await emitter.close()
        await engine.dispose()


async def _migrated(engine: AsyncEngine) -> bool:
    if await is_up_to_date(engine):
        return True
    print("jobql emit: the database is not migrated: run `jobql migrate` first", file=sys.stderr)
    return False


async def _status(settings: Settings) -> int:
    engine = create_engine(settings.database_url)
    try:
        if not await _migrated(engine):
            return 1
        found = await use_cases.cursors(engine)
    finally:
        await engine.dispose()
    now = datetime.now(UTC)
    if not found:
        print("no OpenLineage cursor yet (the emitter never ran)")
    for cursor in found:
        held = (
            f"held by {cursor.holder}"
            if cursor.holder and cursor.held_until and cursor.held_until > now
            else "not held"
        )
        print(
            f"{cursor.name}: at event {cursor.position}, the log's newest is {cursor.newest} "
            f"({max(0, cursor.newest - cursor.position)} behind at most); {held}; "
            f"moved {cursor.updated_at.isoformat()}"
        )
    return 0
