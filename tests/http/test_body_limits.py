"""An oversized body gets its 413 (or another readable answer) on every client, never a reset.

Real clients against a real server over TCP: `jobql serve` (uvicorn with httptools, what it runs)
and uvicorn with h11 on the same app. urllib asks for `Connection: close`, so before the server
read the rest of a refused body, it reset the connection under urllib; httpx and Node's fetch
keep the connection alive.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobql.http.body import DRAIN_SECONDS
from tests.e2e.conftest import (
    STARTUP_TIMEOUT_S,
    _free_port,
    _healthy,
    _jobql,
    _log_tail,
    _missing,
    _server_env,
    _stop,
    serve,
)

LIMIT = 1_048_576  # JOBQL_MAX_BODY_BYTES's default
PAD = 11_000_000  # the body of the issue: about 11 MB
BODY = json.dumps({"query": "{ __typename }", "variables": {"pad": "x" * PAD}}).encode()
NODE_SCRIPT = Path(__file__).resolve().parent / "body_limits.mjs"

GRAPHQL = "/graphql"
DLF_V1 = "/v1/any/jobs/instances/detail?jobName=job_batch"
REST = [
    DLF_V1,
    "/v2/any/factory/jobs/job_batch/instances/detail",
    "/?Action=GetJobInstanceList&JobId=1&Namespace=default",
    "/api/v2/projects/default/jobs/job/instances/1",
]


@dataclass(frozen=True)
class Server:
    url: str
    port: int
    log: Path


@contextmanager
def _uvicorn_h11(workdir: Path) -> Iterator[str]:
    """The app under `uvicorn --http h11` (`jobql serve` always takes httptools)."""
    env = _server_env()
    _jobql(["migrate"], workdir, env)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    with (workdir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "jobql.app:create_app", "--factory"),
                *("--http", "h11", "--host", "127.0.0.1", "--port", str(port)),
            ],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start:\n{_log_tail(workdir / 'server.log')}")
            time.sleep(0.25)
        yield base_url
    finally:
        _stop(process)


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp(f"body_limits_{request.param}")
    running = (
        serve(workdir, JOBQL_DEMO_INSTANCES="0", JOBQL_ACCESS_LOG="true")
        if request.param == "httptools"
        else _uvicorn_h11(workdir)
    )
    with running as url:
        yield Server(url, int(url.rsplit(":", 1)[1]), workdir / "server.log")


def _names_the_limit(status: int, body: bytes) -> None:
    assert status == 413, body[:300]
    error = json.loads(body)["errors"][0]
    assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert str(LIMIT) in error["message"]


def _no_server_error(server: Server) -> None:
    log = server.log.read_text(errors="replace")
    for sign in ("Traceback", "Exception in ASGI application", " 500 "):
        assert sign not in log, _log_tail(server.log)


def _urllib_post(url: str, data: Any) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=data, headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _chunks(size: int = 65_536) -> Iterator[bytes]:
    """BODY as an iterable: urllib and httpx send it chunked, without a Content-Length."""
    for start in range(0, len(BODY), size):
        yield BODY[start : start + size]


@pytest.mark.parametrize("path", [GRAPHQL, *REST])
def test_urllib_reads_the_413(server: Server, path: str) -> None:
    _names_the_limit(*_urllib_post(server.url + path, BODY))
    _no_server_error(server)


@pytest.mark.parametrize("path", [GRAPHQL, DLF_V1])
def test_httpx_reads_the_413(server: Server, path: str) -> None:
    with httpx.Client(timeout=60) as client:
        response = client.post(
            server.url + path, content=BODY, headers={"content-type": "application/json"}
        )
        _names_the_limit(response.status_code, response.content)
        # The connection is closed after the answer; the next request gets a new one.
        assert client.get(server.url + "/healthz").status_code == 200
    _no_server_error(server)


def test_node_fetch_reads_the_413(server: Server) -> None:
    node = shutil.which("node")
    if node is None:
        _missing("node is not on PATH; install Node.js 20+ to run the fetch test")
    run = subprocess.run(
        [node, str(NODE_SCRIPT), server.url, str(PAD), GRAPHQL, DLF_V1],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert [answer["path"] for answer in answers] == [GRAPHQL, DLF_V1]
    for answer in answers:
        assert "error" not in answer, answer
        _names_the_limit(answer["status"], answer["body"].encode())
    _no_server_error(server)


def test_a_chunked_oversized_body_gets_its_413(server: Server) -> None:
    """No Content-Length: the endpoint finds the body too large while reading it."""
    _names_the_limit(*_urllib_post(server.url + GRAPHQL, _chunks()))
    with httpx.Client(timeout=60) as client:
        response = client.post(
            server.url + GRAPHQL, content=_chunks(), headers={"content-type": "application/json"}
        )
    _names_the_limit(response.status_code, response.content)
    _no_server_error(server)


@pytest.mark.parametrize("path", REST)
def test_a_chunked_body_the_route_never_reads_gets_an_answer(server: Server, path: str) -> None:
    """The REST routes read no body: they answer (a 4xx), and the body is read and dropped."""
    status, body = _urllib_post(server.url + path, _chunks())
    assert 400 <= status < 500, body[:300]
    assert body
    _no_server_error(server)


def _raw(port: int, head: str, body: bytes = b"", read_for: float = 2 * DRAIN_SECONDS) -> bytes:
    """Send `head` (and `body`), then read until the server closes; fails on a reset."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_for) as sock:
        sock.sendall(head.encode() + body)
        received = b""
        while chunk := sock.recv(65_536):
            received += chunk
        return received


@pytest.mark.parametrize("path", [GRAPHQL, DLF_V1])
def test_expect_100_continue_gets_the_413_before_sending_the_body(
    server: Server, path: str
) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: jobql\r\nContent-Type: application/json\r\n"
        f"Expect: 100-continue\r\nContent-Length: {len(BODY)}\r\n\r\n"
    )
    started = time.monotonic()
    answer = _raw(server.port, head)
    # The 413 came without a 100 Continue, and the connection closed at once (nothing to read).
    assert time.monotonic() - started < DRAIN_SECONDS
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert b"100 Continue" not in answer
    assert b"\r\nconnection: close\r\n" in answer.lower()
    _names_the_limit(413, answer.partition(b"\r\n\r\n")[2])
    _no_server_error(server)


def test_a_client_that_stops_sending_is_answered_and_closed_after_the_drain_time(
    server: Server,
) -> None:
    """The answer goes out at once; the connection closes once DRAIN_SECONDS have passed."""
    head = (
        f"POST {GRAPHQL} HTTP/1.1\r\nHost: jobql\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    started = time.monotonic()
    answer = _raw(server.port, head, BODY[: 2 * LIMIT])
    waited = time.monotonic() - started
    assert DRAIN_SECONDS - 0.5 < waited < 2 * DRAIN_SECONDS
    _names_the_limit(413, answer.partition(b"\r\n\r\n")[2])
    _no_server_error(server)
