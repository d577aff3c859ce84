"""`jobql serve --workers 2` as a process, with JSON logs: `/metrics` answers for both workers
(prometheus-client's multiprocess mode), every stderr line is one JSON object, request lines
carry the request's fields (its reply's `X-Request-Id` among them) and never a variable or a
token; subscriptions are counted on both transports; a worker killed with SIGKILL leaves the
gauges' sums."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from jobql.cli import main
from tests.conftest import postgres_url
from tests.e2e.conftest import STARTUP_TIMEOUT_S, _free_port, _log_tail, _server_env, _stop
from tests.ops.conftest import Metrics, delta, token_entry, tokens_json

WRITER = "ops-serve-writer"
SCRAPER = "ops-serve-scraper"
SECRET = "ops-variable-secret-5d1c"  # a variable's value: it must appear in no log line
WORKSPACE = "ops_serve"
COUNTED = """
query OpsWorkers($job: String) { jobs(first: 1, filter: { nameStartsWith: $job }) { totalCount } }
"""
RECORD = """
mutation OpsServeRecord($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome } }
}
"""
EVENTS = "subscription OpsEvents { instanceEvents { kind instance { instanceId status } } }"
EVENT_STREAM = "text/event-stream"
POOL_MAX = "jobql_db_pool_max_connections"  # a livesum gauge: pool size x live workers
JSON_BODY = {"content-type": "application/json"}


@dataclass
class Server:
    url: str
    stderr: Path
    stdout: Path
    pid: int = 0  # `jobql serve`'s, the supervisor of its workers

    def log_lines(self) -> list[str]:
        return [line for line in self.stderr.read_text().splitlines() if line.strip()]

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_lines()]


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[str]:
    async with postgres_url() as url:
        yield url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("ops_serve")
    env = {
        **_server_env(),
        "JOBQL_DATABASE_URL": database,
        "JOBQL_LOG_FORMAT": "json",
        "JOBQL_TOKENS": tokens_json(
            token_entry(WRITER, ["*"], ["read", "write"]), token_entry(SCRAPER, [], ["metrics"])
        ),
    }
    with _serving(workdir, env, workers=2) as running:
        yield running


@contextlib.contextmanager
def _serving(workdir: Path, env: dict[str, str], *, workers: int = 1) -> Iterator[Server]:
    """`jobql migrate`, then `jobql serve` in `workdir` until it is ready; stopped at the end."""
    env = {key: value for key, value in env.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    migrated = subprocess.run(
        [sys.executable, "-m", "jobql", "migrate"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    port = _free_port()
    running = Server(f"http://127.0.0.1:{port}", workdir / "stderr.log", workdir / "stdout.log")
    command = [sys.executable, "-m", "jobql", "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    with running.stderr.open("wb") as err, running.stdout.open("wb") as out:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=err)
    running.pid = process.pid
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _ready(running.url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"jobql serve did not start:\n{_log_tail(running.stderr)}")
            time.sleep(0.25)
        yield running
    finally:
        _stop(process)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def headers(token: str = WRITER, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "workspace": WORKSPACE, **extra}


async def scrape(client: httpx.AsyncClient) -> Metrics:
    response = await client.get("/metrics", headers=headers(SCRAPER))
    assert response.status_code == 200, response.text
    return Metrics.parse(response.text)


async def test_counts_sum_over_both_workers(server: Server) -> None:
    # No keep-alive: each request is a new connection, which either worker may accept.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
        before = await scrape(client)
        body = {"query": COUNTED, "operationName": "OpsWorkers", "variables": {"job": SECRET}}
        sent = 0
        pids: set[int] = set()
        for _ in range(10):  # until both workers have answered some
            answers = await asyncio.gather(
                *(client.post("/graphql", json=body, headers=headers()) for _ in range(20))
            )
            for answer in answers:
                assert answer.json()["data"] == {"jobs": {"totalCount": 0}}, answer.text
            sent += len(answers)
            await asyncio.sleep(0.2)  # the log lines of the last requests
            pids = {
                record["pid"]
                for record in server.records()
                if record.get("operation") == "OpsWorkers"
            }
            if len(pids) == 2:
                break
        assert len(pids) == 2, "one worker answered every request"
        # Whichever worker answers the scrape counts both workers' requests.
        for _ in range(4):
            after = await scrape(client)
            counted = "jobql_http_request_duration_seconds_count"
            assert delta(before, after, counted, operation="OpsWorkers", outcome="success") == sent


def test_every_log_line_is_json(server: Server) -> None:
    reply = httpx.get(
        f"{server.url}/v1/any/jobs/instances/detail?jobName=nothing",
        headers=headers(),
        timeout=10,
    )
    assert reply.status_code == 200
    httpx.post(
        f"{server.url}/graphql",
        json={"query": COUNTED, "variables": {"job": SECRET}},
        headers=headers(),
        timeout=10,
    )
    time.sleep(0.3)
    text = server.stderr.read_text()
    assert SECRET not in text
    assert WRITER not in text  # no token, and no Authorization header, anywhere
    assert server.stdout.read_text() == ""
    records = server.records()  # each line one JSON object
    assert {"time", "level", "logger", "pid", "message"} <= records[0].keys()
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's lines too
    requests = [r for r in records if r["logger"] == "jobql.access"]
    rest = [r for r in requests if r["route"] == "/v1/{project_id}/jobs/instances/detail"]
    assert [r["request_id"] for r in rest] == [reply.headers["x-request-id"]]
    assert rest[0]["status"] == 200
    assert rest[0]["workspace"] == WORKSPACE
    graphql = [r for r in requests if r["route"] == "/graphql"]
    assert graphql
    for record in graphql:
        assert record["workspace"] == WORKSPACE
        assert record["operation"] == "OpsWorkers"  # named by the document when not sent
        assert record["status"] == 200
        assert isinstance(record["duration_ms"], float | int)
        assert len(record["request_id"]) == 36
        assert record["path"] == "/graphql"


def test_every_graphql_reply_names_the_request_its_log_line_names(server: Server) -> None:
    """X-Request-Id on /graphql's answers (the full stack's, the fast lane's, the refusals before
    routing) and /graphql/stream's is the `request_id` of the request's JSON log line."""
    auth = headers()
    body = {"query": COUNTED, "variables": {"job": "ids"}}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        replies = [client.post("/graphql", json=body, headers=auth) for _ in range(6)]
        replies += [
            client.get("/graphql", params={"query": COUNTED}, headers=auth),
            client.post("/graphql", content=b"{not json", headers={**auth, **JSON_BODY}),
            client.post("/graphql", json=body, headers={"workspace": WORKSPACE}),  # no token
            client.post("/graphql", content=b" " * 2_000_000, headers={**auth, **JSON_BODY}),
            client.post("/graphql/stream", json=body, headers=headers(accept=EVENT_STREAM)),
            client.post("/graphql/stream", json=body, headers=auth),  # not asking for a stream
        ]
    assert [r.status_code for r in replies] == [200] * 7 + [400, 401, 413, 200, 406]
    sent = {r.headers["x-request-id"]: r for r in replies}
    assert len(sent) == len(replies)
    deadline = time.monotonic() + 10
    while True:  # a request's line is written once its answer has gone
        logged = {
            record["request_id"]: record
            for record in server.records()
            if record["logger"] == "jobql.access" and record["request_id"] in sent
        }
        if len(logged) == len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert logged.keys() == sent.keys()
    for identifier, reply in sent.items():
        line = logged[identifier]
        assert (line["status"], line["path"]) == (reply.status_code, reply.url.path)
    # The same document again: some were answered by each worker's fast lane.
    strategies = [logged[r.headers["x-request-id"]]["strategy"] for r in replies[:6]]
    assert "fast_path" in strategies


async def test_a_killed_workers_gauges_leave_the_sums(database: str, tmp_path: Path) -> None:
    """SIGKILL gives a worker no chance to take its live gauges out of the multiprocess sums;
    the next scrape does (prometheus-client's mark_process_dead for pids that are gone)."""
    env = {
        **_server_env(),
        "JOBQL_DATABASE_URL": database,
        "JOBQL_LOG_FORMAT": "json",
        "JOBQL_TOKENS": tokens_json(token_entry(SCRAPER, [], ["metrics"])),
    }
    with _serving(tmp_path, env, workers=2) as running:
        workers = await _started_workers(running, 2)
        directory = _multiprocess_dir(workers[0])
        await asyncio.sleep(2.5)  # each worker publishes its gauges every second
        limits = httpx.Limits(max_keepalive_connections=0)  # either worker may answer
        async with httpx.AsyncClient(base_url=running.url, limits=limits, timeout=30) as client:
            both = (await scrape(client)).value(POOL_MAX, pool="sqlalchemy")
            assert both > 0
            killed = workers[0]
            assert (directory / f"gauge_livesum_{killed}.db").exists()
            os.kill(killed, signal.SIGKILL)
            replaced = await _started_workers(running, 3)  # uvicorn starts another
            assert killed not in replaced[2:]
            await asyncio.sleep(2.5)
            for _ in range(4):
                assert (await scrape(client)).value(
                    POOL_MAX, pool="sqlalchemy"
                ) == both  # not one and a half
            assert not (directory / f"gauge_livesum_{killed}.db").exists()
            assert (directory / f"gauge_livesum_{replaced[2]}.db").exists()


async def _started_workers(server: Server, count: int, within: float = 60.0) -> list[int]:
    """The pids of the first `count` workers that completed their start-up, in order."""
    deadline = time.monotonic() + within
    while True:
        started = [
            record["pid"]
            for record in server.records()
            if record["message"] == "Application startup complete."
        ]
        if len(started) >= count:
            return started[:count]
        assert time.monotonic() < deadline, _log_tail(server.stderr)
        await asyncio.sleep(0.1)


def _multiprocess_dir(worker: int) -> Path:
    """The PROMETHEUS_MULTIPROC_DIR `jobql serve` gave its workers (a fresh one of its own)."""
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    [found] = [v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return Path(found.partition(b"=")[2].decode())


async def test_subscriptions_are_counted(server: Server) -> None:
    ws_url = server.url.replace("http://", "ws://") + "/graphql"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        before = await scrape(client)
        async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
            await socket.send(
                json.dumps(
                    {
                        "type": "connection_init",
                        "payload": {"Authorization": f"Bearer {WRITER}", "workspace": WORKSPACE},
                    }
                )
            )
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            await socket.send(
                json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}})
            )
            await _until(client, lambda m: m.value("jobql_subscriptions_active") == 1)
            async with client.stream(
                "POST",
                "/graphql/stream",
                json={"query": EVENTS},
                headers=headers(accept="text/event-stream"),
            ) as stream:
                await _until(client, lambda m: m.value("jobql_subscriptions_active") == 2)
                item = {"jobName": "ops_serve_job", "instanceId": 1, "status": "RUNNING",
                        "planTime": "2024-03-04T03:53:00Z"}  # fmt: skip
                written = await client.post(
                    "/graphql",
                    json={"query": RECORD, "variables": {"input": [item]}},
                    headers=headers(),
                )
                assert written.json()["data"]["recordInstances"]["results"] == [
                    {"outcome": "CREATED"}
                ]
                message = await _next_message(socket)
                assert message["payload"]["data"]["instanceEvents"]["kind"] == "CREATED"
                assert await _next_event(stream) == "CREATED"
            await socket.send(json.dumps({"id": "1", "type": "complete"}))
        after = await _until(client, lambda m: m.value("jobql_subscriptions_active") == 0)
    delivered = "jobql_subscription_results_delivered_total"
    assert delta(before, after, delivered, transport="ws") == 1
    assert delta(before, after, delivered, transport="sse") == 1
    assert delta(before, after, "jobql_ingest_items_total", outcome="created") == 1
    assert delta(before, after, "jobql_live_events_read_total") >= 2  # each worker's broker


