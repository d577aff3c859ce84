"""GraphiQL at /graphql works offline in a real browser and shows the server's own data."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

# graphiql.mjs types exactly this document into the page.
INSTANCES_QUERY = "{ instances(first: 3) { nodes { jobName instanceId status } } }"


def post_graphql(base_url: str, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, Any] = json.load(response)
    return body


def instance_keys(response: dict[str, Any]) -> set[tuple[str, str]]:
    # instanceId is unique only within its job, and a Long may arrive as a number or a string.
    nodes = response["data"]["instances"]["nodes"]
    return {(node["jobName"], str(node["instanceId"])) for node in nodes}


def test_graphiql_runs_a_query_with_only_same_origin_assets(
    node_tool: Callable[..., subprocess.CompletedProcess[str]],
    chromium: str,
    live_server: str,
    tmp_path: Path,
) -> None:
    screenshot = tmp_path / "graphiql.png"

    run = node_tool("graphiql.mjs", live_server, str(screenshot), CHROMIUM=chromium)

    assert run.returncode == 0, (
        f"graphiql.mjs exited with {run.returncode}\n"
        f"--- stderr\n{run.stderr}\n--- stdout\n{run.stdout}"
    )
    print(f"GraphiQL screenshot: {screenshot}")
    shown = json.loads(run.stdout.strip().splitlines()[-1])["result"]
    assert '"jobName"' in shown, shown
    on_page = instance_keys(json.loads(shown))
    from_server = instance_keys(post_graphql(live_server, INSTANCES_QUERY))
    assert from_server, "the demo database answered no instances, so the page proved nothing"
    assert on_page & from_server, (
        f"the page showed {sorted(on_page)}, the server answers {sorted(from_server)}"
    )
