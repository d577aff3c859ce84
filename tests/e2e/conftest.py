"""A real `jobql serve` on a free port, and the node tools that drive it.

The node side (tests/e2e/*.mjs) needs `npm ci` in tests/e2e and Debian's /usr/bin/chromium.
Without them the tests skip, except under CI=true, where a missing tool is a failure: CI must not go
green by running nothing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import create_postgres_database, drop_postgres_database

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parents[1]
NODE_MODULES = E2E_DIR / "node_modules"
NODE_PACKAGES = ("playwright-core", "graphql-http")
STARTUP_TIMEOUT_S = 120.0
SHUTDOWN_TIMEOUT_S = 15.0
NODE_TIMEOUT_S = 240.0
SEED_TIMEOUT_S = 300.0
POSTGRES_DEMO_INSTANCES = 2000

AUDIT_REPORT = pytest.StashKey[list[str]]()
ARTIFACTS = pytest.StashKey[list[str]]()


def _missing(message: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def node() -> str:
    """Path of `node`, once tests/e2e/node_modules holds the harness's packages."""
    path = shutil.which("node")
    if path is None:
        _missing("node is not on PATH; install Node.js 20+ to run the e2e tests")
    for package in NODE_PACKAGES:
        if not (NODE_MODULES / package / "package.json").is_file():
            _missing(f"{NODE_MODULES / package} is missing; run `npm ci` in {E2E_DIR}")
    return path


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system Chromium that playwright-core drives; nothing ever downloads a browser."""
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        _missing(f"{path} is missing; `apt-get install chromium` or set CHROMIUM")
    return path


NodeTool = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def node_tool(node: str) -> NodeTool:
    """Run one of the tests/e2e/*.mjs tools: `node_tool("audit.mjs", url, ENV_VAR="value")`."""

    def run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [node, str(E2E_DIR / script), *args],
            cwd=E2E_DIR,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT_S,
            check=False,
        )

    return run


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_env() -> dict[str, str]:
    # No JOBQL_DATABASE_URL: the server must take its zero-configuration path (a new ./jobql.db,
    # created, migrated and seeded). The subprocess imports the same jobql as this test session.
    env = {key: value for key, value in os.environ.items() if key != "JOBQL_DATABASE_URL"}
    spec = importlib.util.find_spec("jobql")
    origin = spec.origin if spec is not None else None
    package_parent = Path(origin).parent.parent if origin else REPO_ROOT
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_parent), env.get("PYTHONPATH")]))
    return env


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _log_tail(log_path: Path, lines: int = 60) -> str:
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serve(workdir: Path, **extra_env: str) -> Iterator[str]:
    """Run `jobql serve` in `workdir` (its own new SQLite file) until the block ends; yields the
    base URL once /healthz answers. `extra_env` adds JOBQL_* settings (tokens, demo size...)."""
    log_path = workdir / "server.log"
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "jobql", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env={**_server_env(), **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(base_url):
            if process.poll() is not None:
                pytest.fail(
                    f"`python {' '.join(command[1:])}` exited with {process.returncode} before "
                    f"/healthz answered; its output:\n{_log_tail(log_path)}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{base_url}/healthz did not answer 200 within {STARTUP_TIMEOUT_S:.0f} s; "
                    f"server output:\n{_log_tail(log_path)}",
                    pytrace=False,
                )
            time.sleep(0.25)
        yield base_url
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (http://127.0.0.1:<port>) of `jobql serve` running in its own temporary dir."""
    with serve(tmp_path_factory.mktemp("live_server")) as base_url:
        yield base_url


def _jobql(args: list[str], workdir: Path, env: dict[str, str]) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "jobql", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=SEED_TIMEOUT_S,
        check=False,
    )
    if run.returncode != 0:
        pytest.fail(
            f"`jobql {' '.join(args)}` exited with {run.returncode}:\n{run.stderr}{run.stdout}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def live_server_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like `live_server`, on a new PostgreSQL database (`jobql migrate` + `jobql seed`).

    The database is uniquely named on JOBQL_TEST_POSTGRES_URL's server and dropped afterwards; an
    unreachable server skips, or fails under CI=true, as the PostgreSQL tests of tests/ do.
    """
    name, engine = asyncio.run(_create_postgres_database())
    url = engine.url.render_as_string(hide_password=False)
    try:
        workdir = tmp_path_factory.mktemp("live_server_postgres")
        env = {**_server_env(), "JOBQL_DATABASE_URL": url}
        _jobql(["migrate"], workdir, env)
        _jobql(["seed", "--instances", str(POSTGRES_DEMO_INSTANCES)], workdir, env)
        with serve(workdir, JOBQL_DATABASE_URL=url) as base_url:
            yield base_url
    finally:
        asyncio.run(drop_postgres_database(name))


async def _create_postgres_database() -> tuple[str, AsyncEngine]:
    name, engine = await create_postgres_database()
    await engine.dispose()  # only its URL is needed; its pool belongs to this short event loop
    return name, engine


@pytest.fixture(scope="session")
def audit_report(pytestconfig: pytest.Config) -> list[str]:
    """Lines to print in the terminal summary of every run, passed or failed."""
    return pytestconfig.stash.setdefault(AUDIT_REPORT, [])


@pytest.fixture(scope="session")
def artifacts(pytestconfig: pytest.Config) -> list[str]:
    """Files a run leaves for people and CI to look at (screenshots), listed at the end."""
    return pytestconfig.stash.setdefault(ARTIFACTS, [])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    saved = config.stash.get(ARTIFACTS, [])
    if saved:
        terminalreporter.section("e2e artifacts")
        for line in saved:
            terminalreporter.line(line)
    # The audit's SHOULD-level findings do not fail the suite, so show them on every run.
    lines = config.stash.get(AUDIT_REPORT, [])
    if lines:
        terminalreporter.section("GraphQL-over-HTTP audit (graphql-http)")
        for line in lines:
            terminalreporter.line(line)
