"""Seed examples for the REST tests: imported as `jobql import` does, compared as the issue says."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.importers import parse_body
from jobql.resolvers.ingest import import_instances
from tests.importers.support import example

DLF_INVALID = {"error_code": "DLF.3051", "error_msg": "The request parameter is invalid."}
DLF_JOB_MISSING = {"error_code": "DLF.0100", "error_msg": "The job does not exists."}
DLF_INSTANCE_MISSING = {"error_code": "DLF.0137", "error_msg": "Job instance does not exist."}


async def import_example(
    engine: AsyncEngine, name: str, workspace: str | None = None, timezone: str = "UTC"
) -> str:
    """Import one example body; the workspace it landed in."""
    body = parse_body(example(name), source=name, workspace=workspace, timezone=ZoneInfo(timezone))
    summary = await import_instances(engine, body.instances)
    assert summary.counts["rejected"] == 0, summary.rejected
    return body.instances[0].workspace


def example_json(name: str) -> Any:
    return json.loads(example(name))


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """The body minus its RequestId, which may be any id (but must be there)."""
    rest = dict(body)
    request_id = rest.pop("RequestId")
    assert isinstance(request_id, str)
    assert request_id
    return rest
