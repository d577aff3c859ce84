"""Apollo Client's persisted-queries link, the real one, against a live `jobql serve`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import NODE_TIMEOUT_S, _missing

pytestmark = pytest.mark.e2e

APQ_DIR = Path(__file__).resolve().parent / "apq"
WORKSPACE = "ws1"  # demo data of the live server


@pytest.fixture(scope="module")
def apollo_node() -> str:
    path = shutil.which("node")
    if path is None:
        _missing("node is not on PATH; install Node.js 20+ to run the Apollo Client test")
    if not (APQ_DIR / "node_modules" / "@apollo" / "client" / "package.json").is_file():
        _missing(f"{APQ_DIR}/node_modules is missing; run `npm ci` in {APQ_DIR}")
    return path


def post(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "workspace": WORKSPACE},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def test_apollo_client_registers_then_reads_by_hash_over_get(
    apollo_node: str, live_server: str
) -> None:
    operation = f"ApqJobs_{uuid.uuid4().hex[:12]}"  # a text this server has never seen
    run = subprocess.run(
        [apollo_node, str(APQ_DIR / "apollo-apq.mjs"), live_server, WORKSPACE, operation],
        cwd=APQ_DIR,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 0, f"--- stderr\n{run.stderr}\n--- stdout\n{run.stdout}"
    report = json.loads(run.stdout)
    exchanges = report["exchanges"]
    summary = [(e["method"], bool(e["query"]), e["status"], e["errorCodes"]) for e in exchanges]
    # First client: GET by hash is a miss, the link resends the text (POST), which registers it.
    # Second client: GET by hash alone is a hit.
    assert summary == [
        ("GET", False, 200, ["PERSISTED_QUERY_NOT_FOUND"]),
        ("POST", True, 200, []),
        ("GET", False, 200, []),
    ], json.dumps(exchanges, indent=2)
    miss, register, hit = exchanges
    sent_text = register["query"]
    assert operation in sent_text
    assert hashlib.sha256(sent_text.encode()).hexdigest() == miss["sha256Hash"]
    assert hit["sha256Hash"] == miss["sha256Hash"]
    assert miss["cacheControl"] == "private, no-cache, must-revalidate"
    assert register["cacheControl"] is None  # POST: never cached
    assert hit["cacheControl"] == "public, max-age=5"
    assert hit["etag"]
    assert "workspace" in hit["vary"]
    # Both clients got what the text itself answers for the same workspace.
    direct = post(live_server, {"query": sent_text, "variables": register["variables"]})
    assert "errors" not in direct
    assert report["first"] == report["second"] == direct["data"]
    assert direct["data"]["jobs"]["totalCount"] > 0
    assert len(direct["data"]["jobs"]["nodes"]) == 3
