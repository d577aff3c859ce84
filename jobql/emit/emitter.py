"""The emitter's loop: hold the cursor, read a batch of the event log, send its RunEvents, and
only then move the cursor (with the runs' states) — at least once, resumed after any stop.

- One process per cursor name: a lease row (`emit_cursor.holder`, `held_until`), taken when free
  or expired and renewed while held; the other `serve` workers wait and take over when the
  holder stops renewing (a crash: after `lease` seconds).
- A transport failure is retried with exponential backoff (`backoff` .. `backoff_max`) from the
  first event not accepted; nothing is skipped. The lease is renewed between attempts. Only an
  event the receiver refuses for what it is (HTTP 400, 409, 413, 415, 422: it would be refused
  again) is logged, counted (`jobql_lineage_events_refused_total`) and passed over.
- Woken by the log's listener (PostgreSQL NOTIFY, commits in this process) and by its poll
  timer; never called by a writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime

from openlineage.client.event_v2 import RunEvent
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql import metrics
from jobql.emit.client import Sender, Sent
from jobql.emit.config import emitter_enabled
from jobql.emit.runs import plan_batch
from jobql.resolvers import emit as use_cases
from jobql.settings import Settings

logger = logging.getLogger("jobql.emit")

DEFAULT_NAME = "default"
DEFAULT_NAMESPACE = "jobql/{workspace}"


class Emitter:
    def __init__(
        self,
        engine: AsyncEngine,
        sender: Sender,
        *,
        name: str = DEFAULT_NAME,
        namespace: str = DEFAULT_NAMESPACE,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        lease: float = 30.0,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        workspace: str | None = None,
    ) -> None:
        self.engine = engine
        self.sender = sender
        self.name = name
        self.namespace_template = namespace
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lease = lease
        self.backoff = backoff
        self.backoff_max = backoff_max
        # Only this workspace's events (tests share one database between workspaces).
        self.workspace = workspace
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.position: int | None = None  # while this process holds the cursor
        self._claimed_at = 0.0
        self._warned_gap: tuple[int, int] | None = None
        self._wake = asyncio.Event()
        self._listener = use_cases.Listener(engine, self._notified)
        self._task: asyncio.Task[None] | None = None
        self.sent = 0  # RunEvents the transport accepted (this process)
        self.refused = 0  # RunEvents the receiver refused for good (this process)

    def namespace(self, workspace: str) -> str:
        return self.namespace_template.format(workspace=workspace)

    # -- lifecycle (the serve lifespan) ------------------------------------------------------

    async def start(self) -> None:
        await self._listener.start()
        self._task = asyncio.create_task(self.run(), name="jobql-openlineage-emitter")
        logger.info(
            "OpenLineage emitter on: %s transport, cursor %r, namespace %r",
            self.sender.kind,
            self.name,
            self.namespace_template,
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._listener.close()
        if self.position is not None:
            with contextlib.suppress(Exception):
                await use_cases.release(self.engine, self.name, self.holder)
            self.position = None
        with contextlib.suppress(Exception):
            await self.sender.close()

    def _notified(self, _last: int) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Until woken by a new event or `seconds` have passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, *, once: bool = False) -> None:
        """Emit until cancelled; `once`: until the log's end as it was read (or, when another
        process holds the cursor, at once: `position` is then None), then return."""
        failures = 0
        while True:
            try:
                processed = await self.step()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database: try again after a pause
                failures += 1
                delay = self._delay(failures)
                logger.warning("OpenLineage emitter: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            if processed:
                continue
            if once:
                return
            await self._sleep(self.poll_interval if self.position is not None else self.lease / 3)

    async def step(self) -> int:
        """One batch: the number of log events it covered (0: nothing new, or not the holder)."""
        if not await self._hold():
            metrics.LINEAGE_LAG.set(0)
            return 0
        assert self.position is not None
        batch = await use_cases.read_batch(
            self.engine,
            self.name,
            self.position,
            limit=self.batch_size,
            workspace=self.workspace,
        )
        if batch.skipped is not None and batch.skipped != self._warned_gap:
            self._warned_gap = batch.skipped
            first, last = batch.skipped
            logger.warning(
                "OpenLineage emitter %r: the event log was pruned past its cursor: events %d..%d "
                "(at most %d changes) were never emitted; going on from %d",
                self.name,
                first,
                last,
                last - first + 1,
                last + 1,
            )
        if not batch.events:
            metrics.LINEAGE_LAG.set(0)
            return 0
        metrics.LINEAGE_LAG.set(max(0.0, (datetime.now(UTC) - batch.events[0].at).total_seconds()))
        plan = plan_batch(batch, self.namespace)
        if not await self._deliver(plan.events):
            return 0  # lost the cursor meanwhile: its new holder sends this batch again
        last = batch.events[-1].id
        if not await use_cases.advance(
            self.engine, self.name, self.holder, last, plan.states, self.lease
        ):
            logger.warning("OpenLineage emitter %r: lost the cursor to another process", self.name)
            self.position = None
            return 0
        self.position = last
        self._claimed_at = time.monotonic()
        return len(batch.events)

    async def _hold(self) -> bool:
        """Whether this process holds the cursor, renewing the lease when a third of it passed."""
        if self.position is not None and time.monotonic() - self._claimed_at < self.lease / 3:
            return True
        position = await use_cases.claim(self.engine, self.name, self.holder, self.lease)
        if position is None:
            if self.position is not None:
                logger.warning("OpenLineage emitter %r: the cursor is held elsewhere", self.name)
            self.position = None
            return False
        if self.position is None:
            logger.info("OpenLineage emitter %r: holding the cursor at %d", self.name, position)
        self.position = position
        self._claimed_at = time.monotonic()
        return True

    async def _deliver(self, events: list[RunEvent]) -> bool:
        """Send every event, retrying from the first not accepted; False if the cursor was lost
        while retrying."""
        pending = list(events)
        failures = 0
        while pending:
            sent = await self._renewing(self.sender.send(pending))
            refused = dict(sent.refused)
            for index, event in enumerate(pending[: sent.count]):
                if index in refused:
                    self._refused(event, refused[index])
                else:
                    metrics.LINEAGE_EMITTED.labels(_event_type(event)).inc()
            self.sent += sent.count - len(refused)
            self.refused += len(refused)
            pending = pending[sent.count :]
            if sent.error is None:
                return True
            failures += 1
            metrics.LINEAGE_SEND_FAILURES.inc()
            delay = self._delay(failures)
            logger.warning(
                "OpenLineage emitter %r: the %s transport failed (%s: %s); %d event(s) of the "
                "batch left, retrying in %.1f s",
                self.name,
                self.sender.kind,
                type(sent.error).__name__,
                sent.error,
                len(pending),
                delay,
            )
            await asyncio.sleep(delay)
            self._claimed_at = 0.0  # renew (or find the cursor lost) before sending again
            if not await self._hold():
                return False
        return True

    def _refused(self, event: RunEvent, exc: BaseException) -> None:
        """An event the receiver refused for good: logged with what names it, counted, and
        passed over (sent again, it would hold every later event back for ever)."""
        metrics.LINEAGE_REFUSED.labels(_event_type(event)).inc()
        response = getattr(exc, "response", None)
        detail = (getattr(response, "text", "") or str(exc))[:500]
        logger.error(
            "OpenLineage emitter %r: the receiver refused the %s event of run %s (job %s/%s) "
            "with HTTP %s, for good: not sent again, going on with the next. Its answer: %s",
            self.name,
            _event_type(event),
            event.run.runId if event.run is not None else "?",
            event.job.namespace if event.job is not None else "?",
            event.job.name if event.job is not None else "?",
            getattr(response, "status_code", "?"),
            detail,
        )

    async def _renewing(self, sending: Awaitable[Sent]) -> Sent:
        """`sending`, renewing the lease meanwhile: a batch that takes longer than the lease to
        go out must not let another worker take the cursor over, send it again and have this
        one's `advance` refused (with several workers and a slow receiver, for ever)."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease / 3)
                with contextlib.suppress(Exception):  # the next `advance` finds out
                    await self._hold()

        renewer = asyncio.create_task(renew())
        try:
            return await sending
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    def _delay(self, failures: int) -> float:
        delay = min(self.backoff_max, self.backoff * 2.0 ** (failures - 1))
        return delay / 2 + random.uniform(0.0, delay / 2)


def _event_type(event: RunEvent) -> str:
    return event.eventType.value if event.eventType is not None else "OTHER"


def from_settings(settings: Settings, engine: AsyncEngine) -> Emitter | None:
    """The emitter `settings` and openlineage-python's configuration ask for, or None (off)."""
    if not emitter_enabled(settings.openlineage):
        if settings.openlineage == "on":
            logger.warning("JOBQL_OPENLINEAGE=on, but OPENLINEAGE_DISABLED=true: not emitting")
        return None
    return Emitter(
        engine,
        Sender.from_environment(),
        namespace=settings.openlineage_namespace,
        batch_size=settings.openlineage_batch_size,
        poll_interval=settings.openlineage_poll_interval,
        lease=settings.openlineage_lease,
    )
