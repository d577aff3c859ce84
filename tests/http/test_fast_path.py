"""The whole-operation fast path: same answers as the full pipeline, and the same rules.

A document is answered fast only after one clean run through the full pipeline; later requests of
it must still get every variable error, cost refusal, lookup error and workspace rule exactly as
the full pipeline gives them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import jobql.schema
from jobql.app import create_app
from jobql.settings import Settings
from tests.factories import make_instance, make_job, make_nodes, new_workspace

LIST = """
query List($first: Int, $after: String, $statuses: [InstanceStatus!]) {
  instances(first: $first, after: $after, filter: {statuses: $statuses}) {
    edges { cursor node { id instanceId status job { name } nodes(first: 2) { nodes { name } } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
DETAIL = """
query Detail($job: String!, $id: Long!) {
  instance(jobName: $job, instanceId: $id) { id instanceId status }
  jobs(first: 1) { totalCount nodes { name } }
}
"""


class FastCounter:
    def __init__(self) -> None:
        self.served = 0


@pytest.fixture
def fast_counter(monkeypatch: pytest.MonkeyPatch) -> FastCounter:
    """Counts the requests the fast path answered (a None from it means the full pipeline)."""
    counter = FastCounter()
    real = jobql.schema.run_fast

    async def counting(*args: Any, **kwargs: Any) -> Any:
        result = await real(*args, **kwargs)
        counter.served += result is not None
        return result

    monkeypatch.setattr(jobql.schema, "run_fast", counting)
    return counter


@pytest.fixture
async def clients(engine: AsyncEngine) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """The same database through an app with the fast path and one without."""
    url = engine.url.render_as_string(hide_password=False)
    async with _side_by_side(
        *(Settings(database_url=url, fast_path=on) for on in (True, False))
    ) as both:
        yield both


@contextlib.asynccontextmanager
async def _side_by_side(*settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """A client per app, one app per settings, all on the test's database."""
    apps = [create_app(each) for each in settings]
    async with contextlib.AsyncExitStack() as stack:
        yield tuple(
            [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
                    )
                )
                for app in apps
            ]
        )
    for app in apps:
        await app.state.engine.dispose()


@pytest.fixture
async def workspace(engine: AsyncEngine) -> str:
    space = await new_workspace(engine)
    job = await make_job(engine, space, "nightly")
    for n in range(4):
        await make_nodes(engine, await make_instance(engine, job, vendor_instance_id=n + 1), 2)
    return space.name


async def _ask(
    http: httpx.AsyncClient, workspace: str, document: str, variables: Any
) -> tuple[int, Any]:
    response = await http.post(
        "/graphql",
        json={"query": document, "variables": variables},
        headers={"workspace": workspace},
    )
    return response.status_code, response.json()


GOOD = [(LIST, {"first": 2}), (DETAIL, {"job": "nightly", "id": 1})]
UNUSUAL = [
    (LIST, {"first": 0}),  # BAD_USER_INPUT from the resolvers
    (LIST, {"first": -1}),
    (LIST, {"first": 1001}),
    (LIST, {"first": 2, "after": "not-a-cursor"}),
    (LIST, {"first": "two"}),  # variable of the wrong type
    (LIST, {"first": 2**40}),  # not an Int
    (LIST, {"first": 2, "statuses": ["NOPE"]}),
    (LIST, {"first": 2, "statuses": []}),  # matches nothing: a valid, empty answer
    (LIST, [1, 2]),  # variables not an object
    (DETAIL, {"job": "nightly", "id": 999}),  # NOT_FOUND
    (DETAIL, {"job": "nightly"}),  # a required variable missing
    (DETAIL, {"job": "night\u0000ly", "id": 1}),  # NUL
    (DETAIL, {"job": "nightly", "id": 2**63}),  # Long overflow
]


async def test_the_fast_path_answers_like_the_full_pipeline(
    clients: tuple[httpx.AsyncClient, ...], workspace: str, fast_counter: FastCounter
) -> None:
    fast, full = clients
    for document, variables in GOOD:  # first requests: the full pipeline; then eligible
        assert await _ask(fast, workspace, document, variables) == await _ask(
            full, workspace, document, variables
        )
    assert fast_counter.served == 0
    for document, variables in GOOD:
        answer = await _ask(fast, workspace, document, variables)
        assert answer == await _ask(full, workspace, document, variables)
        assert answer[0] == 200
        assert "errors" not in answer[1]
    assert fast_counter.served == len(GOOD)
    # Paging on through the fast path: cursors it made work, and the pages agree.
    _, page = await _ask(fast, workspace, LIST, {"first": 2})
    cursor = page["data"]["instances"]["pageInfo"]["endCursor"]
    assert await _ask(fast, workspace, LIST, {"first": 2, "after": cursor}) == await _ask(
        full, workspace, LIST, {"first": 2, "after": cursor}
    )


@pytest.mark.parametrize(("document", "variables"), UNUSUAL)
async def test_unusual_requests_of_a_known_document_get_the_full_pipelines_answer(
    clients: tuple[httpx.AsyncClient, ...],
    workspace: str,
    document: str,
    variables: Any,
    fast_counter: FastCounter,
) -> None:
    fast, full = clients
    good = next(v for d, v in GOOD if d is document)
    await _ask(fast, workspace, document, good)  # now eligible for the fast path
    await _ask(fast, workspace, document, good)
    assert fast_counter.served == 1
    assert await _ask(fast, workspace, document, variables) == await _ask(
        full, workspace, document, variables
    )


async def test_cost_is_checked_on_the_fast_path(
    engine: AsyncEngine, workspace: str, fast_counter: FastCounter
) -> None:
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False), max_cost=60)
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        small = await _ask(http, workspace, LIST, {"first": 2})  # 2 + 2 jobs + 2x2 nodes ...
        again = await _ask(http, workspace, LIST, {"first": 2})
        large = await _ask(http, workspace, LIST, {"first": 50})
    await app.state.engine.dispose()
    assert small == again
    assert again[1]["extensions"]["cost"] == small[1]["extensions"]["cost"]
    assert fast_counter.served == 1
    assert large[1]["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_a_thousand_interleaved_fast_requests_never_see_the_other_workspace(
    engine: AsyncEngine, fast_counter: FastCounter
) -> None:
    spaces = [await new_workspace(engine), await new_workspace(engine)]
    for space in spaces:
        for n in range(3):
            job = await make_job(engine, space, f"{space.name}_job{n}")
            await make_nodes(engine, await make_instance(engine, job), 2)
    app = create_app(Settings(database_url=engine.url.render_as_string(hide_password=False)))
    query = {
        "query": "{ instances { nodes { jobName job { workspace name } "
        "nodes { nodes { instance { jobName } } } } } jobs { nodes { name } } }"
    }
    limit = asyncio.Semaphore(8)
    foreign_rows = 0

    async def ask(http: httpx.AsyncClient, n: int) -> None:
        nonlocal foreign_rows
        space = spaces[n % 2].name
        async with limit:
            response = await http.post("/graphql", json=query, headers={"workspace": space})
        assert response.status_code == 200, response.text
        foreign_rows += response.text.count(spaces[(n + 1) % 2].name)
        assert response.text.count(space) >= 6

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        await ask(http, 0)  # the first request of the document: full pipeline
        await asyncio.gather(*(ask(http, n) for n in range(1, 1000)))
    await app.state.engine.dispose()
    assert foreign_rows == 0
    assert fast_counter.served == 999


async def test_one_compiled_root_field_is_one_statement_without_a_transaction(
    engine: AsyncEngine, workspace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lean path: no BEGIN or ROLLBACK around the one statement of a one-field query.

    Counted at the driver: SQLite's cursor (BEGIN is a statement there), asyncpg's simple
    `execute`, which carries BEGIN/ROLLBACK for SQLAlchemy's transactions on PostgreSQL, and
    asyncpg's `fetch`, which the fast path's single statement goes through."""
    import asyncpg
    from sqlalchemy import event

    sent: list[str] = []
    real_execute = asyncpg.connection.Connection.execute

    async def recording(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return await real_execute(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", recording)
    real_fetch = asyncpg.connection.Connection.fetch

    async def recording_fetch(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)  # the compiled statement, sent straight to the driver
        return await real_fetch(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "fetch", recording_fetch)
    app = create_app(Settings(database_url=engine.url.render_as_string(hide_password=False)))

    def cursor(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", cursor)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        for first in (1, 2):  # the second request of the document takes the fast path
            sent.clear()
            status, body = await _ask(http, workspace, LIST, {"first": first * 50})
            assert status == 200
            assert "errors" not in body
        await app.state.engine.dispose()
    words = [statement.split()[0].upper().rstrip(";") for statement in sent if statement.strip()]
    assert not {"BEGIN", "ROLLBACK", "COMMIT"} & set(words), sent
    assert sum("json" in statement for statement in sent) == 1, sent


@pytest.fixture
async def lanes(engine: AsyncEngine) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """One database, one token, through an app with the fast lane and one without it."""
    url = engine.url.render_as_string(hide_password=False)
    import hashlib
    import json

    digest = hashlib.sha256(b"s3cret").hexdigest()
    tokens = json.dumps([{"sha256": digest, "workspaces": ["*"], "scopes": ["read"]}])
    async with _side_by_side(
        *(
            Settings(database_url=url, fast_lane=on, tokens=tokens, max_body_bytes=2048)
            for on in (True, False)
        )
    ) as both:
        yield both


def _variants(workspace: str) -> list[tuple[dict[str, str], bytes]]:
    """Requests of a known document that the lane must answer exactly as the full stack does
    (most of them by handing them on to it)."""
    import json

    good = {"query": LIST, "variables": {"first": 2}}
    auth = {"authorization": "Bearer s3cret", "workspace": workspace}
    json_type = {"content-type": "application/json"}
    body = json.dumps(good).encode()
    return [
        ({**auth, **json_type}, body),
        ({**auth, **json_type, "accept": "application/graphql-response+json"}, body),
        ({**auth, **json_type, "accept": "text/plain"}, body),  # 406
        ({**json_type, "workspace": workspace}, body),  # no token: 401
        ({**json_type, "authorization": "Bearer wrong", "workspace": workspace}, body),
        ({**auth, "content-type": "text/plain"}, body),
        ({**auth, **json_type}, b'{"query": '),  # not JSON
        ({**auth, **json_type}, json.dumps([good]).encode()),  # a batch
        ({**auth, **json_type}, json.dumps({**good, "extra": 1}).encode()),
        ({**auth, **json_type}, json.dumps({**good, "operationName": 5}).encode()),
        ({**auth, **json_type}, json.dumps({**good, "variables": {"first": "x"}}).encode()),
        ({**auth, **json_type}, json.dumps({**good, "variables": {"first": 0}}).encode()),
        ({**auth, **json_type}, json.dumps({**good, "variables": [1]}).encode()),
        ({**auth, **json_type}, json.dumps({**good, "pad": "x" * 4096}).encode()),  # 413
        (
            {**auth, **json_type},
            json.dumps({**good, "extensions": {"persistedQuery": {"version": 1}}}).encode(),
        ),
    ]


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    """The reply's headers in order, its request id (one per request) as a placeholder."""
    found = response.headers.multi_items()
    assert [name for name, _ in found].count("x-request-id") == 1, found
    return [(name, "<id>" if name == "x-request-id" else value) for name, value in found]


async def test_the_fast_lane_answers_byte_for_byte_like_the_full_stack(
    lanes: tuple[httpx.AsyncClient, ...],
    workspace: str,
    fast_counter: FastCounter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jobql.http import lane as endpoint_module

    answered = 0
    real = endpoint_module.FastLane._answer

    async def counting(self: Any, *args: Any) -> Any:
        nonlocal answered
        result = await real(self, *args)
        answered += result is not None
        return result

    monkeypatch.setattr(endpoint_module.FastLane, "_answer", counting)
    lane, full = lanes
    headers, body = _variants(workspace)[0]
    for http in (lane, full):  # the first request of the document: the full pipeline
        assert (await http.post("/graphql", content=body, headers=headers)).status_code == 200
    assert answered == 0
    statuses = set()
    for headers, body in _variants(workspace):
        one = await lane.post("/graphql", content=body, headers=headers)
        other = await full.post("/graphql", content=body, headers=headers)
        assert (one.status_code, _headers(one), one.content) == (
            other.status_code,
            _headers(other),
            other.content,
        ), headers
        statuses.add(one.status_code)
    assert answered == 2  # the two good requests; every other one went on to the full stack
    assert statuses >= {200, 400, 401, 406, 413}


async def test_the_fast_lane_keeps_the_admission_limit(engine: AsyncEngine, workspace: str) -> None:
    """Requests the lane answers count against JOBQL_MAX_CONCURRENCY like any other."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, max_concurrency=1))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        await _ask(http, workspace, LIST, {"first": 2})  # now known to the fast path
        answers = await asyncio.gather(
            *(_ask(http, workspace, LIST, {"first": 2}) for _ in range(20))
        )
    await app.state.engine.dispose()
    statuses = sorted(status for status, _ in answers)
    assert 200 in statuses
    assert 503 in statuses, statuses


async def test_a_failed_fast_read_leaves_the_full_pipeline_a_usable_connection(
    engine: AsyncEngine, workspace: str, monkeypatch: pytest.MonkeyPatch, fast_counter: FastCounter
) -> None:
    """Two root fields read in one snapshot transaction; a statement failing there (PostgreSQL
    then refuses every later statement of that transaction) must not fail the full pipeline's
    answer that follows."""
    from sqlalchemy import text

    from jobql.storage import json_sql

    app = create_app(Settings(database_url=engine.url.render_as_string(hide_password=False)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        variables = {"job": "nightly", "id": 1}
        first = await _ask(http, workspace, DETAIL, variables)  # learned by the fast path

        async def failing(reader: Any, *_args: Any, **_kwargs: Any) -> Any:
            await reader.execute(text("SELECT CAST('x' AS integer)"))  # fails on PostgreSQL
            raise RuntimeError("the fast read failed")  # SQLite converts instead

        monkeypatch.setattr(json_sql, "read_prepared", failing)
        second = await _ask(http, workspace, DETAIL, variables)
    await app.state.engine.dispose()
    assert first[0] == 200
    assert "errors" not in first[1]
    assert second == first
    assert fast_counter.served == 0


async def test_the_fast_lane_can_be_switched_off(engine: AsyncEngine, workspace: str) -> None:
    from jobql.http.lane import FastLane

    assert Settings.from_env({}).fast_lane is True
    settings = Settings.from_env(
        {
            "JOBQL_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "JOBQL_FAST_LANE": "false",
        }
    )
    app = create_app(settings)
    assert not any(m.cls is FastLane for m in app.user_middleware)
    on = create_app(Settings(database_url=settings.database_url))
    assert any(m.cls is FastLane for m in on.user_middleware)
    for each in (app, on):
        await each.state.engine.dispose()


async def test_prepared_answers_are_bounded_and_reused(
    engine: AsyncEngine, workspace: str, fast_counter: FastCounter
) -> None:
    """Repeats of a document with the same variables reuse one prepared entry; new variables
    add entries up to the cache's size across all documents, the oldest going first."""
    from starlette.routing import Route

    app = create_app(Settings(database_url=engine.url.render_as_string(hide_password=False)))
    endpoint = next(r.endpoint for r in app.routes if isinstance(r, Route) and r.path == "/graphql")
    cache = endpoint.schema._prepared
    cache.size = 3
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        first = await _ask(http, workspace, LIST, {"first": 1})  # the full pipeline learns it
        for _ in range(3):
            assert await _ask(http, workspace, LIST, {"first": 1}) == first
        assert len(cache.entries) == 1
        answers = {n: await _ask(http, workspace, LIST, {"first": n}) for n in range(2, 7)}
    await app.state.engine.dispose()
    assert fast_counter.served == 3 + 5
    assert len(cache.entries) == 3
    assert all(
        len(answer[1]["data"]["instances"]["edges"]) == min(n, 4) for n, answer in answers.items()
    )
    kept = [key[-1] for key in cache.entries]
    assert kept == [b'{"first":4}', b'{"first":5}', b'{"first":6}']
    for entry in cache.entries.values():
        ((_, read, _),) = entry.reads
        # PostgreSQL keeps the driver's text and values only; SQLite the statement.
        assert (read.driver is not None) == (engine.dialect.name == "postgresql")
        assert (read.statement is None) == (engine.dialect.name == "postgresql")


async def test_the_fast_lane_cancels_a_request_at_the_timeout(
    engine: AsyncEngine, workspace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JOBQL_REQUEST_TIMEOUT holds on the lane: 504 TIMEOUT, as from the endpoint."""
    url = engine.url.render_as_string(hide_password=False)
    # Long enough for the first request on a loaded machine; the slow one sleeps far longer.
    app = create_app(Settings(database_url=url, request_timeout=1.5))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        assert (await _ask(http, workspace, LIST, {"first": 2}))[0] == 200  # learned
        real = jobql.schema.run_fast

        async def slow(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(5)
            return await real(*args, **kwargs)

        monkeypatch.setattr(jobql.schema, "run_fast", slow)
        status, body = await _ask(http, workspace, LIST, {"first": 2})
    await app.state.engine.dispose()
    assert status == 504
    assert body == {
        "errors": [
            {
                "message": "The request took longer than 1.5 s and was cancelled.",
                "extensions": {"code": "TIMEOUT"},
            }
        ]
    }
