"""One small adapter per vendor SDK: call the SDK, return jobql's ingest records.

Each adapter builds the vendor's own client (its signer, its request models, its exceptions),
reads the body the SDK received with the importer of that format (the validation and messages of
`jobql import`; the SDKs' models lose detail, e.g. DLF's `executeTime` becomes an integer), and
turns every SDK or transport exception into a `jobql.collect.faults` fault. The calls block (the
SDKs are synchronous); the collector runs them in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, tzinfo

from jobql.collect.faults import Malformed
from jobql.importers import ImportFormatError, parse_body
from jobql.storage.records import InstanceRecord


@dataclass
class Listing:
    """One page of a source's instance list: the records and the count of every match."""

    total: int
    records: list[InstanceRecord]


def read_records(
    body: bytes | str | None,
    *,
    format: str,
    request: str,
    workspace: str,
    timezone: tzinfo = UTC,
) -> list[InstanceRecord]:
    """The records of a reply body, read as `jobql import` reads that format, all written into
    `workspace` (a body naming its own project or namespace does not move them); a body that
    cannot be read is `Malformed`, saying what the request was and what is wrong."""
    if body is None:
        raise Malformed(f"{request}: the reply has no body")
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise Malformed(f"{request}: the reply is not UTF-8: {exc}") from None
    try:
        parsed = parse_body(
            text, source=request, format=format, workspace=workspace, timezone=timezone
        )
    except ImportFormatError as exc:
        raise Malformed(str(exc)) from None
    for record in parsed.instances:
        record.workspace = workspace
    return parsed.instances
