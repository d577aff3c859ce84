"""Deep selections: the compiled strategy answers what the reference strategy answers.

First line: a statement the database's own compiler would refuse (SQLite 3.40's parser stack) is
known when it is built, and that root field is served the reference way before any SQL runs.
Second line: a compiled statement the database fails anyway is answered again the reference way,
logged with the document's hash and counted, never INTERNAL.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import literal_column, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.schema import create_schema
from jobql.schema.execution import FALLBACKS
from jobql.schema.limits import Limits
from jobql.storage import json_sql
from jobql.storage.engine import is_statement_error
from jobql.storage.plan import ConnectionPlan
from tests.factories import (
    BASE_TIME,
    execute,
    make_instance,
    make_job,
    make_nodes,
    new_workspace,
    reference_schema,
)

# The issue's documents: INTERNAL on SQLite before, answered by the reference strategy.
ISSUE_DOCUMENTS = {
    "jobs-instances-nodes": """{ jobs(first:5){ totalCount pageInfo{hasNextPage} nodes{ id name type
      instances(first:3){ totalCount edges{ cursor node{ id status nodes(first:2){ nodes{ name
      instance{ instanceId jobName } } } } } } } } }""",
    "instances-job-instances": """{ instances(first:3){ nodes{ id job{ name instances(first:2){
      nodes{ id nodes(first:2){ edges{ node{ name instance{ id job{ name type } } } } } } } } } }
      }""",
    "aliased-nested-connections": """{ a: instances(first:2){ nodes{ id
      x: nodes(first:2){ nodes{ name instance{ job{ y: instances(first:1){ nodes{ id } }
      z: instances(last:1){ edges{ cursor node{ nodes(first:1){ totalCount } } } } } } } }
      w: job{ instances(first:2, orderBy:{field: START_TIME, direction: ASC}){ totalCount } } } }
    }""",
}

reporting = create_schema(report_strategy=True, limits=Limits(max_depth=45, max_cost=10**9))
deep_reference = create_schema(
    read_strategy="reference", limits=Limits(max_depth=45, max_cost=10**9)
)


@pytest.fixture
async def workspace(engine: AsyncEngine) -> str:
    space = await new_workspace(engine)
    parent = await make_job(engine, space, "rt_parent")
    for name in ("nightly", "hourly"):
        job = await make_job(engine, space, name, parent_id=parent.id)
        for n in range(4):
            instance = await make_instance(
                engine,
                job,
                vendor_instance_id=n + 1,
                plan_time=BASE_TIME + timedelta(hours=n),
                start_time=BASE_TIME + timedelta(hours=n, minutes=n),
            )
            await make_nodes(engine, instance, 3)
    return space.name


async def both(engine: AsyncEngine, document: str, workspace: str) -> tuple[Any, Any]:
    """The compiled (reporting) answer and the reference answer, neither with errors."""
    compiled = await execute(engine, document, workspace=workspace, using=reporting)
    expected = await execute(engine, document, workspace=workspace, using=deep_reference)
    assert compiled.errors is None, compiled.errors
    assert expected.errors is None, expected.errors
    assert compiled.data == expected.data
    return compiled, expected


@pytest.mark.parametrize("name", sorted(ISSUE_DOCUMENTS))
async def test_the_issues_deep_queries_answer_as_the_reference_does(
    engine: AsyncEngine, workspace: str, name: str
) -> None:
    before = sum(FALLBACKS.values())
    compiled, _ = await both(engine, ISSUE_DOCUMENTS[name], workspace)
    strategies = set(compiled.extensions["strategy"].values())
    if engine.dialect.name == "sqlite":
        # SQLite 3.40 refuses the deepest of these statements ("parser stack overflow"): known
        # at planning, answered the reference way.
        assert strategies <= {"compiled", "reference"}
    else:
        assert strategies == {"compiled"}
    assert sum(FALLBACKS.values()) == before  # nothing failed at the database


def job_chain(depth: int) -> str:
    """instances -> job -> instances -> job ... `depth` nested connections deep."""
    inner = "id"
    for _ in range(depth):
        inner = f"id job {{ name instances(first: 2) {{ totalCount nodes {{ {inner} }} }} }}"
    return f"{{ instances(first: 2) {{ nodes {{ {inner} }} }} }}"


async def test_the_budget_is_the_databases_own(engine: AsyncEngine, workspace: str) -> None:
    """Deeper and deeper: each depth is either compiled and run, or known too deep before any SQL
    runs; on SQLite 3.40 the switch comes within these depths, PostgreSQL carries them all."""
    before = sum(FALLBACKS.values())
    served = {}
    for depth in range(1, 7):
        compiled, _ = await both(engine, job_chain(depth), workspace)
        served[depth] = compiled.extensions["strategy"]["instances"]
    assert sum(FALLBACKS.values()) == before
    assert served[1] == "compiled"
    if engine.dialect.name == "sqlite":
        assert served[6] == "reference", served
        switch = min(d for d, s in served.items() if s == "reference")
        assert all(s == "reference" for d, s in served.items() if d >= switch), served
    else:
        assert set(served.values()) == {"compiled"}, served


async def test_postgresql_carries_a_selection_forty_levels_deep(
    engine: AsyncEngine, workspace: str
) -> None:
    inner = "name"
    for _ in range(37):
        inner = f"name parent {{ {inner} }}"
    document = (
        f'{{ job(name: "nightly") {{ instances(first: 1) {{ nodes {{ job {{ {inner} }} }} }} }} }}'
    )
    compiled, _ = await both(engine, document, workspace)
    expected = "compiled" if engine.dialect.name == "postgresql" else "reference"
    assert compiled.extensions["strategy"] == {"job": expected}


def failing(dialect: str) -> Any:
    """A statement the database itself fails when it runs (not when it is prepared)."""
    if dialect == "postgresql":
        return select(literal_column("'not json'::json::text"))
    return select(literal_column("json('not json')"))


async def test_a_statement_the_database_fails_is_answered_the_reference_way(
    engine: AsyncEngine,
    workspace: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    build = json_sql._build

    def broken(plan: Any, **options: Any) -> Any:
        if isinstance(plan, ConnectionPlan) and plan.entity == "instance":
            return failing(options["dialect"])
        return build(plan, **options)

    monkeypatch.setattr(json_sql, "_build", broken)
    document = """{ jobs(first: 5) { nodes { name } }
      instances(first: 3) { nodes { instanceId job { name } nodes(first: 1) { nodes { name } } } }
      again: jobs(first: 1) { totalCount } }"""
    before = FALLBACKS["instances"]
    with caplog.at_level(logging.WARNING, logger="jobql.compiled"):
        compiled = await execute(engine, document, workspace=workspace, using=reporting)
    expected = await execute(engine, document, workspace=workspace, using=reference_schema)
    assert compiled.errors is None, compiled.errors
    assert compiled.data == expected.data
    assert len(compiled.data["instances"]["nodes"]) == 3
    # The roots after the failed one still read (PostgreSQL: on a fresh transaction).
    assert compiled.extensions["strategy"] == {
        "jobs": "compiled",
        "instances": "reference",
        "again": "compiled",
    }
    assert FALLBACKS["instances"] == before + 1
    digest = hashlib.sha256(document.encode()).hexdigest()
    [line] = [r.getMessage() for r in caplog.records if r.name == "jobql.compiled"]
    assert digest in line
    assert "answered by the reference strategy" in line


def test_only_statement_errors_fall_back() -> None:
    syntax = asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax for json")
    cancelled = asyncpg.exceptions.QueryCanceledError("canceling statement due to user request")
    assert is_statement_error(DBAPIError("SELECT", {}, syntax))
    assert is_statement_error(syntax)  # from the driver pool, unwrapped
    assert not is_statement_error(DBAPIError("SELECT", {}, cancelled))
    assert not is_statement_error(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    assert not is_statement_error(PoolTimeout("pool exhausted"))
    assert not is_statement_error(TimeoutError())
    assert not is_statement_error(ValueError("not the database"))
    assert is_statement_error(DBAPIError("SELECT", {}, sqlite3.OperationalError("malformed JSON")))
    assert not is_statement_error(DBAPIError("SELECT", {}, sqlite3.OperationalError("interrupted")))
