"""Every reply names its request in `X-Request-Id`, also the answers given before routing (401
without a token, 413 for an oversized body, 503 from the admission limit): the source endpoints',
so that the vendors' SDKs put a request id in their exceptions, and GraphQL's, the fast lane's
and /graphql/stream's included (that the request's JSON log line names the same id is tested on
`jobql serve`, tests/ops/test_serve.py)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.app import create_app
from jobql.http.lane import FastLane
from jobql.settings import Settings
from tests.factories import first_refusal, make_instance, make_job, new_workspace, slot_held

TOKEN = "request-id-token"
UUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}")
DLF_V1 = "/v1/p/jobs/instances/detail?jobName=1"
SCHEDULERX = "/?Action=GetJobInstanceList&JobId=1&Namespace={}"
QUERY = "{ jobs { totalCount } }"
JSON_BODY = {"content-type": "application/json"}


@pytest.fixture
async def http(engine: AsyncEngine) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    space = await new_workspace(engine)
    job = await make_job(engine, space, "1")
    await make_instance(engine, job, vendor_instance_id=1)
    tokens = [
        {
            "name": "t",
            "sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
            "workspaces": ["*"],
            "scopes": ["read"],
        }
    ]
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        tokens=json.dumps(tokens),
        max_body_bytes=2048,
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as client:
        yield client, space.name
    await app.state.engine.dispose()


async def test_answers_before_routing_name_their_request(
    http: tuple[httpx.AsyncClient, str],
) -> None:
    client, workspace = http
    unauthenticated = await client.get(DLF_V1, headers={"workspace": workspace})
    assert unauthenticated.status_code == 401
    first = unauthenticated.headers["x-request-id"]
    assert UUID.fullmatch(first)
    too_large = await client.post(
        SCHEDULERX.format(workspace),
        content=b"JobId=1&" + b"x" * 4096,
        headers={
            "authorization": f"Bearer {TOKEN}",
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert too_large.status_code == 413
    second = too_large.headers["x-request-id"]
    assert UUID.fullmatch(second)
    assert second != first  # one id per request


async def test_a_routed_reply_has_one_id_in_header_and_body(
    http: tuple[httpx.AsyncClient, str],
) -> None:
    client, workspace = http
    reply = await client.get(
        SCHEDULERX.format(workspace), headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers.get_list("x-request-id") == [reply.json()["RequestId"]]


async def test_every_graphql_reply_names_its_request(
    http: tuple[httpx.AsyncClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lane: list[bool] = []  # whether the fast lane answered, per request it looked at
    answer = FastLane._answer

    async def watched(self: FastLane, *args: Any) -> Any:
        found = await answer(self, *args)
        lane.append(found is not None)
        return found

    monkeypatch.setattr(FastLane, "_answer", watched)
    client, workspace = http
    auth = {"authorization": f"Bearer {TOKEN}", "workspace": workspace}
    body = {"query": QUERY}
    stream = {**auth, "accept": "text/event-stream"}
    replies = [
        await client.post("/graphql", json=body, headers=auth),  # full stack: learns it
        await client.post("/graphql", json=body, headers=auth),  # the fast lane
        await client.get("/graphql", params=body, headers=auth),
        await client.post("/graphql", content=b"{not json", headers={**auth, **JSON_BODY}),
        await client.post("/graphql", json=body),  # no token
        await client.post("/graphql", content=b"x" * 4096, headers={**auth, **JSON_BODY}),
        await client.post("/graphql/stream", json=body, headers=stream),
        await client.post("/graphql/stream", json=body, headers=auth),  # Accept: not a stream
    ]
    assert [r.status_code for r in replies] == [200, 200, 200, 400, 401, 413, 200, 406]
    assert replies[1].json()["data"] == {"jobs": {"totalCount": 1}}
    assert lane == [False, True, False, False]
    ids = [r.headers.get_list("x-request-id") for r in replies]
    assert all(len(found) == 1 and UUID.fullmatch(found[0]) for found in ids), ids
    assert len({found[0] for found in ids}) == len(replies)  # one id per request


async def test_a_graphql_refusal_for_load_names_its_request(engine: AsyncEngine) -> None:
    """The admission limit's 503, answered before routing."""
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False), max_concurrency=1
    )
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
        ) as client:
            async with slot_held(client, JSON_BODY) as held:
                refused = await first_refusal(client, "/graphql", params={"query": QUERY})
            assert (await held).status_code == 200
    finally:
        await app.state.engine.dispose()
    assert refused is not None
    assert refused.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert UUID.fullmatch(refused.headers["x-request-id"])
    assert refused.headers["x-request-id"] != (await held).headers["x-request-id"]


async def test_a_request_id_the_client_sends_is_not_taken(
    http: tuple[httpx.AsyncClient, str],
) -> None:
    """/graphql does what the source endpoints do: every reply has an id of jobql's own."""
    client, workspace = http
    auth = {"authorization": f"Bearer {TOKEN}", "workspace": workspace}
    sent = {"x-request-id": "client-chosen-id"}
    replies = [
        await client.post("/graphql", json={"query": QUERY}, headers={**auth, **sent}),
        await client.get(SCHEDULERX.format(workspace), headers={**auth, **sent}),
    ]
    assert [r.status_code for r in replies] == [200, 200]
    for reply in replies:
        [found] = reply.headers.get_list("x-request-id")
        assert UUID.fullmatch(found)
