"""Automatic persisted queries over POST and GET, HTTP cache headers, and allow-list mode."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.app import create_app
from jobql.cli import main
from jobql.http.persisted import (
    Allowlist,
    AllowlistError,
    QueryStore,
    canonical,
    sha256_hex,
)
from jobql.settings import Settings
from tests.factories import Ref, make_instance, make_job, new_workspace

JSON = "application/json"
INSTANCES = "{ instances { nodes { instanceId jobName } } }"
JOB = "query Job($name: String!) { job(name: $name) { name type } }"
MUTATION = 'mutation { upsertJobs(input: [{name: "pq_job"}]) { results { outcome } } }'
NOT_FOUND_BODY = {
    "errors": [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
}
READER = "pq-reader-token"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(text: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(text)}}


def get_url(
    extensions: Any = None, query: str | None = None, variables: Any = None, raw: str = ""
) -> str:
    params: dict[str, str] = {}
    if query is not None:
        params["query"] = query
    if variables is not None:
        params["variables"] = json.dumps(variables)
    if extensions is not None:
        params["extensions"] = raw or json.dumps(extensions)
    elif raw:
        params["extensions"] = raw
    return "/graphql?" + urlencode(params)


@asynccontextmanager
async def serving(engine: AsyncEngine, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(database_url=engine.url.render_as_string(hide_password=False), **settings)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
    ) as http:
        yield http
    await app.state.engine.dispose()


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(engine) as http:
        yield http


@pytest.fixture
async def workspace(engine: AsyncEngine) -> Ref:
    """A workspace with one job and two runs (instance ids 7 and 8)."""
    mine = await new_workspace(engine)
    job = await make_job(engine, mine, "pq_job_batch")
    await make_instance(engine, job, vendor_instance_id=7)
    await make_instance(engine, job, vendor_instance_id=8)
    return mine


EXPECTED = {
    "instances": {
        "nodes": [
            {"instanceId": 8, "jobName": "pq_job_batch"},
            {"instanceId": 7, "jobName": "pq_job_batch"},
        ]
    }
}


async def test_miss_register_then_hit_over_post_and_get(
    client: httpx.AsyncClient, workspace: Ref
) -> None:
    headers = {"workspace": workspace.name, "accept": JSON}
    # A unique text, so that no earlier test registered it in this process.
    query = INSTANCES + f" # {workspace.name}"
    miss = await client.post("/graphql", json={"extensions": apq(query)}, headers=headers)
    assert miss.status_code == 200
    assert miss.headers["content-type"].startswith(JSON)
    assert miss.json() == NOT_FOUND_BODY  # exactly Apollo Server's answer
    assert miss.headers["cache-control"] == "private, no-cache, must-revalidate"
    get_miss = await client.get(get_url(apq(query)), headers=headers)
    assert get_miss.status_code == 200
    assert get_miss.json() == NOT_FOUND_BODY
    assert "etag" not in get_miss.headers

    registered = await client.post(
        "/graphql", json={"query": query, "extensions": apq(query)}, headers=headers
    )
    assert registered.status_code == 200
    assert registered.json()["data"] == EXPECTED

    by_get = await client.get(get_url(apq(query)), headers=headers)
    assert by_get.status_code == 200
    assert by_get.json()["data"] == EXPECTED
    by_post = await client.post("/graphql", json={"extensions": apq(query)}, headers=headers)
    assert by_post.json()["data"] == EXPECTED
    # The hash is the text's: another workspace runs the same text on its own data.
    other = await client.get(get_url(apq(query)), headers={"workspace": "pq-nobody"})
    assert other.json()["data"] == {"instances": {"nodes": []}}


@pytest.mark.parametrize("strategy", ["compiled", "reference"])
async def test_a_get_by_hash_runs_on_either_read_strategy(
    engine: AsyncEngine, workspace: Ref, strategy: str
) -> None:
    # The text behind a hash goes through the same schema, so the compiled strategy serves it.
    query = INSTANCES + f" # {strategy} {workspace.name}"
    headers = {"workspace": workspace.name, "accept": JSON}
    async with serving(engine, read_strategy=strategy, debug_strategy=True) as http:
        registered = await http.post(
            "/graphql", json={"query": query, "extensions": apq(query)}, headers=headers
        )
        assert registered.json()["data"] == EXPECTED
        by_hash = await http.get(get_url(apq(query)), headers=headers)
        assert by_hash.status_code == 200
        body = by_hash.json()
        assert body["data"] == EXPECTED
        assert body["extensions"]["strategy"] == {"instances": strategy}
        assert by_hash.headers["cache-control"].startswith("public, max-age=")
        # The first GET of a new text runs the full pipeline, later ones may take the compiled
        # fast path: the same body, so the same ETag and a 304 for the client's cached copy.
        fresh = query + " # fresh"
        full = await http.get(get_url(apq(fresh), fresh), headers=headers)
        again = await http.get(get_url(apq(fresh)), headers=headers)
        assert full.json() == again.json()
        assert full.headers["etag"] == again.headers["etag"]
        revalidated = await http.get(
            get_url(apq(fresh)), headers={**headers, "if-none-match": full.headers["etag"]}
        )
        assert revalidated.status_code == 304


async def test_register_over_get_with_variables(client: httpx.AsyncClient, workspace: Ref) -> None:
    headers = {"workspace": workspace.name}
    query = JOB + f" # {workspace.name}"
    variables = {"name": "pq_job_batch"}
    first = await client.get(get_url(apq(query), query, variables), headers=headers)
    assert first.json()["data"] == {"job": {"name": "pq_job_batch", "type": "BATCH"}}
    again = await client.get(get_url(apq(query), variables=variables), headers=headers)
    assert again.json()["data"] == first.json()["data"]


async def test_a_hash_that_is_not_the_texts_is_refused_and_not_stored(
    client: httpx.AsyncClient, workspace: Ref
) -> None:
    query = INSTANCES + f" # mismatch {workspace.name}"
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": sha(query + " ")}}
    for response in (
        await client.post("/graphql", json={"query": query, "extensions": wrong}),
        await client.get(get_url(wrong, query)),
    ):
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
        assert "sha" in error["message"]
    later = await client.post("/graphql", json={"extensions": wrong})
    assert later.json() == NOT_FOUND_BODY


@pytest.mark.parametrize("allowlist", [False, True])
async def test_a_query_with_a_lone_surrogate_is_a_client_error(
    engine: AsyncEngine, tmp_path: Path, allowlist: bool
) -> None:
    # JSON can escape a lone surrogate, which has no UTF-8 form to hash: a 4xx, never a 500.
    (tmp_path / "only.graphql").write_text("{ __typename }")
    settings = {"allowed_operations": str(tmp_path)} if allowlist else {}
    query = "{ __typename } # \\ud800"
    hashed = '{"persistedQuery": {"version": 1, "sha256Hash": "%s"}}' % ("0" * 64)
    async with serving(engine, **settings) as http:
        for body in (
            '{"query": "' + query + '", "extensions": ' + hashed + "}",
            '{"query": "' + query + '"}',
        ):
            response = await http.post(
                "/graphql", content=body, headers={"content-type": JSON, "accept": JSON}
            )
            assert response.status_code in (200, 400, 403), response.text
            code = response.json()["errors"][0]["extensions"]["code"]
            if "persistedQuery" in body:
                assert code == "PERSISTED_QUERY_HASH_MISMATCH"
            elif allowlist:
                assert code == "PERSISTED_QUERY_NOT_ALLOWED"
            else:
                assert code == "GRAPHQL_PARSE_FAILED"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not valid UTF-8 JSON"),
        ("[1, 2]", "`extensions` must be an object"),
        ('"text"', "Expected a JSON object"),
        ('{"persistedQuery": "abc"}', "persistedQuery must be an object"),
        ('{"persistedQuery": {"version": 2, "sha256Hash": "%s"}}' % ("a" * 64), "version 2"),
        ('{"persistedQuery": {"version": true, "sha256Hash": "%s"}}' % ("a" * 64), "version"),
        ('{"persistedQuery": {"sha256Hash": "%s"}}' % ("a" * 64), "version None"),
        ('{"persistedQuery": {"version": 1, "sha256Hash": 12}}', "SHA-256 in hex"),
        ('{"persistedQuery": {"version": 1, "sha256Hash": "xyz"}}', "SHA-256 in hex"),
        ('{"persistedQuery": {"version": 1}}', "SHA-256 in hex"),
    ],
)
async def test_bad_extensions_are_a_clear_400(
    client: httpx.AsyncClient, raw: str, message: str
) -> None:
    responses = [await client.get(get_url(raw=raw), headers={"accept": JSON})]
    try:
        body = {"extensions": json.loads(raw), "query": "{ __typename }"}
    except ValueError:
        body = None
    if body is not None and isinstance(body["extensions"], dict):
        responses.append(await client.post("/graphql", json=body))
    for response in responses:
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith(JSON)
        errors = response.json()["errors"]
        assert message in errors[0]["message"]
        assert "Traceback" not in response.text


async def test_etag_and_304_on_get_queries(client: httpx.AsyncClient, workspace: Ref) -> None:
    headers = {"workspace": workspace.name, "accept": JSON}
    url = get_url(query=INSTANCES)
    first = await client.get(url, headers=headers)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"')  # strong: not W/"..."
    assert first.headers["cache-control"] == "public, max-age=5"
    assert set(first.headers["vary"].lower().replace(" ", "").split(",")) >= {
        "workspace",
        "authorization",
        "accept",
    }
    same = await client.get(url, headers=headers)
    assert same.headers["etag"] == etag  # a hash of the body, stable
    for tag in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await client.get(url, headers={**headers, "if-none-match": tag})
        assert cached.status_code == 304
        assert cached.content == b""
        assert cached.headers["etag"] == etag
        assert cached.headers["cache-control"] == "public, max-age=5"
        assert "workspace" in cached.headers["vary"]
    changed = await client.get(url, headers={**headers, "if-none-match": '"stale"'})
    assert changed.status_code == 200
    assert changed.json()["data"] == EXPECTED
    # Another workspace's answer differs, and so does its tag.
    other = await client.get(url, headers={"workspace": "pq-nobody", "if-none-match": etag})
    assert other.status_code == 200
    assert other.headers["etag"] != etag


async def test_no_cache_headers_on_post_mutations_or_errors(
    client: httpx.AsyncClient, workspace: Ref
) -> None:
    headers = {"workspace": workspace.name, "accept": JSON}
    post = await client.post("/graphql", json={"query": INSTANCES}, headers=headers)
    assert post.json()["data"] == EXPECTED
    assert "cache-control" not in post.headers
    assert "etag" not in post.headers
    assert "workspace" in post.headers["vary"]
    mutation = await client.post("/graphql", json={"query": MUTATION}, headers=headers)
    assert mutation.json()["data"]["upsertJobs"]["results"] == [{"outcome": "CREATED"}]
    assert "cache-control" not in mutation.headers
    assert "etag" not in mutation.headers
    # A mutation over GET, even by a registered hash, is a 405 and never cacheable.
    await client.post("/graphql", json={"query": MUTATION, "extensions": apq(MUTATION)})
    for url in (get_url(query=MUTATION), get_url(apq(MUTATION))):
        refused = await client.get(url, headers=headers)
        assert refused.status_code == 405
        assert "etag" not in refused.headers
        assert refused.headers["cache-control"] == "no-store"
    # Answers with errors (here NOT_FOUND with a null field) are not cached either.
    missing = await client.get(get_url(query='{ job(name: "nope") { name } }'), headers=headers)
    assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert missing.headers["cache-control"] == "no-store"
    assert "etag" not in missing.headers


async def test_the_graphiql_page_and_json_at_the_same_url_vary_on_accept(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    json_answer = await client.get("/graphql", headers={"accept": JSON})
    assert json_answer.headers["content-type"].startswith(JSON)
    for response in (page, json_answer):
        assert "accept" in response.headers["vary"].lower()


async def test_a_token_makes_the_answer_private(engine: AsyncEngine, workspace: Ref) -> None:
    tokens = [
        {
            "name": "r",
            "sha256": sha(READER),
            "workspaces": [workspace.name],
            "scopes": ["read"],
        }
    ]
    async with serving(engine, tokens=json.dumps(tokens), cache_max_age=30) as http:
        headers = {"workspace": workspace.name, "authorization": f"Bearer {READER}"}
        response = await http.get(get_url(query=INSTANCES), headers=headers)
        assert response.status_code == 200
        assert response.json()["data"] == EXPECTED
        assert response.headers["cache-control"] == "private, max-age=30"
        assert "authorization" in response.headers["vary"].lower()
        revalidated = await http.get(
            get_url(query=INSTANCES), headers={**headers, "if-none-match": response.headers["etag"]}
        )
        assert revalidated.status_code == 304
        assert revalidated.headers["cache-control"] == "private, max-age=30"


@pytest.fixture
def allowlist_dir(tmp_path: Path) -> Path:
    (tmp_path / "instances.graphql").write_text(
        f"# The dashboard list\n{INSTANCES}\n", encoding="utf-8"
    )
    (tmp_path / "job.graphql").write_text(JOB + "\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not an operation", encoding="utf-8")
    return tmp_path


async def test_allowlist_mode(engine: AsyncEngine, workspace: Ref, allowlist_dir: Path) -> None:
    async with serving(engine, allowed_operations=str(allowlist_dir)) as http:
        headers = {"workspace": workspace.name, "accept": JSON}
        listed_text = (allowlist_dir / "instances.graphql").read_text()
        # The file's own hash runs without registering first.
        by_hash = await http.get(get_url(apq(listed_text)), headers=headers)
        assert by_hash.json()["data"] == EXPECTED
        # The same operation formatted differently, and with Apollo Client's __typename.
        reformatted = "query {\n  instances {\n    nodes { instanceId jobName __typename }\n  }\n}"
        plain = await http.post("/graphql", json={"query": reformatted}, headers=headers)
        assert plain.status_code == 200
        assert plain.json()["data"]["instances"]["nodes"][0]["instanceId"] == 8
        registered = await http.post(
            "/graphql", json={"query": reformatted, "extensions": apq(reformatted)}
        )
        assert registered.status_code == 200
        assert (await http.post("/graphql", json={"extensions": apq(reformatted)})).status_code == (
            200
        )
        # Anything else is refused, with or without a hash; an unknown hash is still a miss
        # (Apollo clients then send the text, which is refused).
        other = "{ jobs { nodes { name } } }"
        for refused in (
            await http.post("/graphql", json={"query": other}, headers=headers),
            await http.get(get_url(query=other), headers=headers),
            await http.post("/graphql", json={"query": other, "extensions": apq(other)}),
            await http.post("/graphql", json={"query": "{ __schema { types { name } } }"}),
            await http.post("/graphql", json={"query": "{ not graphql"}),
        ):
            assert refused.status_code == 403
            assert refused.json()["errors"][0]["extensions"]["code"] == (
                "PERSISTED_QUERY_NOT_ALLOWED"
            )
        assert (await http.post("/graphql", json={"extensions": apq(other)})).json() == (
            NOT_FOUND_BODY
        )
    # Off (the default): any operation runs.
    async with serving(engine) as http:
        response = await http.post("/graphql", json={"query": "{ jobs { nodes { name } } }"})
        assert response.status_code == 200
        assert "errors" not in response.json()


async def test_allowlist_mode_applies_to_the_websocket_route(
    engine: AsyncEngine, workspace: Ref, allowlist_dir: Path
) -> None:
    await asyncio.to_thread(use_socket, engine, workspace.name, allowlist_dir)


def use_socket(engine: AsyncEngine, workspace: str, allowlist_dir: Path) -> None:
    from starlette.testclient import TestClient

    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        allowed_operations=str(allowlist_dir),
    )
    listed = (allowlist_dir / "instances.graphql").read_text()
    with (
        TestClient(create_app(settings)) as http,
        http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket,
    ):
        socket.send_json({"type": "connection_init", "payload": {"workspace": workspace}})
        assert socket.receive_json() == {"type": "connection_ack"}
        socket.send_json({"type": "subscribe", "id": "1", "payload": {"query": listed}})
        assert socket.receive_json()["payload"]["data"] == EXPECTED
        assert socket.receive_json() == {"type": "complete", "id": "1"}
        for other in (
            "subscription { instanceEvents { cursor } }",
            "{ __schema { types { name } } }",
        ):
            socket.send_json({"type": "subscribe", "id": "2", "payload": {"query": other}})
            refused = socket.receive_json()
            assert refused["type"] == "error"
            assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"


def test_serve_refuses_a_bad_allowlist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBQL_ALLOWED_OPERATIONS", str(tmp_path / "missing"))
    assert main(["serve"]) == 1
    assert "JOBQL_ALLOWED_OPERATIONS" in capsys.readouterr().err


async def test_persisted_queries_switched_off(engine: AsyncEngine) -> None:
    async with serving(engine, persisted_queries=False) as http:
        query = "{ __typename }"
        response = await http.post("/graphql", json={"query": query, "extensions": apq(query)})
        assert response.status_code == 200
        assert response.json() == {
            "errors": [
                {
                    "message": "PersistedQueryNotSupported",
                    "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"},
                }
            ]
        }
        assert (await http.post("/graphql", json={"query": query})).json()["data"] == {
            "__typename": "Query"
        }


def test_the_store_is_a_bounded_lru() -> None:
    store = QueryStore(max_entries=3, max_chars=100)
    for name in "abc":
        store.put(name, name * 10)
    assert store.get("a") == "a" * 10  # now the most recently used
    store.put("d", "d" * 10)
    assert store.get("b") is None
    assert [store.get(k) is not None for k in "acd"] == [True, True, True]
    store.put("e", "e" * 90)  # 120 characters: the oldest go until 100 fit
    assert [store.get(k) is not None for k in "acde"] == [False, False, True, True]
    store.put("f", "f" * 101)  # larger than the whole store: not kept, nothing evicted
    assert store.get("f") is None
    assert len(store) == 2


def test_allowlist_loading(tmp_path: Path, allowlist_dir: Path) -> None:
    allowlist = Allowlist.from_directory(allowlist_dir)
    assert len(allowlist.sources) == 2
    assert allowlist.allows(INSTANCES)
    assert allowlist.allows("# comment\n" + JOB.replace(" ", "  "))
    assert not allowlist.allows("query Job($name: String!) { job(name: $name) { name } }")
    assert sha256_hex(canonical(JOB) or "") in allowlist.by_hash
    with pytest.raises(AllowlistError, match="not a directory"):
        Allowlist.from_directory(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AllowlistError, match=r"no \*\.graphql"):
        Allowlist.from_directory(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.graphql").write_text("query {")
    with pytest.raises(AllowlistError, match=r"x\.graphql: not a GraphQL document"):
        Allowlist.from_directory(tmp_path / "broken")


def test_the_repository_examples_make_an_allowlist() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    if not any(examples.glob("*.graphql")):
        pytest.skip("no examples/*.graphql in this tree yet")
    allowlist = Allowlist.from_directory(examples)
    for name, text in allowlist.sources.items():
        assert allowlist.allows(text), name
        assert sha256_hex(text) in allowlist.by_hash


def test_settings() -> None:
    settings = Settings.from_env(
        {
            "JOBQL_PERSISTED_QUERIES": "false",
            "JOBQL_PERSISTED_QUERY_CACHE_SIZE": "50",
            "JOBQL_CACHE_MAX_AGE": "0",
            "JOBQL_ALLOWED_OPERATIONS": "examples",
        }
    )
    assert settings.persisted_queries is False
    assert settings.persisted_query_cache_size == 50
    assert settings.cache_max_age == 0
    assert settings.allowed_operations == "examples"
    defaults = Settings.from_env({})
    assert (defaults.persisted_queries, defaults.persisted_query_cache_size) == (True, 10_000)
    assert (defaults.cache_max_age, defaults.allowed_operations) == (5, None)
