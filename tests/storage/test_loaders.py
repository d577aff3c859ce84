"""Nested lists cost a fixed number of statements, and are limited per parent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.schema import schema
from jobql.storage.models import Instance, InstanceNode
from tests.factories import (
    BASE_TIME,
    data_of,
    insert_instances,
    make_job,
    new_workspace,
    reference_schema,
    with_instance_plan_times,
)

NESTED = """
query($n: Int!) {
  instances(first: $n) {
    nodes { instanceId job { name } nodes(first: 20) { nodes { name status } } }
  }
}
"""
NESTED_WITH_COUNTS = """
query($n: Int!) {
  instances(first: $n) {
    totalCount
    nodes { job { name parent { name } instances(first: 2) { totalCount nodes { instanceId } } }
            nodes(first: 20) { totalCount nodes { name instance { instanceId } } } }
  }
}
"""


@pytest.fixture(scope="module")
async def thousand_instances(engine: AsyncEngine) -> str:
    """1,000 instances over 50 jobs, each with 25 nodes (more than one nested page)."""
    workspace = await new_workspace(engine)
    jobs = [await make_job(engine, workspace) for _ in range(50)]
    rows = [
        {
            "workspace_id": workspace.id,
            "job_id": jobs[n % 50].id,
            "vendor_instance_id": n,
            "status": "SUCCESS",
            "instance_type": "GENERAL",
            "plan_time": BASE_TIME + timedelta(seconds=n),
            "force_success": False,
            "ignore_success": False,
        }
        for n in range(1000)
    ]
    async with engine.begin() as connection:
        await insert_instances(connection, rows)
        keys = (
            await connection.scalars(
                select(Instance.id).where(Instance.workspace_id == workspace.id)
            )
        ).all()
        nodes = [
            {
                "workspace_id": workspace.id,
                "instance_id": key,
                "position": position,
                "name": f"step_{position}",
                "type": "Dummy",
                "status": "SUCCESS",
            }
            for key in keys
            for position in range(25)
        ]
        await connection.execute(
            insert(InstanceNode), await with_instance_plan_times(connection, nodes)
        )
    return workspace.name


@pytest.mark.parametrize("strategy", ["reference", "compiled"])
@pytest.mark.parametrize("document", [NESTED, NESTED_WITH_COUNTS])
async def test_statement_count_does_not_grow_with_page_size(
    engine: AsyncEngine, thousand_instances: str, statements: Any, document: str, strategy: str
) -> None:
    counts = {}
    # An explicit schema: no differential re-run (tests.factories) adds to the count.
    using = reference_schema if strategy == "reference" else schema
    for n in (1, 100, 1000):
        statements.reset()
        data = await data_of(engine, document, {"n": n}, workspace=thousand_instances, using=using)
        assert len(data["instances"]["nodes"]) == n
        counts[n] = statements.count
    assert counts[1] == counts[100] == counts[1000], counts
    if strategy == "compiled":
        # One root field, one statement, whatever the page size and nesting.
        assert counts[1] == 1, statements.statements
        return
    # instances + jobs + nodes, and with counts: + instance count + job instances
    # + their count + node count + parents (none here, so the parent loader never runs)
    assert counts[1] == (3 if document is NESTED else 7), statements.statements


async def test_nested_connections_are_limited_per_parent(
    engine: AsyncEngine, thousand_instances: str
) -> None:
    data = await data_of(engine, NESTED, {"n": 1000}, workspace=thousand_instances)
    for instance in data["instances"]["nodes"]:
        assert [n["name"] for n in instance["nodes"]["nodes"]] == [f"step_{p}" for p in range(20)]
    data = await data_of(
        engine,
        "{ jobs(first: 50) { nodes { instances(first: 3) { nodes { instanceId } "
        "pageInfo { hasNextPage } } } } }",
        workspace=thousand_instances,
    )
    for job in data["jobs"]["nodes"]:
        assert len(job["instances"]["nodes"]) == 3
        assert job["instances"]["pageInfo"]["hasNextPage"] is True


async def test_nested_pages_continue_from_their_cursor(
    engine: AsyncEngine, thousand_instances: str
) -> None:
    document = """query($a: String) { instances(first: 1) { nodes {
        nodes(first: 20, after: $a) { nodes { name } pageInfo { hasNextPage endCursor } } } } }"""
    first = await data_of(engine, document, {"a": None}, workspace=thousand_instances)
    page = first["instances"]["nodes"][0]["nodes"]
    rest = await data_of(
        engine, document, {"a": page["pageInfo"]["endCursor"]}, workspace=thousand_instances
    )
    tail = rest["instances"]["nodes"][0]["nodes"]
    assert [n["name"] for n in tail["nodes"]] == [f"step_{p}" for p in range(20, 25)]
    assert tail["pageInfo"]["hasNextPage"] is False


async def test_loaders_are_made_on_first_use_and_kept_for_the_request() -> None:
    """A request the compiled strategy answers builds none of them. (Async: a loader binds the
    running event loop, as it does in a request.)"""
    from jobql.storage.engine import Reader
    from jobql.storage.loaders import Loaders, NodeByIdLoader

    loaders = Loaders.create(Reader.__new__(Reader), "default")
    assert "node_by_id" not in vars(loaders)
    first = loaders.node_by_id
    assert isinstance(first, NodeByIdLoader)
    assert loaders.node_by_id is first
    assert set(vars(loaders)) - {"_reader", "_workspace", "_cache"} == {"node_by_id"}
