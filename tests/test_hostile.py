"""Hostile requests: every one gets its exact status and error code, and never a 500."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.app import create_app
from jobql.settings import Settings
from jobql.storage.models import Job
from tests.factories import make_instance, make_job, make_nodes, new_workspace

GQL = "application/graphql-response+json"
WORKSPACE = "hostile-suite"


def deep(levels: int) -> str:
    inner = "id"
    for _ in range(levels // 2):
        inner = f"job {{ instances(first: 1) {{ nodes {{ {inner} }} }} }}"
    return f"{{ instances(first: 1) {{ nodes {{ {inner} }} }} }}"


def aliases(count: int) -> str:
    return (
        "{ " + " ".join(f"a{n}: instances(first: 1) {{ totalCount }}" for n in range(count)) + " }"
    )


@dataclass
class Case:
    name: str
    status: int
    code: str | None
    json: Any = None
    content: bytes | None = None
    method: str = "POST"
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=lambda: {"accept": GQL, "workspace": WORKSPACE})


BIG = 10 * 1024 * 1024
CASES = [
    Case("depth 20", 400, "QUERY_TOO_COMPLEX", {"query": deep(20)}),
    Case(
        "circular fragments",
        400,
        "GRAPHQL_VALIDATION_FAILED",
        {
            "query": "{ jobs { nodes { ...A } } } fragment A on Job { parent { ...B } } "
            "fragment B on Job { parent { ...A } }"
        },
    ),
    Case("101 aliases", 400, "QUERY_TOO_COMPLEX", {"query": aliases(101)}),
    Case(
        "aliases inside spread fragments",
        400,
        "QUERY_TOO_COMPLEX",
        {
            "query": "{ ...F } fragment F on Query { "
            + " ".join(f"a{n}: jobs {{ totalCount }}" for n in range(101))
            + " }"
        },
    ),
    Case("10,000 tokens", 400, "QUERY_TOO_COMPLEX", {"query": "{ " + "__typename " * 10_000 + "}"}),
    Case(
        "directive spam",
        400,
        "GRAPHQL_VALIDATION_FAILED",
        {"query": "{ __typename " + "@include(if: true) " * 300 + "}"},
    ),
    Case("first 0", 200, "BAD_USER_INPUT", {"query": "{ instances(first: 0) { totalCount } }"}),
    Case("first -1", 200, "BAD_USER_INPUT", {"query": "{ instances(first: -1) { totalCount } }"}),
    Case(
        "first 1001", 200, "BAD_USER_INPUT", {"query": "{ instances(first: 1001) { totalCount } }"}
    ),
    Case(
        "first huge",
        400,
        "QUERY_TOO_COMPLEX",
        {"query": "{ instances(first: 2000000000) { nodes { id } } }"},
    ),
    Case(
        "first beyond Int",
        400,
        "GRAPHQL_VALIDATION_FAILED",
        {"query": "{ instances(first: 99999999999) { totalCount } }"},
    ),
    Case(
        "nested first 1001",
        200,
        "BAD_USER_INPUT",
        {"query": "{ jobs(first: 1) { nodes { instances(first: 1001) { totalCount } } } } "},
    ),
    Case(
        "cost bomb 1000 x 1000 x 1000",
        400,
        "QUERY_TOO_COMPLEX",
        {
            "query": "{ jobs(first: 1000) { nodes { instances(first: 1000) { nodes { "
            "nodes(first: 1000) { nodes { name } } } } } } }"
        },
    ),
    Case(
        "cost bomb through variables",
        400,
        "QUERY_TOO_COMPLEX",
        {
            "query": "query($n: Int) { jobs(first: $n) { nodes { instances(first: $n) { nodes "
            "{ id } } } } }",
            "variables": {"n": 1000},
        },
    ),
    Case(
        "garbage cursor",
        200,
        "BAD_USER_INPUT",
        {"query": '{ instances(after: "%%%") { totalCount } }'},
    ),
    Case(
        "cursor of base64 garbage",
        200,
        "BAD_USER_INPUT",
        {
            "query": '{ instances(after: "' + base64.b64encode(b"x" * 40).decode() + '") '
            "{ totalCount } }"
        },
    ),
    Case("garbage global id", 200, "BAD_USER_INPUT", {"query": '{ node(id: "!!") { id } }'}),
    Case(
        "wrong variable type",
        400,
        "BAD_USER_INPUT",
        {
            "query": "query($n: Int) { instances(first: $n) { totalCount } }",
            "variables": {"n": "ten"},
        },
    ),
    Case(
        "variables not an object",
        400,
        "BAD_REQUEST",
        {"query": "{ __typename }", "variables": [1, 2]},
    ),
    Case(
        "non-JSON body",
        400,
        "BAD_REQUEST",
        content=b"{query: nope",
        headers={"accept": GQL, "content-type": "application/json"},
    ),
    Case(
        "empty body",
        400,
        "BAD_REQUEST",
        content=b"",
        headers={"accept": GQL, "content-type": "application/json"},
    ),
    Case(
        "JSON that is not an object",
        400,
        "BAD_REQUEST",
        content=b"[[[]]]",
        headers={"accept": GQL, "content-type": "application/json"},
    ),
    Case(
        "URL-encoded POST",
        400,
        "BAD_REQUEST",
        content=b"query=%7B__typename%7D",
        headers={"accept": GQL, "content-type": "application/x-www-form-urlencoded"},
    ),
    Case(
        "mutation over GET",
        405,
        "BAD_REQUEST",
        method="GET",
        params={"query": "mutation M { upsertJobs(input: []) { results { index } } }"},
    ),
    Case(
        "10 MB body",
        413,
        "PAYLOAD_TOO_LARGE",
        {"query": "{ __typename }", "variables": {"pad": "x" * BIG}},
    ),
    Case("batch of 1,000 operations", 400, "BAD_REQUEST", [{"query": "{ __typename }"}] * 1000),
    Case("no query", 400, "BAD_REQUEST", {"variables": {}}),
    Case(
        "10 KB workspace header",
        200,
        None,
        {"query": "{ jobs { totalCount } }"},
        headers={"accept": GQL, "workspace": "w" * 10_240},
    ),
    Case(
        "injection-style workspace header",
        200,
        None,
        {"query": "{ jobs { totalCount } }"},
        headers={"accept": GQL, "workspace": "default' OR '1'='1"},
    ),
    Case(
        "unknown operationName",
        400,
        "BAD_REQUEST",
        {"query": "query A { __typename }", "operationName": "B"},
    ),
    Case(
        "two operations without a name",
        400,
        "GRAPHQL_VALIDATION_FAILED",
        {"query": "query A { __typename } query B { __typename }"},
    ),
    Case("NUL in a name", 200, "BAD_USER_INPUT", {"query": '{ job(name: "a\\u0000") { id } }'}),
    Case(
        "Long overflow",
        400,
        "BAD_USER_INPUT",
        {
            "query": 'query($i: Long!) { instance(jobName: "a", instanceId: $i) { id } }',
            "variables": {"i": 2**64},
        },
    ),
    Case(
        "JSON nested 100,000 deep",
        400,
        "BAD_REQUEST",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"accept": GQL, "workspace": WORKSPACE, "content-type": "application/json"},
    ),
    Case(
        "extensions nested 5,000 deep over GET",
        400,
        "BAD_REQUEST",
        method="GET",
        params={"query": "{ __typename }", "extensions": "[" * 5_000 + "]" * 5_000},
    ),
    Case(
        "variables nested 3,000 deep over GET",
        400,
        "BAD_REQUEST",
        method="GET",
        params={"query": "{ __typename }", "variables": '{"a":' * 3_000 + "1" + "}" * 3_000},
    ),
    Case(
        "operationName an object",
        400,
        "BAD_REQUEST",
        {"query": "{ __typename }", "operationName": {}},
    ),
    Case(
        "operationName a list",
        400,
        "BAD_REQUEST",
        {"query": "{ __typename }", "operationName": []},
    ),
    Case(
        "unacceptable Accept",
        406,
        "BAD_REQUEST",
        {"query": "{ __typename }"},
        headers={"accept": "text/csv"},
    ),
]


@pytest.fixture(params=[True, False], ids=["fast-path", "full-pipeline"])
async def hostile_client(
    engine: AsyncEngine, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over a workspace with a job, a run and a node (so nested fields resolve), with
    the whole-operation fast path on and off (each case is sent twice: the second request of a
    document is the one the fast path may answer)."""
    workspace = await new_workspace(engine, WORKSPACE)
    async with engine.connect() as connection:
        has_data = await connection.scalar(
            select(func.count()).select_from(Job).where(Job.workspace_id == workspace.id)
        )
    if not has_data:
        job = await make_job(engine, workspace)
        await make_nodes(engine, await make_instance(engine, job), 1)
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False), fast_path=request.param
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        yield http
    await app.state.engine.dispose()


