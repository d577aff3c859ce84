"""Helpers of the emitter tests: the standard client configuration in the environment, a test
transport openlineage-python loads by its class path, and reading what was emitted."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openlineage.client.serde import Serde
from openlineage.client.transport.transport import Config, Transport

RECORD = """
mutation Record($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome userErrors { code field message } } }
}
"""


@contextmanager
def openlineage_env(**values: str) -> Iterator[None]:
    """Exactly these OPENLINEAGE* variables while inside (the client also sets some of its own
    from OPENLINEAGE_URL: those go too)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("OPENLINEAGE")}
    for key in saved:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
            del os.environ[key]
        os.environ.update(saved)


def file_transport(path: Path) -> dict[str, str]:
    return {
        "OPENLINEAGE__TRANSPORT__TYPE": "file",
        "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(path),
        "OPENLINEAGE__TRANSPORT__APPEND": "true",
    }


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(event["eventType"], event["job"]["name"]) for event in events]


class MemoryConfig(Config):
    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> MemoryConfig:
        return cls()


class MemoryTransport(Transport):
    """Keeps every event it accepts in `accepted` (as JSON dicts); fails while `failures` > 0
    (one failure per call), or from the `fail_after`-th accepted event on; takes `delay`
    seconds per event (a slow receiver)."""

    kind = "memory"
    config_class = MemoryConfig
    accepted: list[dict[str, Any]] = []
    failures = 0
    fail_after: int | None = None
    delay = 0.0
    lock = threading.Lock()

    def __init__(self, config: MemoryConfig) -> None:
        pass

    @classmethod
    def reset(cls, *, failures: int = 0, fail_after: int | None = None, delay: float = 0.0) -> None:
        cls.accepted = []
        cls.failures = failures
        cls.fail_after = fail_after
        cls.delay = delay

    def emit(self, event: Any) -> None:
        time.sleep(type(self).delay)
        with self.lock:
            cls = type(self)
            if cls.failures > 0:
                cls.failures -= 1
                raise ConnectionError("the receiver is down")
            if cls.fail_after is not None and len(cls.accepted) >= cls.fail_after:
                raise ConnectionError("the receiver went away")
            cls.accepted.append(json.loads(Serde.to_json(event)))


MEMORY_TRANSPORT = {"OPENLINEAGE__TRANSPORT__TYPE": "tests.emit.support.MemoryTransport"}
