"""No input gets a 500 or a traceback: odd values get the source's own 4xx; an unexpected
failure (the database gone) gets a masked 500 in the source's own error form. Every reply
carries a fresh `X-Request-Id`, and error replies are logged with it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from jobql.rest import rest_routes
from jobql.settings import DEFAULT_CURSOR_SECRET, Settings
from jobql.storage.engine import create_engine
from jobql.storage.identifiers import CursorCodec
from tests.rest.conftest import BASE_URL
from tests.rest.support import without_request_id

ODD = [
    "%00",
    "%FF%FE",
    "%F0%9F%92%A5",
    "x" * 5000,
    "1" * 40,
    "-0",
    "0x10",
    "%20",
    "null",
    "true",
    "[1]",
    "1;DROP TABLE instance",
    "'",
]
ENDPOINTS = [
    "/v1/p/jobs/instances/detail?jobName={v}&limit={v}",
    "/v1/p/jobs/instances/detail?minPlanTime={v}&maxPlanTime={v}&offset={v}&status={v}",
    "/v1/p/jobs/{v}/instances/{v}",
    "/v1/{v}/jobs/j/instances/1",
    "/v2/p/factory/jobs/{v}/instances/detail?limit={v}&instance_type={v}",
    "/v2/p/factory/jobs/j/instances/detail?force_success={v}&min_plan_time={v}",
    "/?Action={v}&JobId={v}&Namespace={v}",
    "/?Action=GetJobInstanceList&JobId=1&Namespace={v}&Format={v}",
    "/api/v2/projects/{v}/jobs/{v}/instances/{v}",
]


@pytest.mark.parametrize("template", ENDPOINTS)
async def test_odd_values_never_fail_the_server(client: httpx.AsyncClient, template: str) -> None:
    for value in ODD:
        response = await client.get(template.format(v=value), headers={"workspace": "w%00"})
        assert 400 <= response.status_code < 500 or response.status_code == 200, (
            value,
            response.text,
        )
        assert "Traceback" not in response.text


@pytest.fixture
async def broken(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The endpoints on a database that cannot be opened."""
    url = f"sqlite+aiosqlite:///{tmp_path}/missing/dir/jobql.db"
    engine = create_engine(url)
    routes = rest_routes(engine, CursorCodec(DEFAULT_CURSOR_SECRET), Settings(database_url=url))
    transport = httpx.ASGITransport(app=Starlette(routes=routes))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http
    await engine.dispose()


async def test_unexpected_failures_are_masked_in_each_sources_form(
    broken: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    dlf = {"error_code": "DLF.0500", "error_msg": "Internal server error."}
    for path in [
        "/v1/p/jobs/instances/detail",
        "/v1/p/jobs/j/instances/1",
        "/v2/p/factory/jobs/j/instances/detail",
    ]:
        response = await broken.get(path)
        assert (response.status_code, response.json()) == (500, dlf)
    scheduler = await broken.get("/?Action=GetJobInstanceList&JobId=1")
    assert scheduler.status_code == 500
    assert without_request_id(scheduler.json()) == {
        "Code": 500,
        "Message": "Internal error.",
        "Success": False,
    }
    flink = await broken.get("/api/v2/projects/p/jobs/j/instances/1")
    assert flink.status_code == 500
    assert without_request_id(flink.json()) == {
        "Code": "InternalError",
        "Message": "The request processing has failed due to some unknown error.",
    }
    assert "REST GET /api/v2/projects/p/jobs/j/instances/1 failed" in caplog.text
    assert f"(request id {flink.headers['x-request-id']})" in caplog.text
    assert flink.json()["RequestId"] == flink.headers["x-request-id"]
    assert response.headers["x-request-id"] in caplog.text  # the last DLF one


REPLIES = [
    "/v1/p/jobs/instances/detail",  # 200
    "/v1/p/jobs/instances/detail?limit=0",  # 400
    "/v1/p/jobs/j/instances/1",  # 400 DLF.0137
    "/v2/p/factory/jobs/j/instances/detail",  # 400 DLF.0100
    "/?Action=GetJobInstanceList&JobId=1",  # 404
    "/?Action=GetJobInstanceList&JobId=x&Format=XML",  # 400
    "/api/v2/projects/p/jobs/j/instances/1",  # 404
    "/api/v2/projects/p/jobs/j/instances/x",  # 400
]


@pytest.mark.parametrize("url", REPLIES)
async def test_every_reply_carries_a_fresh_request_id(client: httpx.AsyncClient, url: str) -> None:
    first, second = await client.get(url), await client.get(url)
    ids = first.headers["x-request-id"], second.headers["x-request-id"]
    assert ids[0] != ids[1]
    for found in ids:
        uuid.UUID(found)  # uuid-like


@pytest.mark.parametrize(
    "url",
    [
        "/v1/p/jobs/instances/detail",
        "/v1/p/jobs/j/instances/1",
        "/v2/p/factory/jobs/j/instances/detail",
        "/api/v2/projects/p/jobs/j/instances/1",
    ],
)
async def test_another_method_gets_a_405_with_a_request_id(
    client: httpx.AsyncClient, url: str
) -> None:
    response = await client.delete(url)
    assert response.status_code == 405
    uuid.UUID(response.headers["x-request-id"])


async def test_error_replies_are_logged_with_their_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobql")
    invalid = await client.get("/v1/p/jobs/instances/detail?limit=0")
    missing = await client.get("/api/v2/projects/p/jobs/j/instances/1")
    for response, code in [(invalid, "DLF.3051"), (missing, "InvalidInstance.NotFound")]:
        line = next(
            record.getMessage()
            for record in caplog.records
            if response.headers["x-request-id"] in record.getMessage()
        )
        assert f"answered {response.status_code} {code}" in line
    # The log says which parameter, where DLF's reply does not.
    assert "limit must be an integer from 1 to 1000, got '0'" in caplog.text