def test_there_are_at_least_30_hostile_cases() -> None:
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_request(hostile_client: httpx.AsyncClient, case: Case) -> None:
    first = await _send(hostile_client, case)
    second = await _send(hostile_client, case)
    assert (second.status_code, second.content) == (first.status_code, first.content)
    _check(case, second)


async def _send(hostile_client: httpx.AsyncClient, case: Case) -> httpx.Response:
    if case.method == "GET":
        response = await hostile_client.get(
            "/graphql?" + urlencode(case.params or {}), headers=case.headers
        )
    elif case.content is not None:
        response = await hostile_client.post("/graphql", content=case.content, headers=case.headers)
    else:
        response = await hostile_client.post(
            "/graphql",
            content=json.dumps(case.json).encode(),
            headers={"content-type": "application/json", **case.headers},
        )
    return response


def _check(case: Case, response: httpx.Response) -> None:
    assert response.status_code == case.status, response.text[:500]
    payload = response.json()
    codes = [error["extensions"]["code"] for error in payload.get("errors", [])]
    if case.code is None:
        assert codes == []
    else:
        assert codes, payload
        assert set(codes) == {case.code}, payload
    assert "Traceback" not in response.text
    assert "INTERNAL" not in codes


async def test_cost_is_reported_and_refusals_say_the_estimate(
    hostile_client: httpx.AsyncClient,
) -> None:
    ok = await hostile_client.post(
        "/graphql",
        json={
            "query": "{ instances(first: 100) { nodes { nodes(first: 20) { nodes { name } } } } }"
        },
    )
    # 1 connection + 100 instances + 100 node connections + 100 x 20 nodes
    assert ok.json()["extensions"] == {"cost": 2201}
    refused = await hostile_client.post(
        "/graphql",
        json={
            "query": "{ jobs(first: 1000) { nodes { instances(first: 1000) { nodes { id } } } } }"
        },
        headers={"accept": GQL},
    )
    # 1 + 1000 jobs + 1000 connections + 1000 x 1000 instances
    error = refused.json()["errors"][0]
    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "cost": 1002001, "maxCost": 50000}
    assert "1002001" in error["message"]


