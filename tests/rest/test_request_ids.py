"""Every reply of a source endpoint names its request in `X-Request-Id`, also the answers given
before routing (401 without a token, 413 for an oversized body), so that the vendors' SDKs put a
request id in their exceptions; GraphQL's replies carry none (the hot path stays as it was)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.app import create_app
from jobql.settings import Settings
from tests.factories import make_instance, make_job, new_workspace

TOKEN = "request-id-token"
UUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}")
DLF_V1 = "/v1/p/jobs/instances/detail?jobName=1"
SCHEDULERX = "/?Action=GetJobInstanceList&JobId=1&Namespace={}"


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


async def test_graphql_replies_carry_no_request_id(http: tuple[httpx.AsyncClient, str]) -> None:
    client, workspace = http
    refused = await client.post("/graphql", json={"query": "{ jobs { totalCount } }"})
    answered = await client.post(
        "/graphql",
        json={"query": "{ jobs { totalCount } }"},
        headers={"authorization": f"Bearer {TOKEN}", "workspace": workspace},
    )
    assert (refused.status_code, answered.status_code) == (401, 200)
    assert "x-request-id" not in refused.headers
    assert "x-request-id" not in answered.headers
