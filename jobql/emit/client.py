"""The one adapter around openlineage-python: a client configured the standard way
(`OPENLINEAGE_URL` / `OPENLINEAGE_API_KEY`, `OPENLINEAGE_CONFIG` or an `openlineage.yml`,
`OPENLINEAGE__...` variables), and sending a batch through its transport.

The client is synchronous (HTTP through requests, Kafka's flush ...): a batch goes out in one
worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import RunEvent

logger = logging.getLogger("jobql.emit")
CONSOLE_LOGGER = "openlineage.client.transport.console"


# HTTP answers that refuse one event for what it is (malformed, too large, a conflict): sending
# it again would be refused again and hold every later event back. Authentication, a wrong URL,
# timeouts and rate limits (401, 403, 404, 407, 408, 429) are the receiver's or the set-up's
# state: those are retried like a transport failure.
REFUSED_STATUSES = frozenset({400, 409, 413, 415, 422})


@dataclass(frozen=True, slots=True)
class Sent:
    """How many events of a batch the transport took care of, in order (accepted, or refused
    for good), which of them it refused (their indexes and why), and why it stopped."""

    count: int
    error: BaseException | None = None
    refused: tuple[tuple[int, BaseException], ...] = ()


class Sender:
    def __init__(self, client: OpenLineageClient) -> None:
        self.client = client

    @classmethod
    def from_environment(cls) -> Sender:
        """A client as openlineage-python configures itself from the environment and files."""
        sender = cls(OpenLineageClient())
        if sender.kind == "console":
            # The console transport writes each event as an INFO line of its logger: make sure
            # that line reaches stderr (under uvicorn nothing else would show it).
            console = logging.getLogger(CONSOLE_LOGGER)
            console.setLevel(logging.INFO)
            if not console.hasHandlers():
                console.addHandler(logging.StreamHandler(sys.stderr))
        return sender

    @property
    def kind(self) -> str:
        return str(getattr(self.client.transport, "kind", None) or type(self.client.transport))

    async def send(self, events: Sequence[RunEvent]) -> Sent:
        """Emit `events` in order until one fails (in a worker thread)."""
        return await asyncio.to_thread(self._send, events)

    def _send(self, events: Sequence[RunEvent]) -> Sent:
        refused: list[tuple[int, BaseException]] = []
        for index, event in enumerate(events):
            try:
                self.client.emit(event)
            except Exception as exc:
                if refused_for_good(exc):
                    refused.append((index, exc))
                    continue
                # Any other failure of any transport: sent again from this event on.
                return Sent(index, exc, tuple(refused))
        return Sent(len(events), None, tuple(refused))

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close, 5.0)


def refused_for_good(exc: BaseException) -> bool:
    """The receiver answered that it will never take this event (REFUSED_STATUSES)."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) in REFUSED_STATUSES
