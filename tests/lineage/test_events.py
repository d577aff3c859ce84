"""What a client can send that the mapping must refuse with a 400 (never a 500) or take as the
instant it names, and concurrent events of one run under two job names: straight through
`lineage.record_event`, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from openlineage.client.event_v2 import RunState
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.resolvers import lineage
from jobql.resolvers.context import RequestContext
from jobql.settings import DEFAULT_CURSOR_SECRET
from jobql.storage.identifiers import CursorCodec
from tests.factories import execute
from tests.lineage.support import INSTANCE_QUERY, DagRun, body


async def _record(engine: AsyncEngine, workspace: str, event: dict[str, Any]) -> Any:
    ctx = RequestContext.open(engine, CursorCodec(DEFAULT_CURSOR_SECRET), workspace)
    try:
        return await lineage.record_event(ctx, event)
    finally:
        await ctx.close()


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def _facet(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        event["run"]["facets"][name] = value

    return change


def _job(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        event["job"][key] = value

    return change


# Each a 500 before: an unhashable instanceType, a facet orjson reads but cannot write back
# (deeper than 255), NUL characters (PostgreSQL's text refuses them).
REFUSED = {
    "run.facets.jobql.instanceType": _facet("jobql", {"instanceType": ["MANUAL"]}),
    "run.facets.deep": _facet("deep", _nested(300)),
    "job.name": _job("name", "a\x00b"),
    "job.namespace": _job("namespace", "ns\x00"),
    "run.facets.errorMessage.message": _facet(
        "errorMessage", {"message": "bad\x00", "programmingLanguage": "python"}
    ),
}


@pytest.mark.parametrize("field", sorted(REFUSED))
async def test_malformed_fields_are_refused_by_name(engine: AsyncEngine, field: str) -> None:
    event = body(DagRun("malformed").event(RunState.START, 0))
    REFUSED[field](event)
    with pytest.raises(lineage.InvalidEvent) as refused:
        await _record(engine, f"events_{uuid.uuid4().hex[:12]}", event)
    assert refused.value.field == field


async def test_a_nul_in_the_job_type_is_dropped(engine: AsyncEngine) -> None:
    run = DagRun("typed")
    event = body(run.task_event("t", RunState.START, 1))
    event["job"]["facets"]["jobType"]["jobType"] = "TA\x00SK"
    workspace = f"events_{uuid.uuid4().hex[:12]}"
    await _record(engine, workspace, event)
    result = await execute(engine, INSTANCE_QUERY, {"runIds": [run.run_id]}, workspace=workspace)
    assert result.errors is None, result.errors
    (node,) = result.data["instances"]["nodes"][0]["nodes"]["nodes"]
    assert node["type"] == "AIRFLOW TASK"


async def test_times_before_the_year_1000_order_as_instants(engine: AsyncEngine) -> None:
    """Times are kept as text that must sort as the instants do: years before 1000 zero-padded
    (strftime's %Y does not pad them, which also failed to parse back: a 500)."""
    run = DagRun("ancient")
    early = body(run.event(RunState.START, 0))
    early["eventTime"] = "0999-06-01T00:00:00Z"
    late = copy.deepcopy(early)
    late["eventType"], late["eventTime"] = "COMPLETE", "2024-06-01T00:00:00Z"
    workspace = f"events_{uuid.uuid4().hex[:12]}"
    await _record(engine, workspace, late)
    await _record(engine, workspace, early)
    result = await execute(engine, INSTANCE_QUERY, {"runIds": [run.run_id]}, workspace=workspace)
    assert result.errors is None, result.errors
    (stored,) = result.data["instances"]["nodes"]
    assert (stored["status"], stored["planTime"], stored["startTime"], stored["endTime"]) == (
        "SUCCESS",
        "0999-06-01T00:00:00.000Z",
        "0999-06-01T00:00:00.000Z",
        "2024-06-01T00:00:00.000Z",
    )


async def test_one_run_named_by_two_jobs_at_once(engine: AsyncEngine) -> None:
    """A child's parent facet and the parent's own events may name the parent's job apart; both
    are the same run, so they must be serialised on the run, not only on the job name
    (PostgreSQL: one of them failed on the unique run id, or a merge was lost)."""
    for _ in range(5):
        workspace = f"events_{uuid.uuid4().hex[:12]}"
        run = DagRun("named_by_facet")
        child = body(run.task_event("t", RunState.COMPLETE, 5))
        own = body(run.event(RunState.COMPLETE, 9))
        own["job"]["name"] = "named_by_itself"
        await asyncio.gather(_record(engine, workspace, child), _record(engine, workspace, own))
        result = await execute(
            engine, INSTANCE_QUERY, {"runIds": [run.run_id]}, workspace=workspace
        )
        assert result.errors is None, result.errors
        (stored,) = result.data["instances"]["nodes"]
        assert stored["status"] == "SUCCESS"
        assert [n["name"] for n in stored["nodes"]["nodes"]] == ["named_by_facet.t"]
