"""The HTTP surface: GraphQL-over-HTTP, the workspace header, GraphiQL offline, health."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from importlib import resources
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.app import create_app
from jobql.http.endpoint import negotiate
from jobql.settings import Settings
from tests.factories import checked_out_when_idle, make_instance, make_job, new_workspace

GRAPHQL_RESPONSE = "application/graphql-response+json"


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        yield http
    await app.state.engine.dispose()


async def test_post_query_reads_the_workspace_of_the_header(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    mine = await new_workspace(engine)
    job = await make_job(engine, mine)
    await make_instance(engine, job, vendor_instance_id=77)
    body = {"query": "{ instances { nodes { instanceId jobName } } }"}
    response = await client.post("/graphql", json=body, headers={"workspace": mine.name})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["data"] == {
        "instances": {"nodes": [{"instanceId": 77, "jobName": job.name}]}
    }
    # Every executed query reports its estimated cost: the connection and its page of 10.
    assert response.json()["extensions"] == {"cost": 11}
    other = await client.post("/graphql", json=body, headers={"workspace": "nobody-here"})
    assert other.json()["data"] == {"instances": {"nodes": []}}


async def test_get_query(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    mine = await new_workspace(engine)
    job = await make_job(engine, mine)
    params = urlencode(
        {
            "query": "query($j: String!) { job(name: $j) { name } }",
            "variables": json.dumps({"j": job.name}),
        }
    )
    response = await client.get(
        f"/graphql?{params}", headers={"workspace": mine.name, "accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"job": {"name": job.name}}


@pytest.mark.parametrize(
    ("accept", "status", "media"),
    [
        (GRAPHQL_RESPONSE, 400, GRAPHQL_RESPONSE),
        ("application/json", 200, "application/json"),
        (None, 200, "application/json"),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", 400, GRAPHQL_RESPONSE),
    ],
)
async def test_request_errors_follow_the_accept_header(
    client: httpx.AsyncClient, accept: str | None, status: int, media: str
) -> None:
    headers = {"accept": accept} if accept else {}
    for query in ("{ instances { ", "{ nope }"):
        response = await client.post("/graphql", json={"query": query}, headers=headers)
        assert response.status_code == status
        assert response.headers["content-type"] == f"{media}; charset=utf-8"
        payload = response.json()
        assert "data" not in payload
        assert payload["errors"][0]["extensions"]["code"].startswith("GRAPHQL_")


async def test_field_errors_are_200_with_partial_data(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": '{ job(name: "missing") { name } }'},
        headers={"accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"job": None}
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b"query=%7B__typename%7D", "application/x-www-form-urlencoded"),
        (b'{"query": 5}', "application/json"),
        (b'{"query": "{ __typename }", "variables": []}', "application/json"),
    ],
)
async def test_malformed_requests_are_4xx_json(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post(
        "/graphql", content=content, headers={"content-type": content_type}
    )
    assert 400 <= response.status_code < 500
    assert response.json()["errors"][0]["message"]


async def test_unacceptable_accept_is_406(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"accept": "application/xml"}
    )
    assert response.status_code == 406


async def test_graphiql_page_loads_only_its_own_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "http://" not in page.text
    assert "https://" not in page.text
    for asset in (
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphiql.min.js",
        "graphiql.min.css",
        "graphiql-plugin-explorer.umd.js",
        "graphiql-plugin-explorer.css",
    ):
        assert f"/static/graphiql/{asset}" in page.text
        response = await client.get(f"/static/graphiql/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 1000


def test_every_vendored_graphiql_package_has_its_licence() -> None:
    static = resources.files("jobql").joinpath("static/graphiql")
    lines = static.joinpath("VERSIONS").read_text("utf-8").splitlines()
    packages = [line.split()[0] for line in lines if line and not line.startswith("#")]
    assert "@graphiql/plugin-explorer" in packages
    for package in packages:
        # @graphiql/plugin-explorer -> LICENSE.graphiql-plugin-explorer
        licence = static.joinpath("LICENSE." + package.lstrip("@").replace("/", "-"))
        assert licence.is_file(), f"no licence for {package}"
        assert "Permission is hereby granted" in licence.read_text("utf-8"), package


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_healthz_reports_an_unreachable_database() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:////nonexistent/dir/x.db"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        response = await http.get("/healthz")
    await app.state.engine.dispose()
    assert response.status_code == 503


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("text/html", None),
        (f"application/json, {GRAPHQL_RESPONSE}", "application/json"),
        (f"application/json;q=0.5, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0", None),
    ],
)
def test_negotiate(accept: str, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


async def test_graphql_transport_ws_answers_operations(engine: AsyncEngine) -> None:
    workspace = await new_workspace(engine)
    await make_job(engine, workspace)
    await asyncio.to_thread(talk_graphql_transport_ws, engine, workspace.name)


def talk_graphql_transport_ws(engine: AsyncEngine, workspace: str) -> None:
    from starlette.testclient import TestClient

    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    app = create_app(settings)
    with (
        TestClient(app) as http,
        http.websocket_connect(
            "/graphql", subprotocols=["graphql-transport-ws"], headers={"workspace": workspace}
        ) as socket,
    ):
        assert socket.accepted_subprotocol == "graphql-transport-ws"
        socket.send_json({"type": "connection_init"})
        assert socket.receive_json() == {"type": "connection_ack"}
        socket.send_json(
            {"type": "subscribe", "id": "1", "payload": {"query": "{ jobs { totalCount } }"}}
        )
        assert socket.receive_json() == {
            "type": "next",
            "id": "1",
            "payload": {"data": {"jobs": {"totalCount": 1}}, "extensions": {"cost": 1}},
        }
        assert socket.receive_json() == {"type": "complete", "id": "1"}
        # Between operations the socket holds no database connection.
        assert checked_out_when_idle(app.state.engine) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"5", "Expected a JSON object"),
        (b"null", "Expected a JSON object"),
        (b'"{ jobs { totalCount } }"', "Expected a JSON object"),
        (b'{"query": "\xff"}', "not valid UTF-8 JSON"),
    ],
)
async def test_bodies_that_are_not_a_json_object_are_400(
    client: httpx.AsyncClient, content: bytes, message: str
) -> None:
    response = await client.post(
        "/graphql", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert message in response.json()["errors"][0]["message"]


async def test_several_operations_need_an_operation_name(client: httpx.AsyncClient) -> None:
    document = "query A { jobs { totalCount } } query B { __typename }"
    response = await client.post(
        "/graphql", json={"query": document}, headers={"accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 400
    assert "operationName" in response.json()["errors"][0]["message"]
    named = await client.post(
        "/graphql",
        json={"query": document, "operationName": "B"},
        headers={"accept": GRAPHQL_RESPONSE},
    )
    assert named.json()["data"] == {"__typename": "Query"}


async def test_mutation_over_get_and_other_methods_are_405(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql?" + urlencode({"query": "mutation M { __typename }", "operationName": "M"}),
        headers={"accept": "application/json"},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    for method in ("PUT", "DELETE", "PATCH"):
        other = await client.request(method, "/graphql", json={"query": "{ __typename }"})
        assert other.status_code == 405
        assert other.json()["errors"][0]["message"]
