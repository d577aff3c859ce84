"""What can go wrong asking a source, in the collector's own terms (never an SDK's exception).

The adapters translate each SDK's exceptions into these; `caller.py` decides from them whether to
wait and ask again (`Transient`, `Throttled`, `Malformed`) or to give up on the request at once
(`Refused`).
"""

from __future__ import annotations


class SourceFault(Exception):
    """A request that did not give usable data. `str()` is the problem, for log lines; `code` is
    the vendor's error code when it gave one."""

    retryable = True

    def __init__(self, problem: str, *, code: str | None = None) -> None:
        super().__init__(problem)
        self.code = code


class Transient(SourceFault):
    """Timeouts, resets, refused connections and 5xx answers: ask again after a while."""


class Throttled(SourceFault):
    """The vendor's throttling answer; `retry_after` (seconds) when the source said how long."""

    def __init__(
        self, problem: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(problem, code=code)
        self.retry_after = retry_after


class Malformed(SourceFault):
    """A reply that cannot be read (not the format, a field of the wrong type, truncated): the
    same request is asked again, never skipped."""


class Refused(SourceFault):
    """The source answered that the request itself is wrong (a 4xx other than throttling, e.g.
    bad credentials or an unknown job): asking again the same way will not help."""

    retryable = False


class Unavailable(Exception):
    """A request failed every attempt; the pass of its source ends here, its checkpoint where the
    last stored page left it."""

    def __init__(self, request: str, fault: SourceFault, attempts: int) -> None:
        self.request = request
        self.fault = fault
        self.attempts = attempts
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"{request}: {type(fault).__name__.lower()}{tried}: {fault}")


class Stopped(Exception):
    """The collector was asked to stop (SIGTERM) while it waited to ask again."""
