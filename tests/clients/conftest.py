"""Live servers on both backends, and the client toolchains (node packages, the codegen venv).

The toolchains are installed by scripts/test (`npm ci` in tests/clients/node, and
tests/clients/python/requirements.lock into .venv-codegen). Without them the tests skip, except
under CI=true, where a missing tool is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.clients.support import NODE_DIR, REPO_ROOT, Demo, discover_demo
from tests.e2e.conftest import (  # the same fixtures as tests/e2e, so the same servers' set-up
    _missing,
    live_server,
    live_server_postgres,
)

__all__ = ["live_server", "live_server_postgres"]

NODE_PACKAGES = (
    "@graphql-codegen/cli",
    "@graphql-codegen/client-preset",
    "typescript",
    "relay-compiler",
)
CODEGEN_VENV = Path(os.environ.get("JOBQL_CODEGEN_VENV", REPO_ROOT / ".venv-codegen"))
TOOL_TIMEOUT_S = 240.0


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> str:
    """Base URL of a live `jobql serve` with demo data, on each backend."""
    fixture = "live_server" if request.param == "sqlite" else "live_server_postgres"
    url: str = request.getfixturevalue(fixture)
    return url


_demo_cache: dict[str, Demo] = {}


@pytest.fixture
def demo(server: str) -> Demo:
    """Facts about `server`'s demo data (a job, an instance with nodes, their global ids ...)."""
    if server not in _demo_cache:
        _demo_cache[server] = discover_demo(server)
    return _demo_cache[server]


Tool = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def node_bin() -> str:
    """`node`, once tests/clients/node/node_modules holds the client toolchains."""
    path = shutil.which("node")
    if path is None:
        _missing("node is not on PATH; install Node.js 20+ to run the client tests")
    for package in NODE_PACKAGES:
        if not (NODE_DIR / "node_modules" / package / "package.json").is_file():
            _missing(
                f"{NODE_DIR / 'node_modules' / package} is missing; run `npm ci` in {NODE_DIR}"
            )
    return path


@pytest.fixture(scope="session")
def npx(node_bin: str) -> Tool:
    """Run a package binary of tests/clients/node: `npx("tsc", "--noEmit", ...)`."""

    def run(
        binary: str, *args: str, cwd: Path = NODE_DIR, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(NODE_DIR / "node_modules" / ".bin" / binary), *args],
            cwd=cwd,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_S,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def codegen_python() -> Path:
    """Python of the codegen venv (ariadne-codegen pins an older graphql-core than Strawberry)."""
    python = CODEGEN_VENV / "bin" / "python"
    if not (CODEGEN_VENV / "bin" / "ariadne-codegen").is_file():
        _missing(
            f"{CODEGEN_VENV} has no ariadne-codegen; create it with "
            "`bash -c 'source scripts/lib.sh && ensure_codegen_venv'`"
        )
    return python
