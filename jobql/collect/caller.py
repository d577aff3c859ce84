"""Every request to a source: paced by its rate limit, retried with backoff and jitter.

A request that fails with a retryable fault (timeouts, resets, 5xx, the vendor's throttling
answer, a reply that cannot be read) is asked again after `backoff * 2**n` seconds (capped at
`backoff_max`, at least what a throttling answer asked for), of which a random half is waited
("equal jitter": retries of many collectors spread out, and none comes back at once). After
`retries` retries it is `Unavailable`: the source's pass ends there and is reported; the next
pass starts again from the checkpoint. A `Refused` request is not retried.

A stop request (SIGTERM) never interrupts a request in flight: the request finishes and its data
is stored; a wait for the next attempt or the next request ends at once with `Stopped`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from jobql.collect.config import Pace
from jobql.collect.faults import Malformed, SourceFault, Stopped, Throttled, Unavailable

T = TypeVar("T")
logger = logging.getLogger("jobql.collect")


@dataclass
class CallStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    malformed: int = 0


class Caller:
    def __init__(
        self,
        source: str,
        pace: Pace,
        stop: asyncio.Event,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.source = source
        self.pace = pace
        self.stop = stop
        self.stats = CallStats()
        self._clock = clock
        self._jitter = jitter
        self._interval = 1.0 / pace.rate_limit
        self._next_start = 0.0

    async def __call__(self, request: str, call: Callable[[], T]) -> T:
        """`call()` (blocking: run in a thread) as `request`, paced and retried."""
        attempt = 0
        while True:
            await self._paced()
            self.stats.requests += 1
            try:
                return await asyncio.to_thread(call)
            except SourceFault as fault:
                attempt += 1
                if not fault.retryable or attempt > self.pace.retries:
                    raise Unavailable(request, fault, attempt) from None
                delay = self._delay(attempt, fault)
                self._count(fault)
                if isinstance(fault, Malformed):
                    logger.error("%s (retrying in %.1f s)", fault, delay)
                else:
                    logger.warning("%s (retrying in %.1f s)", fault, delay)
                await self._wait(delay)

    def _count(self, fault: SourceFault) -> None:
        self.stats.retries += 1
        if isinstance(fault, Throttled):
            self.stats.throttled += 1
        elif isinstance(fault, Malformed):
            self.stats.malformed += 1

    def _delay(self, attempt: int, fault: SourceFault) -> float:
        ceiling = min(self.pace.backoff_max, self.pace.backoff * 2.0 ** (attempt - 1))
        delay = ceiling / 2 + self._jitter() * ceiling / 2
        if isinstance(fault, Throttled) and fault.retry_after is not None:
            delay = max(delay, min(fault.retry_after, self.pace.backoff_max))
        return delay

    async def _paced(self) -> None:
        """Wait until the rate limit allows the next request (requests start at least
        1/rate_limit seconds apart)."""
        if self.stop.is_set():
            raise Stopped()
        now = self._clock()
        start = max(now, self._next_start)
        self._next_start = start + self._interval
        if start > now:
            await self._wait(start - now)

    async def _wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise Stopped()
