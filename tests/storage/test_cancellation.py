"""Work a request cancels or leaves behind: no pooled connection is lost, and no CancelledError
becomes another field's value (both found by tests/test_differential.py)."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import QueuePool, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.app import create_app
from jobql.resolvers.context import RequestContext
from jobql.settings import DEFAULT_CURSOR_SECRET, Settings
from jobql.storage.engine import Reader, ReaderClosed
from jobql.storage.identifiers import CursorCodec
from tests.factories import make_instance, make_job, new_workspace

# `b`'s argument fails coercion while `a` is being read: graphql-core answers without waiting
# for `a`, whose statement (and loader batch) runs after the request has closed its reader.
SIBLING_OF_A_BAD_ARGUMENT = """
query ($v: InstanceStatus = PAUSE) {
  job(name: "lonely") {
    a: instances(first: 50) { totalCount }
    b: instances(filter: {statuses: [$v]}) { totalCount }
  }
}
"""
# `last: 0` fails each parent's nested connection; the nullable `parent` absorbs the error and
# graphql-core cancels that parent's other fields, among them `parent { id }`, whose load of the
# same grandparent other items of the list await too.
CANCELLED_SHARED_LOAD = """
{ instances { nodes { job { parent { instances(last: 0) { totalCount } parent { id } } } } } }
"""
BURST = 50


@dataclass(frozen=True)
class App:
    """An app of one read strategy, over the engine it made (whose pool the tests watch)."""

    http: httpx.AsyncClient
    engine: AsyncEngine

    async def post(self, workspace: str, query: str, variables: object = None) -> httpx.Response:
        body = {"query": query, "variables": variables}
        return await self.http.post("/graphql", json=body, headers={"workspace": workspace})


@pytest.fixture(params=["compiled", "reference"])
async def app(engine: AsyncEngine, request: pytest.FixtureRequest) -> AsyncIterator[App]:
    url = engine.url.render_as_string(hide_password=False)
    created = create_app(Settings(database_url=url, read_strategy=request.param))
    # An exception out of the app (a CancelledError among them) is raised here, not answered.
    transport = httpx.ASGITransport(app=created)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobql.test") as http:
        yield App(http, created.state.engine)
    await created.state.engine.dispose()


def checked_out(engine: AsyncEngine) -> int:
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


async def test_a_burst_of_requests_that_leave_work_behind_loses_no_connection(
    engine: AsyncEngine, app: App
) -> None:
    workspace = await new_workspace(engine)
    await make_job(engine, workspace, "lonely")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(BURST):
            response = await app.post(workspace.name, SIBLING_OF_A_BAD_ARGUMENT, {"v": None})
            assert response.status_code == 200
            assert response.json()["data"] == {"job": None}
            assert codes(response) == ["BAD_USER_INPUT"]
        await asyncio.sleep(0.2)  # the work left behind ends (it has nothing to wait for)
        still_out = checked_out(app.engine)
        gc.collect()  # a connection nobody holds is found here (an SAWarning), and terminated
    lost = [str(w.message) for w in caught if "non-checked-in connection" in str(w.message)]
    assert (still_out, lost) == (0, [])


async def test_a_cancelled_field_does_not_cancel_a_load_other_fields_share(
    engine: AsyncEngine, app: App
) -> None:
    workspace = await new_workspace(engine)
    root = await make_job(engine, workspace, "root")
    stream = await make_job(engine, workspace, "stream", parent_id=root.id)
    sub = await make_job(engine, workspace, "stream_sink", parent_id=stream.id)
    await make_instance(engine, sub)
    await make_instance(engine, stream)
    response = await app.post(workspace.name, CANCELLED_SHARED_LOAD)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"instances": {"nodes": [{"job": {"parent": None}}] * 2}}
    assert set(codes(response)) == {"BAD_USER_INPUT"}


async def test_a_closed_reader_takes_no_statement(engine: AsyncEngine) -> None:
    reader = Reader(engine)
    assert await reader.scalar(select(literal(1))) == 1
    await reader.release()  # back to the pool; the reader goes on
    assert await reader.scalar(select(literal(2))) == 2
    await reader.close()
    with pytest.raises(ReaderClosed):
        await reader.scalar(select(literal(3)))
    if engine.dialect.name == "postgresql":
        with pytest.raises(ReaderClosed):
            await reader.fetch_driver("SELECT 4", ())
    assert checked_out(engine) == 0


async def test_a_batch_dispatched_after_the_request_ended_checks_out_nothing(
    engine: AsyncEngine,
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace)
    context = RequestContext.open(engine, CursorCodec(DEFAULT_CURSOR_SECRET), workspace.name)
    pending = context.loaders.job_by_id.load(job.id)  # dispatched on a later turn of the loop
    await context.close()
    with pytest.raises(ReaderClosed):
        await pending
    assert checked_out(engine) == 0


async def test_a_load_outlives_one_of_its_callers(engine: AsyncEngine) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace)
    context = RequestContext.open(engine, CursorCodec(DEFAULT_CURSOR_SECRET), workspace.name)
    try:
        loader = context.loaders.job_by_id

        async def caller() -> object:
            return await loader.load(job.id)

        first, second = asyncio.create_task(caller()), asyncio.create_task(caller())
        await asyncio.sleep(0)  # both wait for the one load of the key
        first.cancel()
        row = await second
        assert getattr(row, "id", None) == job.id
        assert first.cancelled()
        assert (await loader.load(job.id)) is row  # and the cache holds the value, not the cancel
    finally:
        await context.close()
