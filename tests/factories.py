"""Factories for rows, and a way to run GraphQL documents against an engine.

Every test works in a workspace of its own (`new_workspace()`), so tests share one database per
backend without seeing each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import graphql
import httpx
import orjson
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobql.resolvers.context import RequestContext
from jobql.schema import Schema, create_schema, schema
from jobql.settings import DEFAULT_CURSOR_SECRET
from jobql.storage import engine as storage_engine
from jobql.storage.identifiers import CursorCodec
from jobql.storage.models import Instance, InstanceKey, InstanceNode, Job, Workspace

BASE_TIME = datetime(2019, 3, 4, 3, 53, tzinfo=UTC)
_counter = itertools.count(1)


@dataclass(frozen=True)
class Ref:
    id: int
    name: str = ""
    workspace_id: int = 0


async def new_workspace(engine: AsyncEngine, name: str | None = None) -> Ref:
    chosen = name or f"ws_{uuid.uuid4().hex[:12]}"

    async def work(connection: AsyncConnection) -> Any:
        existing = await connection.scalar(select(Workspace.id).where(Workspace.name == chosen))
        if existing is not None:
            return existing
        return await connection.scalar(
            insert(Workspace).values(name=chosen).returning(Workspace.id)
        )

    key = await _write(engine, work)
    assert key is not None
    return Ref(key, chosen, key)


async def _write(engine: AsyncEngine, work: Any) -> Any:
    """`work` in a write transaction as jobql's writers run theirs (`storage.engine.write`): on
    SQLite BEGIN IMMEDIATE and a few more attempts when locked out, where a plain `begin()`
    that reads first fails at once with "database is locked" if another writer holds the lock
    when it comes to write."""
    return await storage_engine.write(engine, work)


async def make_job(
    engine: AsyncEngine, workspace: Ref, name: str | None = None, **fields: Any
) -> Ref:
    values = {
        "workspace_id": workspace.id,
        "name": name or f"job_{next(_counter)}",
        "type": "BATCH",
        **fields,
    }
    key = await _write(
        engine, lambda connection: connection.scalar(insert(Job).values(**values).returning(Job.id))
    )
    assert key is not None
    return Ref(key, values["name"], workspace.id)


async def make_instance(engine: AsyncEngine, job: Ref, **fields: Any) -> Ref:
    n = next(_counter)
    values = {
        "workspace_id": job.workspace_id,
        "job_id": job.id,
        "vendor_instance_id": n,
        "job_instance_name": job.name,
        "status": "SUCCESS",
        "instance_type": "GENERAL",
        "plan_time": BASE_TIME + timedelta(minutes=n),
        "force_success": False,
        "ignore_success": False,
        **fields,
    }

    async def work(connection: AsyncConnection) -> int:
        [key] = await insert_instances(connection, [values])
        return key

    key = await _write(engine, work)
    assert key is not None
    return Ref(key, job.name, job.workspace_id)


async def make_nodes(engine: AsyncEngine, instance: Ref, count: int, **fields: Any) -> list[int]:
    rows = [
        {
            "workspace_id": instance.workspace_id,
            "instance_id": instance.id,
            "position": position,
            "name": f"node_{position}",
            "type": "Dummy",
            "status": "SUCCESS",
            **fields,
        }
        for position in range(count)
    ]
    if not rows:
        return []

    async def work(connection: AsyncConnection) -> list[int]:
        written = await with_instance_plan_times(connection, rows)
        result = await connection.execute(insert(InstanceNode).returning(InstanceNode.id), written)
        return [row[0] for row in result.all()]

    return await _write(engine, work)  # type: ignore[no-any-return]


_KEY = cast(Table, InstanceKey.__table__)
_PLACE_KEY = (
    update(_KEY)
    .where(_KEY.c.job_id == bindparam("k_job"), _KEY.c.vendor_instance_id == bindparam("k_vendor"))
    .values(instance_id=bindparam("k_id"), plan_time=bindparam("k_plan"))
)


async def insert_instances(connection: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Instance rows as given; their ids, in order. On PostgreSQL their key rows first, saying
    where each instance is, as ingest and the bulk load write them (models.InstanceKey)."""
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        await connection.execute(
            postgresql.insert(InstanceKey).on_conflict_do_nothing(),
            [{"job_id": r["job_id"], "vendor_instance_id": r["vendor_instance_id"]} for r in rows],
        )
    result = await connection.execute(
        insert(Instance).returning(Instance.id, Instance.plan_time, sort_by_parameter_order=True),
        rows,
    )
    written = result.all()
    if postgres:
        await connection.execute(
            _PLACE_KEY,
            [
                {
                    "k_job": row["job_id"],
                    "k_vendor": row["vendor_instance_id"],
                    "k_id": key,
                    "k_plan": plan_time,
                }
                for row, (key, plan_time) in zip(rows, written, strict=True)
            ],
        )
    return [key for key, _ in written]


