"""API tokens: authentication, workspace coverage, scopes, and no cross-workspace rows."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.access import Access, AccessConfigError
from jobql.app import create_app
from jobql.settings import Settings
from tests.factories import make_instance, make_job, make_nodes, new_workspace

READER, WRITER = "reader-token", "writer-token"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
async def secured(engine: AsyncEngine) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    mine, theirs = await new_workspace(engine), await new_workspace(engine)
    job = await make_job(engine, mine, "job_batch")
    await make_instance(engine, job, vendor_instance_id=1)
    tokens = [
        {"name": "r", "sha256": digest(READER), "workspaces": [mine.name], "scopes": ["read"]},
        {"name": "w", "sha256": digest(WRITER), "workspaces": ["*"], "scopes": ["read", "write"]},
    ]
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False), tokens=json.dumps(tokens)
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        yield http, mine.name, theirs.name
    await app.state.engine.dispose()


def bearer(token: str, workspace: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "workspace": workspace}


QUERY = {"query": "{ instances { nodes { instanceId } } }"}
MUTATION = {"query": 'mutation { upsertJobs(input: [{name: "new_job"}]) { results { outcome } } }'}


async def test_tokens_are_required_and_checked(
    secured: tuple[httpx.AsyncClient, str, str],
) -> None:
    http, mine, _ = secured
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": f"Basic {READER}"}):
        refused = await http.post("/graphql", json=QUERY, headers={"workspace": mine, **headers})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    rest = await http.get("/v1/p/jobs/instances/detail", headers={"workspace": mine})
    assert rest.status_code == 401
    ok = await http.post("/graphql", json=QUERY, headers=bearer(READER, mine))
    assert ok.json()["data"] == {"instances": {"nodes": [{"instanceId": 1}]}}
    # Open without a token: health, static files and the GraphiQL page (it holds no data).
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/graphql", headers={"accept": "text/html"})).status_code == 200
    assert (await http.get("/static/graphiql/graphiql.min.css")).status_code == 200


async def test_workspaces_and_scopes(secured: tuple[httpx.AsyncClient, str, str]) -> None:
    http, mine, theirs = secured
    other = await http.post("/graphql", json=QUERY, headers=bearer(READER, theirs))
    assert other.status_code == 403
    assert other.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    rest = await http.get("/v1/p/jobs/instances/detail", headers=bearer(READER, theirs))
    assert rest.status_code == 403
    assert rest.json()["error_code"] == "DLF.0403"
    flink = await http.get(
        f"/api/v2/projects/{theirs}/jobs/job_batch/instances/1",
        headers={"authorization": f"Bearer {READER}"},
    )
    assert flink.status_code == 403
    read_only = await http.post("/graphql", json=MUTATION, headers=bearer(READER, mine))
    assert read_only.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert read_only.json()["data"] == {"upsertJobs": None}
    writer = await http.post("/graphql", json=MUTATION, headers=bearer(WRITER, theirs))
    assert writer.json()["data"] == {"upsertJobs": {"results": [{"outcome": "CREATED"}]}}


async def test_foreign_ids_answer_byte_for_byte_like_unknown_ones(
    secured: tuple[httpx.AsyncClient, str, str],
) -> None:
    http, mine, theirs = secured
    from jobql.storage.identifiers import encode_global_id

    data = await http.post(
        "/graphql",
        json={"query": '{ instance(jobName: "job_batch", instanceId: 1) { id } }'},
        headers=bearer(READER, mine),
    )
    foreign = data.json()["data"]["instance"]["id"]
    unknown = encode_global_id("Instance", 2**60)
    bodies = []
    for global_id in (foreign, unknown):
        response = await http.post(
            "/graphql",
            json={
                "query": "query($i: ID!) { node(id: $i) { id } nodes(ids: [$i]) { id } }",
                "variables": {"i": global_id},
            },
            headers=bearer(WRITER, theirs),
        )
        bodies.append(response.content)
    assert bodies[0] == bodies[1]


async def test_a_thousand_interleaved_requests_never_see_the_other_workspace(
    engine: AsyncEngine,
) -> None:
    """Catches a loader or cache shared between requests."""
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
    limit = asyncio.Semaphore(32)
    foreign_rows = 0

    async def ask(http: httpx.AsyncClient, n: int) -> None:
        nonlocal foreign_rows
        space = spaces[n % 2].name
        async with limit:
            response = await http.post("/graphql", json=query, headers={"workspace": space})
        text = response.text
        other = spaces[(n + 1) % 2].name
        assert response.status_code == 200
        foreign_rows += text.count(other)
        assert text.count(space) >= 6

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        await asyncio.gather(*(ask(http, n) for n in range(1000)))
    await app.state.engine.dispose()
    assert foreign_rows == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"a": 1}', "must be a JSON list"),
        ('[{"sha256": "ab", "workspaces": ["*"]}]', "64 hex digits"),
        (f'[{{"sha256": "{"a" * 64}", "workspaces": "*"}}]', "workspaces must be a list"),
        (f'[{{"sha256": "{"a" * 64}", "workspaces": ["*"], "scopes": ["admin"]}}]', "scopes"),
    ],
)
def test_bad_token_configuration_is_refused(text: str, message: str) -> None:
    with pytest.raises(AccessConfigError, match=message):
        Access.from_config(text, None)
