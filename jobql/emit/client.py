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


@dataclass(frozen=True, slots=True)
class Sent:
    """How many events of a batch the transport accepted, in order, and why it stopped."""

    count: int
    error: BaseException | None = None


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
        for index, event in enumerate(events):
            try:
                self.client.emit(event)
            except Exception as exc:  # any transport's failure: the batch is sent again
                return Sent(index, exc)
        return Sent(len(events))

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close, 5.0)
