"""Keyset pagination of instances: every order, both directions, exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.schema import schema
from jobql.storage.identifiers import encode_global_id
from tests.factories import (
    BASE_TIME,
    data_of,
    execute,
    make_instance,
    make_job,
    new_workspace,
    reference_schema,
)

PAGE_FORWARD = """
query Page($first: Int, $after: String, $order: InstanceOrder) {
  instances(first: $first, after: $after, orderBy: $order) {
    edges { cursor node { id instanceId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

PAGE_BACKWARD = """
query Page($last: Int, $before: String, $order: InstanceOrder) {
  instances(last: $last, before: $before, orderBy: $order) {
    edges { cursor node { id instanceId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

FIELDS = ["PLAN_TIME", "START_TIME", "END_TIME", "INSTANCE_ID"]
DIRECTIONS = ["ASC", "DESC"]


@dataclass
class Made:
    global_id: str
    key: int
    values: dict[str, Any]


@pytest.fixture(scope="module")
async def instances_for_pagination(engine: AsyncEngine) -> tuple[str, list[Made]]:
    """23 instances over two jobs with ties and nulls in every nullable sort key."""
    workspace = await new_workspace(engine)
    jobs = [await make_job(engine, workspace), await make_job(engine, workspace)]
    made: list[Made] = []
    for n in range(23):
        start = None if n % 5 == 0 else BASE_TIME + timedelta(minutes=n // 3)  # ties in threes
        end = None if n % 4 == 1 else BASE_TIME + timedelta(hours=1, minutes=(n * 7) % 5)
        values = {
            "PLAN_TIME": BASE_TIME + timedelta(minutes=(n * 11) % 17),  # ties too
            "START_TIME": start,
            "END_TIME": end,
            "INSTANCE_ID": 1000 + n // 2,  # the two jobs share vendor ids: ties
        }
        ref = await make_instance(
            engine,
            jobs[n % 2],
            vendor_instance_id=values["INSTANCE_ID"],
            plan_time=values["PLAN_TIME"],
            start_time=start,
            end_time=end,
        )
        made.append(Made(encode_global_id("Instance", ref.id), ref.id, values))
    return workspace.name, made


def expected_order(made: list[Made], field: str, direction: str) -> list[str]:
    descending = direction == "DESC"
    with_value = [m for m in made if m.values[field] is not None]
    without = [m for m in made if m.values[field] is None]
    with_value.sort(key=lambda m: (m.values[field], m.key), reverse=descending)
    without.sort(key=lambda m: m.key, reverse=descending)
    return [m.global_id for m in with_value + without]


async def page_all_forward(
    engine: AsyncEngine, workspace: str, order: dict[str, str], size: int
) -> list[str]:
    seen: list[str] = []
    after = None
    for _ in range(100):
        data = await data_of(
            engine,
            PAGE_FORWARD,
            {"first": size, "after": after, "order": order},
            workspace=workspace,
        )
        connection = data["instances"]
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not connection["pageInfo"]["hasNextPage"]:
            return seen
        after = connection["pageInfo"]["endCursor"]
        assert after == connection["edges"][-1]["cursor"]
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_forward_paging_returns_every_instance_once_in_order(
    engine: AsyncEngine,
    instances_for_pagination: tuple[str, list[Made]],
    field: str,
    direction: str,
) -> None:
    workspace, made = instances_for_pagination
    order = {"field": field, "direction": direction}
    seen = await page_all_forward(engine, workspace, order, size=4)
    assert seen == expected_order(made, field, direction)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_backward_paging_returns_every_instance_once_in_order(
    engine: AsyncEngine,
    instances_for_pagination: tuple[str, list[Made]],
    field: str,
    direction: str,
) -> None:
    workspace, made = instances_for_pagination
    order = {"field": field, "direction": direction}
    seen: list[str] = []
    before = None
    for _ in range(100):
        data = await data_of(
            engine,
            PAGE_BACKWARD,
            {"last": 5, "before": before, "order": order},
            workspace=workspace,
        )
        connection = data["instances"]
        seen = [edge["node"]["id"] for edge in connection["edges"]] + seen
        assert connection["pageInfo"]["hasNextPage"] is (before is not None)
        if not connection["pageInfo"]["hasPreviousPage"]:
            break
        before = connection["pageInfo"]["startCursor"]
    assert seen == expected_order(made, field, direction)


async def test_after_and_before_together_bound_both_ends(
    engine: AsyncEngine, instances_for_pagination: tuple[str, list[Made]]
) -> None:
    workspace, _ = instances_for_pagination
    order = {"field": "START_TIME", "direction": "ASC"}
    everything = await data_of(
        engine, PAGE_FORWARD, {"first": 100, "order": order}, workspace=workspace
    )
    edges = everything["instances"]["edges"]
    data = await data_of(
        engine,
        """query($a: String, $b: String, $order: InstanceOrder) {
             instances(first: 100, after: $a, before: $b, orderBy: $order) {
               nodes { id } } }""",
        {"a": edges[3]["cursor"], "b": edges[19]["cursor"], "order": order},
        workspace=workspace,
    )
    assert [n["id"] for n in data["instances"]["nodes"]] == [e["node"]["id"] for e in edges[4:19]]


async def test_default_is_first_10_newest_planned_first(
    engine: AsyncEngine, instances_for_pagination: tuple[str, list[Made]]
) -> None:
    workspace, made = instances_for_pagination
    data = await data_of(engine, "{ instances { nodes { id } } }", workspace=workspace)
    assert [n["id"] for n in data["instances"]["nodes"]] == expected_order(
        made, "PLAN_TIME", "DESC"
    )[:10]


async def test_paging_with_after_sees_no_duplicates_when_instances_arrive_between_pages(
    engine: AsyncEngine,
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace)
    for n in range(10):
        await make_instance(engine, job, plan_time=BASE_TIME + timedelta(minutes=n))
    seen: list[int] = []
    after = None
    newest = BASE_TIME + timedelta(days=1)
    while True:
        data = await data_of(
            engine,
            PAGE_FORWARD,
            {"first": 3, "after": after},
            workspace=workspace.name,
        )
        connection = data["instances"]
        seen += [edge["node"]["instanceId"] for edge in connection["edges"]]
        # New runs arrive at the head (newer plan time) and in the middle of the list.
        newest += timedelta(minutes=1)
        await make_instance(engine, job, plan_time=newest)
        await make_instance(engine, job, plan_time=BASE_TIME + timedelta(minutes=4, seconds=30))
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)), "an instance was returned twice"
    assert len(seen) >= 10


async def test_cursor_keeps_its_place_after_its_row_is_deleted(engine: AsyncEngine) -> None:
    from sqlalchemy import delete

    from jobql.storage.models import Instance

    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace)
    refs = [
        await make_instance(engine, job, plan_time=BASE_TIME + timedelta(minutes=n))
        for n in range(6)
    ]
    first = await data_of(engine, PAGE_FORWARD, {"first": 3}, workspace=workspace.name)
    cursor = first["instances"]["pageInfo"]["endCursor"]
    async with engine.begin() as connection:
        await connection.execute(delete(Instance).where(Instance.id == refs[3].id))
    rest = await data_of(
        engine, PAGE_FORWARD, {"first": 10, "after": cursor}, workspace=workspace.name
    )
    assert [e["node"]["id"] for e in rest["instances"]["edges"]] == [
        encode_global_id("Instance", ref.id) for ref in reversed(refs[:3])
    ]


async def test_total_count_ignores_paging(
    engine: AsyncEngine, instances_for_pagination: tuple[str, list[Made]]
) -> None:
    workspace, made = instances_for_pagination
    data = await data_of(
        engine, "{ instances(first: 2) { totalCount nodes { id } } }", workspace=workspace
    )
    assert data["instances"]["totalCount"] == len(made)
    assert len(data["instances"]["nodes"]) == 2


async def test_total_count_is_not_computed_unless_selected(
    engine: AsyncEngine, instances_for_pagination: tuple[str, list[Made]], statements: Any
) -> None:
    workspace, _ = instances_for_pagination
    for using in (reference_schema, None):
        statements.reset()
        await data_of(
            engine, "{ instances(first: 2) { nodes { id } } }", workspace=workspace, using=using
        )
        assert not any("select count(*)" in s.lower() for s in statements.statements)
        statements.reset()
        await data_of(
            engine, "{ instances(first: 2) { totalCount } }", workspace=workspace, using=using
        )
        assert any("select count(*)" in s.lower() for s in statements.statements)


@pytest.mark.parametrize("strategy", ["reference", "compiled"])
async def test_deep_page_uses_a_keyset_bound_not_an_offset(
    engine: AsyncEngine,
    instances_for_pagination: tuple[str, list[Made]],
    statements: Any,
    strategy: str,
) -> None:
    workspace, _ = instances_for_pagination
    using = reference_schema if strategy == "reference" else schema
    first = await data_of(engine, PAGE_FORWARD, {"first": 20}, workspace=workspace, using=using)
    statements.reset()
    await execute(
        engine,
        PAGE_FORWARD,
        {"first": 2, "after": first["instances"]["pageInfo"]["endCursor"]},
        workspace=workspace,
        using=using,
    )
    (sql,) = statements.statements
    (parameters,) = statements.parameters
    # The position is a row-value bound the index can seek to, and nothing is skipped by offset
    # (SQLite's compiler always writes OFFSET; its value stays 0).
    assert "(instance.plan_time, instance.id) <" in sql
    if strategy == "reference":
        skipped = [0] if "OFFSET" not in sql.upper() else [list(parameters)[-1]]
        assert skipped == [0]
    else:
        assert " OFFSET " not in sql.upper() or engine.dialect.name == "sqlite"


@pytest.mark.parametrize("strategy", ["reference", "compiled"])
@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_deep_pages_seek_the_index_in_every_order(
    engine: AsyncEngine,
    instances_for_pagination: tuple[str, list[Made]],
    statements: Any,
    field: str,
    direction: str,
    strategy: str,
) -> None:
    """SQLite's plan shows every read of `instance` as an index range on the sort key."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans small tables with sequential scans; see bench/ for it")
    workspace, _ = instances_for_pagination
    order = {"field": field, "direction": direction}
    using = reference_schema if strategy == "reference" else schema
    first = await data_of(
        engine, PAGE_FORWARD, {"first": 7, "order": order}, workspace=workspace, using=using
    )
    statements.reset()
    await data_of(
        engine,
        PAGE_FORWARD,
        {"first": 3, "after": first["instances"]["pageInfo"]["endCursor"], "order": order},
        workspace=workspace,
        using=using,
    )
    (sql,) = statements.statements
    (parameters,) = statements.parameters
    async with engine.connect() as connection:
        plan = (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)).all()
    reads = [row[-1] for row in plan if " instance " in f"{row[-1]} " and "SUBQUERY" not in row[-1]]
    column = {
        "PLAN_TIME": "plan_time",
        "START_TIME": "start_time",
        "END_TIME": "end_time",
        "INSTANCE_ID": "vendor_instance_id",
    }[field]
    assert reads, plan
    for read in reads:
        # A covering index, where the page needs no other column, is the same seek.
        assert read.startswith(
            ("SEARCH instance USING INDEX", "SEARCH instance USING COVERING INDEX")
        ), plan
        assert "workspace_id=?" in read, plan
    # The values range starts at the cursor (a range on the sort key), not at the table's start.
    assert any(f"{column}>?" in read or f"{column}<?" in read for read in reads), plan
