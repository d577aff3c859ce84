"""Client mistakes are BAD_USER_INPUT or NOT_FOUND with a readable message; the rest is masked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.settings import DEFAULT_CURSOR_SECRET
from jobql.storage.identifiers import CursorCodec, CursorContext
from jobql.storage.paging import Position
from tests.factories import (
    BASE_TIME,
    data_of,
    error_codes,
    execute,
    make_instance,
    make_job,
    new_workspace,
)

INSTANCES_PAGE = """
query($first: Int, $last: Int, $after: String, $before: String) {
  instances(first: $first, last: $last, after: $after, before: $before) { nodes { id } }
}
"""
NESTED_NODES_PAGE = """
query($first: Int) { instances(first: 1) { nodes { nodes(first: $first) { nodes { name } } } } }
"""
JOB_INSTANCES_PAGE = """
query($name: String!, $first: Int) {
  job(name: $name) { instances(first: $first) { nodes { id } } }
}
"""


@pytest.fixture(scope="module")
async def populated(engine: AsyncEngine) -> tuple[str, str]:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace)
    for n in range(3):
        await make_instance(engine, job, plan_time=BASE_TIME + timedelta(minutes=n))
    return workspace.name, job.name


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 0}, "`first` must be between 1 and 1000, got 0."),
        ({"first": 1001}, "`first` must be between 1 and 1000, got 1001."),
        ({"first": -1}, "`first` must be between 1 and 1000, got -1."),
        ({"last": 0}, "`last` must be between 1 and 1000, got 0."),
        ({"last": 5000}, "`last` must be between 1 and 1000, got 5000."),
        ({"first": 1, "last": 1}, "Pass either `first` or `last`, not both."),
        ({"after": "garbage"}, "`after` is not a valid cursor"),
        ({"before": "!!!"}, "`before` is not a valid cursor"),
        ({"after": ""}, "`after` is not a valid cursor"),
    ],
)
async def test_bad_page_arguments_are_bad_user_input(
    engine: AsyncEngine, populated: tuple[str, str], variables: dict[str, Any], message: str
) -> None:
    workspace, _ = populated
    result = await execute(engine, INSTANCES_PAGE, variables, workspace=workspace)
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result.errors[0].message.startswith(message)
    assert result.errors[0].path == ["instances"]


@pytest.mark.parametrize("first", [0, 1001, -5])
async def test_nested_connections_check_their_limits_too(
    engine: AsyncEngine, populated: tuple[str, str], first: int
) -> None:
    workspace, job_name = populated
    result = await execute(engine, NESTED_NODES_PAGE, {"first": first}, workspace=workspace)
    assert error_codes(result) == ["BAD_USER_INPUT"]
    result = await execute(
        engine, JOB_INSTANCES_PAGE, {"name": job_name, "first": first}, workspace=workspace
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result.errors[0].path == ["job", "instances"]


async def test_cursor_from_another_workspace_is_the_same_error_as_garbage(
    engine: AsyncEngine, populated: tuple[str, str]
) -> None:
    workspace, _ = populated
    other = await new_workspace(engine)
    job = await make_job(engine, other)
    await make_instance(engine, job)
    await make_instance(engine, job)
    page = await data_of(
        engine,
        "{ instances(first: 1) { pageInfo { endCursor } } }",
        workspace=other.name,
    )
    foreign = page["instances"]["pageInfo"]["endCursor"]
    from_foreign = await execute(engine, INSTANCES_PAGE, {"after": foreign}, workspace=workspace)
    from_garbage = await execute(engine, INSTANCES_PAGE, {"after": "xyz"}, workspace=workspace)
    assert from_foreign.errors[0].message == from_garbage.errors[0].message
    assert error_codes(from_foreign) == error_codes(from_garbage) == ["BAD_USER_INPUT"]


async def test_cursor_of_another_order_or_altered_is_rejected(
    engine: AsyncEngine, populated: tuple[str, str]
) -> None:
    workspace, _ = populated
    page = await data_of(
        engine, "{ instances(first: 1) { pageInfo { endCursor } } }", workspace=workspace
    )
    cursor = page["instances"]["pageInfo"]["endCursor"]
    other_order = await execute(
        engine,
        "query($a: String) { instances(after: $a, orderBy: {field: START_TIME}) { nodes { id } } }",
        {"a": cursor},
        workspace=workspace,
    )
    assert error_codes(other_order) == ["BAD_USER_INPUT"]
    altered = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    result = await execute(engine, INSTANCES_PAGE, {"after": altered}, workspace=workspace)
    assert error_codes(result) == ["BAD_USER_INPUT"]
    # A cursor minted with another secret (as by someone guessing the format) is refused too.
    context = CursorContext("instance", workspace, "PLAN_TIME", "DESC")
    forged = CursorCodec("not-" + DEFAULT_CURSOR_SECRET).encode(context, Position(BASE_TIME, 1))
    result = await execute(engine, INSTANCES_PAGE, {"after": forged}, workspace=workspace)
    assert error_codes(result) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "filter_",
    [
        {"planTimeAfter": "2019-03-05T00:00:00Z", "planTimeBefore": "2019-03-04T00:00:00Z"},
        {"planTimeAfter": "2019-03-04T00:00:00Z", "planTimeBefore": "2019-03-04T00:00:00Z"},
    ],
)
async def test_inverted_time_range_is_bad_user_input(
    engine: AsyncEngine, populated: tuple[str, str], filter_: dict[str, str]
) -> None:
    workspace, _ = populated
    result = await execute(
        engine,
        "query($f: InstanceFilter) { instances(filter: $f) { nodes { id } } }",
        {"f": filter_},
        workspace=workspace,
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert "planTimeAfter" in result.errors[0].message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2019-03-04T03:53:00", "no UTC offset"),
        ("2019-03-04 03:53:00Z", "not an RFC 3339 date-time"),
        ("yesterday", "not an RFC 3339 date-time"),
        (12345, "must be an RFC 3339 string"),
    ],
)
async def test_bad_datetime_variables_are_bad_user_input(
    engine: AsyncEngine, populated: tuple[str, str], value: Any, fragment: str
) -> None:
    workspace, _ = populated
    result = await execute(
        engine,
        "query($t: DateTime) { instances(filter: {planTimeAfter: $t}) { nodes { id } } }",
        {"t": value},
        workspace=workspace,
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert fragment in result.errors[0].message


@pytest.mark.parametrize("value", [2**63, "12", 1.5, True])
async def test_bad_long_variables_are_bad_user_input(
    engine: AsyncEngine, populated: tuple[str, str], value: Any
) -> None:
    workspace, job_name = populated
    result = await execute(
        engine,
        "query($j: String!, $i: Long!) { instance(jobName: $j, instanceId: $i) { status } }",
        {"j": job_name, "i": value},
        workspace=workspace,
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]


async def test_unknown_job_and_instance_are_null_with_not_found(
    engine: AsyncEngine, populated: tuple[str, str]
) -> None:
    workspace, job_name = populated
    result = await execute(
        engine,
        'query($j: String!) { job(name: "no such job") { name } '
        "instance(jobName: $j, instanceId: 999999) { status } }",
        {"j": job_name},
        workspace=workspace,
    )
    assert result.data == {"job": None, "instance": None}
    assert sorted(error_codes(result)) == ["NOT_FOUND", "NOT_FOUND"]
    assert {tuple(e.path) for e in result.errors} == {("job",), ("instance",)}


async def test_unexpected_errors_are_masked_as_internal(
    engine: AsyncEngine, populated: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobql.storage import instances, json_sql

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret detail: SELECT * FROM instance /srv/jobql/x.py")

    # Both strategies: the loader-based resolvers and the compiled statement (the fast path's
    # prepared form too: an earlier test may have made the document known to it).
    monkeypatch.setattr(instances, "list_instances", broken)
    monkeypatch.setattr(json_sql, "read_json", broken)
    monkeypatch.setattr(json_sql, "read_prepared", broken)
    workspace, _ = populated
    result = await execute(engine, "{ instances { nodes { id } } }", workspace=workspace)
    assert error_codes(result) == ["INTERNAL"]
    assert result.errors[0].message == "Internal server error."
    assert "secret" not in str(result.errors[0].formatted)


async def test_parse_and_validation_errors_have_codes(engine: AsyncEngine) -> None:
    parse = await execute(engine, "{ instances { ")
    assert error_codes(parse) == ["GRAPHQL_PARSE_FAILED"]
    validation = await execute(engine, "{ instances { nodes { noSuchField } } }")
    assert error_codes(validation) == ["GRAPHQL_VALIDATION_FAILED"]
    literal = await execute(engine, "{ instances(first: 99999999999) { nodes { id } } }")
    assert error_codes(literal) == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize(
    "document",
    [
        '{ job(name: "a\\u0000b") { name } }',
        '{ instance(jobName: "a\\u0000b", instanceId: 1) { status } }',
        '{ instances(filter: {jobName: "a\\u0000"}) { nodes { id } } }',
        '{ jobs(filter: {nameStartsWith: "\\u0000"}) { nodes { id } } }',
        '{ jobs(filter: {parentName: "\\u0000"}) { nodes { id } } }',
    ],
)
async def test_nul_characters_in_text_arguments_are_bad_user_input(
    engine: AsyncEngine, document: str
) -> None:
    result = await execute(engine, document)
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert "NUL" in result.errors[0].message


@pytest.mark.parametrize(
    "document",
    [
        '{ instance(jobName: "a", instanceId: "1") { status } }',
        '{ instance(jobName: "a", instanceId: 99999999999999999999) { status } }',
        '{ instance(jobName: "a", instanceId: 1.0) { status } }',
        '{ instances(filter: {planTimeAfter: "nope"}) { nodes { id } } }',
        '{ instances(filter: {planTimeAfter: "0001-01-01T00:00:00+14:00"}) { nodes { id } } }',
        '{ instances(filter: {planTimeAfter: "20161231T235959Z"}) { nodes { id } } }',
        '{ instances(filter: {planTimeAfter: "2019-03-04T03:53:00.0005Z"}) { nodes { id } } }',
    ],
)
async def test_bad_scalar_literals_are_bad_user_input_not_masked(
    engine: AsyncEngine, document: str
) -> None:
    result = await execute(engine, document)
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result.errors[0].message != "Internal server error."


async def test_lone_surrogates_in_text_variables_are_bad_user_input(engine: AsyncEngine) -> None:
    result = await execute(engine, "query($n: String!) { job(name: $n) { name } }", {"n": "\ud800"})
    assert error_codes(result) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    ("document", "kind", "field", "direction", "value"),
    [
        (INSTANCES_PAGE, "instance", "PLAN_TIME", "DESC", "0001-01-01T00:00:00+14:00"),
        (INSTANCES_PAGE, "instance", "PLAN_TIME", "DESC", "2019-03-04 03:53:00"),
        (NESTED_NODES_PAGE, "node", "POSITION", "ASC", 2**62),
        (
            "query($after: String) { jobs(after: $after) { totalCount } }",
            "job",
            "NAME",
            "ASC",
            "a\x00b",
        ),
    ],
)
async def test_cursors_with_a_valid_check_but_impossible_values_are_bad_user_input(
    engine: AsyncEngine,
    populated: tuple[str, str],
    document: str,
    kind: str,
    field: str,
    direction: str,
    value: Any,
) -> None:
    """Someone who knows the secret (or its public default) still cannot reach the database."""
    workspace, _ = populated
    codec = CursorCodec(DEFAULT_CURSOR_SECRET)
    forged = codec.encode(CursorContext(kind, workspace, field, direction), Position(value, 1))
    if document is NESTED_NODES_PAGE:
        document = document.replace("(first: $first)", f'(first: $first, after: "{forged}")')
        variables: dict[str, Any] = {"first": 3}
    else:
        variables = {"after": forged}
    result = await execute(engine, document, variables, workspace=workspace)
    assert error_codes(result) == ["BAD_USER_INPUT"], result.errors


@pytest.mark.parametrize(
    "document",
    [
        'query($v: String = "x") { job(name: $v) { name } }',
        "query($v: InstanceStatus = FAIL) { instances(filter: {statuses: [$v]}) { totalCount } }",
    ],
)
async def test_a_null_sent_for_a_defaulted_variable_in_a_non_null_place_is_bad_user_input(
    engine: AsyncEngine, document: str
) -> None:
    """graphql-core refuses the argument while executing (the variable itself is valid: it is
    nullable with a default); it is the client's mistake, not INTERNAL."""
    result = await execute(engine, document, {"v": None})
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert "Expected variable '$v' provided to non-null type" in result.errors[0].message