async def with_instance_plan_times(
    connection: AsyncConnection, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Node rows with `instance_plan_time`, their instance's plan time (as ingest writes it)."""
    ids = sorted({row["instance_id"] for row in rows})
    plan_of: dict[int, Any] = {}
    for start in range(0, len(ids), 500):
        found = await connection.execute(
            select(Instance.id, Instance.plan_time).where(Instance.id.in_(ids[start : start + 500]))
        )
        plan_of.update({key: plan for key, plan in found.all()})
    return [{**row, "instance_plan_time": plan_of[row["instance_id"]]} for row in rows]


# The default schema serves reads compiled where it can; this one only through the resolvers.
reference_schema = create_schema(read_strategy="reference")


async def execute(
    engine: AsyncEngine,
    document: str,
    variables: dict[str, Any] | None = None,
    *,
    workspace: str | None = None,
    using: Schema | None = None,
) -> Any:
    """Run a document through the real schema with a request context, as the endpoint does."""
    context = RequestContext.open(engine, CursorCodec(DEFAULT_CURSOR_SECRET), workspace)
    try:
        result = await (using or schema).execute(
            document, variable_values=variables, context_value=context
        )
    finally:
        await context.close()
    if result.data is not None:
        # Compiled subtrees are JSON text (orjson fragments) until the response is encoded.
        result.data = orjson.loads(orjson.dumps(result.data))
    if using is None and DIFFERENTIAL and _is_query(document, variables):
        # Every query of the test suite also through the reference strategy: the same answer.
        expected = await execute(
            engine, document, variables, workspace=workspace, using=reference_schema
        )
        assert _answer(result) == _answer(expected), (document, variables)
    return result


# Off with JOBQL_TEST_DIFFERENTIAL=0 (for example to time the suite).
DIFFERENTIAL = os.environ.get("JOBQL_TEST_DIFFERENTIAL", "1") != "0"


def _is_query(document: str, variables: Any) -> bool:
    try:
        parsed = graphql.parse(document)
    except graphql.GraphQLError:
        return False
    operations = [d for d in parsed.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    return all(o.operation is graphql.OperationType.QUERY for o in operations)


def _answer(result: Any) -> Any:
    errors = [(e.message, e.path, (e.extensions or {}).get("code")) for e in result.errors or []]
    return result.data, sorted(errors, key=repr)


async def data_of(
    engine: AsyncEngine,
    document: str,
    variables: dict[str, Any] | None = None,
    *,
    workspace: str | None = None,
    using: Schema | None = None,
) -> Any:
    result = await execute(engine, document, variables, workspace=workspace, using=using)
    assert result.errors is None, result.errors
    return result.data


def error_codes(result: Any) -> list[str]:
    return [(e.extensions or {}).get("code") for e in result.errors or []]


def checked_out_when_idle(engine: AsyncEngine, seconds: float = 5.0) -> int:
    """The engine's checked-out connections once requests are over: the live event broker takes
    one for a moment now and then (its poll, its pruning), so wait up to `seconds` for it."""
    deadline = time.monotonic() + seconds
    while engine.pool.checkedout() and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(engine.pool.checkedout())


@contextlib.asynccontextmanager
async def slot_held(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> AsyncIterator[asyncio.Task[httpx.Response]]:
    """A POST /graphql whose body arrives only when the block ends: it holds an admission slot
    (JOBQL_MAX_CONCURRENCY) meanwhile. Yields the request's task."""
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        await release.wait()
        yield b'{"query": "{ jobs { totalCount } }"}'

    held = asyncio.create_task(client.post("/graphql", content=slow_body(), headers=headers))
    try:
        yield held
    finally:
        release.set()


async def first_refusal(
    client: httpx.AsyncClient, url: str, **options: Any
) -> httpx.Response | None:
    """GET `url` every 10 ms until one answers 503 (returned), at most 200 times (None)."""
    for _ in range(200):
        await asyncio.sleep(0.01)
        response = await client.get(url, **options)
        if response.status_code == 503:
            return response
    return None
