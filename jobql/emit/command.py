"""`jobql emit [--once] [--cursor NAME] [--status]`, behind jobql's CLI.

Workspaces in several databases (JOBQL_WORKSPACE_DATABASES): each database has its own event log
and cursors, so one emitter per database runs in this process, side by side; every line about one
of them names its database (the URL without password)."""

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
    engines = _engines(settings)
    emitters: list[Emitter] = []
    try:
        if not await _migrated(engines):
            return 1
        for engine in engines.values():
            emitters.append(
                Emitter(
                    engine,
                    Sender.from_environment(),
                    name=name,
                    namespace=settings.openlineage_namespace,
                    batch_size=settings.openlineage_batch_size,
                    poll_interval=settings.openlineage_poll_interval,
                    lease=settings.openlineage_lease,
                )
            )

        async def run_all() -> None:
            await asyncio.gather(*(emitter.run(once=once) for emitter in emitters))

        task = asyncio.create_task(run_all())
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
        held = False
        for where, emitter in zip(engines, emitters, strict=True):
            if once and emitter.position is None:
                print(
                    f"jobql emit: {where}cursor {name!r} is held by another process",
                    file=sys.stderr,
                )
                held = True
            else:
                print(
                    f"jobql emit: {where}{emitter.sent} event(s) sent; cursor {name!r} at "
                    f"{emitter.position}"
                )
        return 1 if held else 0
    finally:
        for emitter in emitters:
            with contextlib.suppress(Exception):
                await emitter.close()
        for engine in engines.values():
            await engine.dispose()


def _engines(settings: Settings) -> dict[str, AsyncEngine]:
    """An engine per database, the main one first, by the prefix of the lines about it: its
    URL without password and ": " when there are several databases, else ""."""
    placement = settings.placement()
    return {
        (f"{placement.describe(url)}: " if placement.spread else ""): create_engine(url)
        for url in placement.urls()
    }


async def _migrated(engines: dict[str, AsyncEngine]) -> bool:
    for where, engine in engines.items():
        if not await is_up_to_date(engine):
            database = f"the database {where.removesuffix(': ')}" if where else "the database"
            print(
                f"jobql emit: {database} is not migrated: run `jobql migrate` first",
                file=sys.stderr,
            )
            return False
    return True


async def _status(settings: Settings) -> int:
    engines = _engines(settings)
    try:
        if not await _migrated(engines):
            return 1
        found = {where: await use_cases.cursors(engine) for where, engine in engines.items()}
    finally:
        for engine in engines.values():
            await engine.dispose()
    now = datetime.now(UTC)
    for where, cursors in found.items():
        if not cursors:
            print(f"{where}no OpenLineage cursor yet (the emitter never ran)")
        for cursor in cursors:
            held = (
                f"held by {cursor.holder}"
                if cursor.holder and cursor.held_until and cursor.held_until > now
                else "not held"
            )
            print(
                f"{where}{cursor.name}: at event {cursor.position}, the log's newest is "
                f"{cursor.newest} ({max(0, cursor.newest - cursor.position)} behind at most); "
                f"{held}; moved {cursor.updated_at.isoformat()}"
            )
    return 0