async def test_a_slow_request_is_cancelled_and_its_connection_returned(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobql.storage import instances, json_sql

    async def slow(*_args: Any, **_kwargs: Any) -> Any:
        await asyncio.sleep(30)

    monkeypatch.setattr(instances, "count_instances", slow)
    real_read = json_sql.read_json

    async def slow_second(reader: Any, plan: Any, **kwargs: Any) -> Any:
        if getattr(plan, "entity", None) == "instance":  # the second root field
            await asyncio.sleep(30)
        return await real_read(reader, plan, **kwargs)

    monkeypatch.setattr(json_sql, "read_json", slow_second)
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False), request_timeout=0.3
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        # The context has checked out a connection (jobs) before the slow call.
        response = await http.post(
            "/graphql", json={"query": "{ jobs { totalCount } instances { totalCount } }"}
        )
    assert response.status_code == 504
    assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
    assert app.state.engine.pool.checkedout() == 0
    await app.state.engine.dispose()


async def test_a_private_schema_hides_introspection_suggestions_and_graphiql(
    engine: AsyncEngine,
) -> None:
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False), public_schema=False
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        introspection = await http.post(
            "/graphql", json={"query": "{ __schema { types { name } } }"}
        )
        typo = await http.post("/graphql", json={"query": "{ instancez { totalCount } }"})
        page = await http.get("/graphql", headers={"accept": "text/html"})
        works = await http.post("/graphql", json={"query": "{ jobs { totalCount } }"})
    await app.state.engine.dispose()
    assert "introspection" in introspection.json()["errors"][0]["message"].lower()
    assert "Did you mean" not in typo.text
    assert page.status_code == 404
    assert "data" in works.json()


async def test_a_timed_out_request_cancels_its_statement_on_postgresql(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite statements run in-process; the connection test above covers it")
    from sqlalchemy import text

    from jobql.storage import instances, json_sql

    async def sleeping(reader: Any, *_args: Any, **_kwargs: Any) -> Any:
        await reader.execute(text("SELECT pg_sleep(20) AS jobql_timeout_probe"))

    monkeypatch.setattr(instances, "count_instances", sleeping)
    monkeypatch.setattr(json_sql, "read_json", sleeping)
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False), request_timeout=0.5
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        response = await http.post("/graphql", json={"query": "{ instances { totalCount } }"})
    assert response.status_code == 504
    probe = text(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        "AND query LIKE '%jobql_timeout_probe%' AND pid <> pg_backend_pid()"
    )
    still_running = 1
    for _ in range(20):  # the cancel request reaches the server asynchronously
        async with engine.connect() as connection:
            still_running = int(await connection.scalar(probe))
        if not still_running:
            break
        await asyncio.sleep(0.1)
    await app.state.engine.dispose()
    assert still_running == 0
