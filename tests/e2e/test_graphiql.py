"""GraphiQL at /graphql works offline in a real browser and shows the server's own data."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable
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


@pytest.fixture(scope="module")
def graphiql_session(
    node_tool: Callable[..., subprocess.CompletedProcess[str]],
    chromium: str,
    live_server: str,
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: list[str],
) -> dict[str, str]:
    """One browser session of graphiql.mjs: a typed query, then one built in the Explorer."""
    screenshot = tmp_path_factory.mktemp("graphiql") / "graphiql.png"

    run = node_tool("graphiql.mjs", live_server, str(screenshot), CHROMIUM=chromium)

    assert run.returncode == 0, (
        f"graphiql.mjs exited with {run.returncode}\n"
        f"--- stderr\n{run.stderr}\n--- stdout\n{run.stdout}"
    )
    artifacts.append(f"GraphiQL (Explorer) screenshot: {screenshot}")
    session: dict[str, str] = json.loads(run.stdout.strip().splitlines()[-1])
    return session


def test_graphiql_runs_a_query_with_only_same_origin_assets(
    graphiql_session: dict[str, str], live_server: str
) -> None:
    shown = graphiql_session["result"]
    assert '"jobName"' in shown, shown
    on_page = instance_keys(json.loads(shown))
    from_server = instance_keys(post_graphql(live_server, INSTANCES_QUERY))
    assert from_server, "the demo database answered no instances, so the page proved nothing"
    assert on_page & from_server, (
        f"the page showed {sorted(on_page)}, the server answers {sorted(from_server)}"
    )


def test_explorer_builds_a_query_by_clicking_and_runs_it(
    graphiql_session: dict[str, str], live_server: str
) -> None:
    built = graphiql_session["explorerQuery"]
    # graphiql.mjs emptied the editor first, so every field in it came from clicks in the Explorer.
    assert "jobName" not in built, f"the typed query survived in the editor: {built}"
    assert built.replace("{", " ").replace("}", " ").split()[-3:] == [
        "instances",
        "nodes",
        "status",
    ], f"the Explorer built {built!r}, not instances -> nodes -> status"

    shown = json.loads(graphiql_session["explorerResult"])["data"]
    from_server = post_graphql(live_server, built)
    assert "errors" not in from_server, from_server
    statuses = [node["status"] for node in from_server["data"]["instances"]["nodes"]]
    assert statuses, "the demo database answered no instances, so the page proved nothing"
    assert shown == from_server["data"], (
        f"the result pane shows {shown}, the server answers {from_server['data']}"
    )
