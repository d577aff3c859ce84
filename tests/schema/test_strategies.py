"""The compiled read strategy against the reference strategy: what compiles, what falls back.

Equivalence over every query of the suite is checked by `tests.factories.execute` (each query
also runs through the reference strategy) and over generated queries by `tests/test_fuzz.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import strawberry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.permission import PermissionExtension

from jobql.schema import create_schema, schema
from jobql.schema.instances import Instance
from jobql.settings import Settings, SettingsError
from jobql.storage.json_sql import utc_text
from tests.factories import (
    BASE_TIME,
    data_of,
    execute,
    make_instance,
    make_job,
    make_nodes,
    new_workspace,
    reference_schema,
)

DENIED = "Nobody may read this."


class DenyAll(strawberry.BasePermission):
    message = DENIED

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


@pytest.fixture
def guarded_status() -> Iterator[None]:
    """`Instance.status` with a deny-all permission class, as a later change might add one."""
    field = next(f for f in Instance.__strawberry_definition__.fields if f.name == "status")
    saved = (list(field.permission_classes), list(field.extensions), list(field.directives))
    field.permission_classes = [DenyAll]
    field.extensions = [*field.extensions, PermissionExtension([DenyAll()], use_directives=False)]
    try:
        yield
    finally:
        field.permission_classes, field.extensions, field.directives = saved


@pytest.fixture
async def workspace(engine: AsyncEngine) -> str:
    space = await new_workspace(engine)
    job = await make_job(engine, space, "nightly")
    for n in range(5):
        instance = await make_instance(
            engine, job, vendor_instance_id=n + 1, plan_time=BASE_TIME + timedelta(hours=n)
        )
        await make_nodes(engine, instance, 3)
    return space.name


async def test_a_field_with_a_permission_never_compiles_and_is_never_returned(
    engine: AsyncEngine, workspace: str, guarded_status: None
) -> None:
    guarded = create_schema(report_strategy=True)
    assert ("Instance", "status") not in guarded.compilable
    assert ("Instance", "planTime") in guarded.compilable
    result = await execute(
        engine,
        "{ instances(first: 2) { nodes { instanceId status } } }",
        workspace=workspace,
        using=guarded,
    )
    assert result.data is None  # status is non-null: the error nulls the whole connection
    assert {error.message for error in result.errors} == {DENIED}
    assert result.extensions["strategy"] == {"instances": "reference"}
    # The same root field without the guarded field still compiles.
    plain = await execute(
        engine,
        "{ instances(first: 2) { nodes { instanceId } } }",
        workspace=workspace,
        using=guarded,
    )
    assert plain.errors is None
    assert plain.extensions["strategy"] == {"instances": "compiled"}


async def test_the_strategy_of_each_root_field_is_reported(
    engine: AsyncEngine, workspace: str
) -> None:
    reporting = create_schema(report_strategy=True)
    result = await execute(
        engine,
        """{
          plain: instances(first: 1) { nodes { planTime job { name } } }
          split: instances(first: 1) { nodes { runtime { packages } } }
          jobs { totalCount }
          node(id: "Sm9iOjE=") { id }
          nodes(ids: ["Sm9iOjE="]) { id }
        }""",
        workspace=workspace,
        using=reporting,
    )
    assert result.errors is None, result.errors
    assert result.extensions["strategy"] == {
        "plain": "compiled",
        "split": "reference",  # packages is a split of the stored text, not a column
        "jobs": "compiled",
        "node": "compiled",  # a Job id: the type is known from the id
        "nodes": "compiled",  # each id names its type
    }
    assert result.data["node"] is None  # Job 1 is not in this workspace
    off = create_schema(read_strategy="reference", report_strategy=True)
    again = await execute(engine, "{ jobs { totalCount } }", workspace=workspace, using=off)
    assert again.extensions["strategy"] == {"jobs": "reference"}


PAGE = """
query($first: Int, $after: String, $last: Int, $before: String) {
  instances(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { instanceId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


@pytest.mark.parametrize("direction", ["forward", "backward"])
async def test_cursors_of_one_strategy_page_in_the_other(
    engine: AsyncEngine, workspace: str, direction: str
) -> None:
    for source, target in ((schema, reference_schema), (reference_schema, schema)):
        if direction == "forward":
            first = await data_of(engine, PAGE, {"first": 2}, workspace=workspace, using=source)
            cursor = first["instances"]["pageInfo"]["endCursor"]
            variables = {"first": 2, "after": cursor}
        else:
            first = await data_of(engine, PAGE, {"last": 2}, workspace=workspace, using=source)
            cursor = first["instances"]["pageInfo"]["startCursor"]
            variables = {"last": 2, "before": cursor}
        there = await data_of(engine, PAGE, variables, workspace=workspace, using=target)
        back = await data_of(engine, PAGE, variables, workspace=workspace, using=source)
        assert there == back
        ids = [edge["node"]["instanceId"] for edge in there["instances"]["edges"]]
        # newest first: 5 4 | 3 2 forwards; 4 3 | 2 1 backwards
        assert ids == ([3, 2] if direction == "forward" else [4, 3])


def test_the_read_strategy_setting_is_checked() -> None:
    assert Settings.from_env({}).read_strategy == "compiled"
    assert Settings.from_env({"JOBQL_READ_STRATEGY": "Reference"}).read_strategy == "reference"
    with pytest.raises(SettingsError, match="JOBQL_READ_STRATEGY='fast' must be one of"):
        Settings.from_env({"JOBQL_READ_STRATEGY": "fast"})
    with pytest.raises(ValueError, match="unknown read strategy"):
        create_schema(read_strategy="fast")


async def test_an_object_too_wide_for_one_sql_json_constructor_is_served_by_the_resolvers(
    engine: AsyncEngine, workspace: str
) -> None:
    reporting = create_schema(report_strategy=True)
    aliases = " ".join(f"s{n}: status" for n in range(100))
    document = f"{{ instances(first: 2) {{ nodes {{ instanceId {aliases} }} }} }}"
    result = await execute(engine, document, workspace=workspace, using=reporting)
    assert result.errors is None, result.errors
    assert result.extensions["strategy"] == {"instances": "reference"}
    assert [len(node) for node in result.data["instances"]["nodes"]] == [101, 101]


NODES = """query($ids: [ID!]!) {
  nodes(ids: $ids) {
    __typename id
    ... on Instance { instanceId status job { name } nodes(first: 1) { nodes { name } } }
    ... on Job { name instances(first: 1) { totalCount } }
    ... on InstanceNode { name instance { instanceId } }
  }
}"""


async def test_nodes_by_ids_is_one_statement_in_the_order_asked(
    engine: AsyncEngine, workspace: str, statements: Any
) -> None:
    """Mixed types, repeats, ids of no object, of another workspace and of an unknown type:
    one statement, the reference strategy's answer (checked by `execute`), in the ids' order."""
    from jobql.storage.identifiers import encode_global_id

    listing = await data_of(
        engine,
        "{ jobs { nodes { id } } instances { nodes { id nodes { nodes { id } } } } }",
        workspace=workspace,
    )
    job = listing["jobs"]["nodes"][0]["id"]
    runs = [item["id"] for item in listing["instances"]["nodes"]]
    step = listing["instances"]["nodes"][0]["nodes"]["nodes"][0]["id"]
    other = await new_workspace(engine)
    foreign_job = await make_job(engine, other, "elsewhere")
    ids = [
        runs[1],
        job,
        step,
        runs[1],  # asked twice: answered twice
        encode_global_id("Instance", 2**62),  # no such row
        encode_global_id("Job", foreign_job.id),  # another workspace's
        encode_global_id("Pipeline", 1),  # a type that does not exist
        runs[0],
    ]
    compiled = create_schema(report_strategy=True)
    statements.reset()
    result = await execute(engine, NODES, {"ids": ids}, workspace=workspace, using=compiled)
    assert result.errors is None, result.errors
    assert result.extensions["strategy"] == {"nodes": "compiled"}
    assert statements.count == 1, statements.statements
    got = result.data["nodes"]
    assert [None if item is None else item["id"] for item in got] == [
        runs[1], job, step, runs[1], None, None, None, runs[0]
    ]  # fmt: skip
    assert got[0] == got[3]
    assert got[1]["__typename"] == "Job"
    assert got[1]["name"] == "nightly"
    assert got[2]["instance"]["instanceId"] in range(1, 6)
    # The same answer as the reference strategy (factories.execute compares every query too).
    reference = await execute(
        engine, NODES, {"ids": ids}, workspace=workspace, using=reference_schema
    )
    assert reference.data == result.data
    for odd in ([], [encode_global_id("Pipeline", 1)]):
        statements.reset()
        empty = await execute(engine, NODES, {"ids": odd}, workspace=workspace, using=compiled)
        assert empty.data == {"nodes": [None] * len(odd)}
        assert empty.extensions["strategy"] == {"nodes": "compiled"}


@pytest.mark.parametrize("ids", [["not an id"], ["SW5zdGFuY2U6MQ=="] * 1001])
async def test_bad_ids_of_nodes_are_the_reference_strategys_errors(
    engine: AsyncEngine, workspace: str, ids: list[str]
) -> None:
    compiled = create_schema(report_strategy=True)
    result = await execute(engine, NODES, {"ids": ids}, workspace=workspace, using=compiled)
    reference = await execute(
        engine, NODES, {"ids": ids}, workspace=workspace, using=reference_schema
    )
    assert result.data == reference.data
    assert [e.extensions["code"] for e in result.errors] == ["BAD_USER_INPUT"]
    assert [e.message for e in result.errors] == [e.message for e in reference.errors]
    assert result.extensions["strategy"] == {"nodes": "reference"}


@pytest.mark.parametrize(
    ("document", "numbered", "peek"),
    [
        (
            "{ instances(first: 2) { nodes { instanceId nodes(first: 2) { nodes { name } } } } }",
            0,
            0,
        ),
        ("{ instances(last: 2) { nodes { instanceId nodes(last: 2) { nodes { name } } } } }", 0, 0),
        ("{ instances(first: 2) { edges { cursor node { instanceId } } } }", 0, 0),
        # One row past the page tells whether there is more; the server drops it.
        ("{ instances(first: 2) { pageInfo { hasNextPage } nodes { instanceId } } }", 0, 1),
        ("{ instances(last: 2) { pageInfo { hasPreviousPage } nodes { instanceId } } }", 0, 1),
        # The end cursors are the first and last edges' ...
        (
            "{ instances(first: 2) { edges { cursor } pageInfo { endCursor hasNextPage } } }",
            0,
            1,
        ),
        ("{ instances(last: 2) { pageInfo { startCursor } edges { cursor } } }", 0, 0),
        # ... and without edge cursors to take them from, the rows are numbered.
        ("{ instances(last: 2) { pageInfo { endCursor } nodes { instanceId } } }", 1, 1),
    ],
)
async def test_a_page_reads_one_row_past_it_only_to_say_whether_there_is_more(
    engine: AsyncEngine,
    workspace: str,
    statements: Any,
    document: str,
    numbered: int,
    peek: int,
) -> None:
    """Without hasNextPage/hasPreviousPage or the page's end cursors, the compiled statement
    reads exactly the rows shown (no extra row, no numbering); the page size is in its text.
    Rows are numbered only where end cursors are asked without edge cursors to take them from.
    `execute` checks each answer against the reference strategy."""
    compiled = create_schema(report_strategy=True)
    statements.reset()
    result = await execute(engine, document, workspace=workspace, using=compiled)
    assert result.errors is None, result.errors
    assert result.extensions["strategy"] == {"instances": "compiled"}
    assert len(result.data["instances"].get("nodes") or result.data["instances"]["edges"]) == 2
    (sql,) = statements.statements
    assert sql.count("row_number()") == numbered, sql
    assert ("LIMIT 3" in sql) == bool(peek), sql
    assert ("LIMIT 2" in sql) == (not peek), sql


@pytest.mark.parametrize(
    ("document", "arrays", "aggregates"),
    [
        # W1's shape: each page read by its one list of items, the nested one once per parent.
        (
            "{ instances(first: 2) { nodes { instanceId nodes(first: 2) { nodes { name } } } } }",
            2,
            0,
        ),
        ("{ instances(last: 2) { nodes { instanceId nodes(last: 2) { nodes { name } } } } }", 2, 0),
        ("{ instances(first: 2) { edges { cursor node { instanceId } } } }", 1, 0),
        # Counted rows (hasNextPage), a second list or numbered rows keep the aggregates.
        ("{ instances(first: 2) { pageInfo { hasNextPage } nodes { instanceId } } }", 0, 1),
        ("{ instances(first: 2) { nodes { instanceId } edges { cursor } } }", 0, 2),
        ("{ instances(last: 2) { pageInfo { endCursor } nodes { instanceId } } }", 0, 1),
    ],
)
async def test_a_page_read_only_by_its_list_is_an_array_in_order_not_a_sorting_aggregate(
    engine: AsyncEngine,
    workspace: str,
    statements: Any,
    document: str,
    arrays: int,
    aggregates: int,
) -> None:
    """On PostgreSQL, `json_agg(... ORDER BY ...)` sorts each page again (W1: once per parent
    row); a page that only its list of items reads comes as `ARRAY(SELECT ... ORDER BY ...)`,
    in the order its rows are read. `execute` checks each answer against the reference."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite aggregates in the order of its FROM subquery")
    compiled = create_schema(report_strategy=True)
    statements.reset()
    result = await execute(engine, document, workspace=workspace, using=compiled)
    assert result.errors is None, result.errors
    assert result.extensions["strategy"] == {"instances": "compiled"}
    (sql,) = statements.statements
    assert sql.count("array_to_json(array((SELECT") == arrays, sql
    assert sql.count("json_agg(") == aggregates, sql


TIMES = """{ instances(first: 1) {
  nodes { startTime nodes(first: 1) { nodes { startTime endTime } } }
} }"""


@pytest.mark.parametrize("micros", [0, 100_000, 120_000, 123_000, 999_000, 123_456])
async def test_times_are_written_by_json_and_completed_by_the_server(
    engine: AsyncEngine, statements: Any, micros: int
) -> None:
    """On PostgreSQL a time comes as JSON writes a UTC `timestamp` (`...:00.12`: the fraction
    without its trailing zeros, none when zero) and the server completes it (`...:00.120Z`),
    not through `to_char`, which cost W1 a fifth of its database CPU. Microseconds, which a
    row written around jobql may hold, are cut as `to_char` cut them. `execute` compares the
    answer with the reference strategy's."""
    if micros % 1000 and engine.dialect.name != "postgresql":
        pytest.skip("SQLite holds times as jobql writes them: milliseconds")
    space = await new_workspace(engine)
    job = await make_job(engine, space, "nightly")
    at = BASE_TIME + timedelta(microseconds=micros - micros % 1000)
    instance = await make_instance(engine, job, start_time=at)
    await make_nodes(engine, instance, 1, start_time=at)
    if micros % 1000:  # written around jobql, whose writes keep milliseconds
        async with engine.begin() as connection:
            extra = f"interval '{micros % 1000} microseconds'"
            await connection.execute(
                text(f"UPDATE instance SET start_time = start_time + {extra} WHERE id = :id"),
                {"id": instance.id},
            )
            await connection.execute(
                text(
                    f"UPDATE instance_node SET start_time = start_time + {extra} "
                    "WHERE instance_id = :id"
                ),
                {"id": instance.id},
            )
    compiled = create_schema(report_strategy=True)
    statements.reset()
    result = await execute(engine, TIMES, workspace=space.name, using=compiled)
    assert result.extensions["strategy"] == {"instances": "compiled"}
    sql = statements.statements[0]  # then the new job's name (the server's names are cold)
    assert "to_char" not in sql, sql  # no cursor asked: no time written as text in SQL
    expected = f"2019-03-04T03:53:00.{micros // 1000:03d}Z"
    (found,) = result.data["instances"]["nodes"]
    assert found["startTime"] == expected
    assert found["nodes"]["nodes"] == [{"startTime": expected, "endTime": None}]
    reference = await execute(engine, TIMES, workspace=space.name, using=reference_schema)
    assert result.data == reference.data


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("2019-03-04T03:53:00", "2019-03-04T03:53:00.000Z"),
        ("2019-03-04T03:53:00.1", "2019-03-04T03:53:00.100Z"),
        ("2019-03-04T03:53:00.12", "2019-03-04T03:53:00.120Z"),
        ("2019-03-04T03:53:00.123", "2019-03-04T03:53:00.123Z"),
        ("2019-03-04T03:53:00.1234", "2019-03-04T03:53:00.123Z"),
        ("2019-03-04T03:53:00.999999", "2019-03-04T03:53:00.999Z"),
        ("0500-01-01T00:00:00.5", "0500-01-01T00:00:00.500Z"),
        # to_char gave null for infinite times (see test_differential's known mismatches)
        ("-infinity", None),
        ("infinity", None),
        (None, None),
    ],
)
def test_the_server_completes_postgresqls_json_times(
    written: str | None, shown: str | None
) -> None:
    assert utc_text(written) == shown