async def _until(client: httpx.AsyncClient, condition: Any, within: float = 20.0) -> Metrics:
    deadline = time.monotonic() + within
    while True:
        found = await scrape(client)
        if condition(found):
            return found
        assert time.monotonic() < deadline, "the metrics never got there"
        await asyncio.sleep(0.1)


async def _next_message(socket: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 20))
        if message["type"] == "next":
            return message  # type: ignore[no-any-return]
        if message["type"] == "ping":
            await socket.send(json.dumps({"type": "pong"}))


async def _next_event(stream: httpx.Response) -> str:
    async with asyncio.timeout(20):
        async for line in stream.aiter_lines():
            if line.startswith("data: {"):
                data = json.loads(line.removeprefix("data: "))
                return str(data["data"]["instanceEvents"]["kind"])
    raise AssertionError("the stream ended")


@pytest.fixture
def uvicorn_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    """`jobql serve` up to uvicorn.run, which records its arguments and the multiprocess
    directory it would hand the workers. The commands configure logging: put it back after."""
    import uvicorn

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    calls: list[dict[str, Any]] = []

    def run(*args: Any, **kwargs: Any) -> None:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        calls.append({**kwargs, "app": args[0], "multiproc_dir": directory})
        assert directory is None or Path(directory).is_dir()

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("JOBQL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    assert main(["migrate"]) == 0
    yield calls
    root.handlers[:] = handlers
    root.setLevel(level)


def test_serve_gives_several_workers_a_fresh_metrics_directory(
    uvicorn_runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["serve", "--workers", "2"]) == 0
    directory = uvicorn_runs[0]["multiproc_dir"]
    assert directory is not None
    assert not Path(directory).exists()  # removed when serve ends
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert main(["serve"]) == 0  # one worker: in memory
    assert uvicorn_runs[1]["multiproc_dir"] is None
    monkeypatch.setenv("JOBQL_METRICS", "false")
    assert main(["serve", "--workers", "2"]) == 0
    assert uvicorn_runs[2]["multiproc_dir"] is None


WORKER = """
import gc, json
from starlette.testclient import TestClient
from uvicorn.importer import import_from_string
threshold = gc.get_threshold()
with TestClient(import_from_string({app!r})()):
    print(json.dumps([gc.get_freeze_count(), gc.get_threshold()[0], threshold[0]]))
"""


def test_serve_workers_tune_the_collector_once_started(
    uvicorn_runs: list[dict[str, Any]], tmp_path: Path
) -> None:
    assert main(["serve"]) == 0
    app = uvicorn_runs[0]["app"]
    assert app == "jobql.app:serve_app"
    url = os.environ["JOBQL_DATABASE_URL"]

    def worker(**env: str) -> list[int]:
        done = subprocess.run(
            [sys.executable, "-c", WORKER.format(app=app)],
            env={**os.environ, "JOBQL_DATABASE_URL": url, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return list(json.loads(done.stdout.splitlines()[-1]))

    frozen, threshold, python_default = worker()
    assert frozen > 10_000  # start-up's objects: the schema, the models, the modules
    assert (threshold, python_default) == (10_000, 700)
    assert worker(JOBQL_GC_THRESHOLD="2500")[1] == 2500
    assert worker(JOBQL_GC_THRESHOLD="0")[:2] == [0, 700]  # off: Python's own settings


def test_serve_logs_json(
    uvicorn_runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["serve"]) == 0
    assert uvicorn_runs[0]["access_log"] is False
    assert uvicorn_runs[0]["log_config"]["loggers"]["uvicorn.access"]["level"] == "INFO"
    monkeypatch.setenv("JOBQL_LOG_FORMAT", "json")
    assert main(["serve"]) == 0
    config = uvicorn_runs[1]["log_config"]
    # jobql writes the request lines itself; uvicorn's would carry the query string.
    assert uvicorn_runs[1]["access_log"] is False
    assert config["formatters"]["json"]["()"] == "jobql.logs.JsonFormatter"
    assert config["root"]["handlers"] == ["stderr"]
    monkeypatch.setenv("JOBQL_LOG_FORMAT", "xml")
    assert main(["serve"]) == 2


def test_text_access_lines_carry_no_query_string(tmp_path: Path) -> None:
    """JOBQL_LOG_FORMAT=text (uvicorn's own access lines): a GET request's query string holds the
    document and its variables, and none of it reaches the log."""
    env = {
        **_server_env(),
        "JOBQL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'text.db'}",
        "JOBQL_LOG_FORMAT": "text",
        "JOBQL_ACCESS_LOG": "true",  # off by default in text
    }
    with _serving(tmp_path, env) as running:
        query = "query Secretive($s: String!) { job(name: $s) { name } }"
        params = {"query": query, "variables": json.dumps({"s": "hunter2-secret"})}
        answer = httpx.get(f"{running.url}/graphql", params=params, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"  # it was read
        deadline = time.monotonic() + 10
        while '"GET /graphql' not in running.stdout.read_text():
            assert time.monotonic() < deadline, _log_tail(running.stdout)
            time.sleep(0.1)
    text = running.stdout.read_text() + running.stderr.read_text()
    assert '"GET /graphql HTTP/1.1" 200' in text, text
    assert "hunter2" not in text, text
    assert "Secretive" not in text, text
    assert "/graphql?" not in text, text
