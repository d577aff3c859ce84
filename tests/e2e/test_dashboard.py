"""/dashboard in a real browser: what each view shows is what the API answers, one query per view.

dashboard.mjs applies filters chosen here from the server's own data (a non-default workspace,
the two most frequent statuses, a plan time window), reads every view and opens a drill-down;
the tests below ask /graphql the same questions and compare. The screenshot is the CI artifact
build/dashboard.png.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    FieldNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)

from tests.e2e.conftest import REPO_ROOT, serve

pytestmark = pytest.mark.e2e

WORKSPACE = "ws1"  # not `default`: proves the page sends the workspace header
SCREENSHOT = REPO_ROOT / "build" / "dashboard.png"
PAGE_SIZE = 50  # examples/dashboard/queries.js
TIMELINE_SIZE = 40
TOKEN = "dashboard-e2e-secret"

NodeTool = Callable[..., subprocess.CompletedProcess[str]]

STATUSES_QUERY = '{ __type(name: "InstanceStatus") { enumValues { name } } }'
RECENT_QUERY = "{ instances(first: 300) { nodes { planTime status } } }"
PAGE_QUERY = """
query ($filter: InstanceFilter, $first: Int!, $after: String) {
  instances(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { endCursor }
    nodes { id jobName instanceId }
  }
}"""
COUNT_QUERY = "query ($filter: InstanceFilter) { instances(filter: $filter) { totalCount } }"
TIMELINE_QUERY = """
query ($filter: InstanceFilter, $first: Int!) {
  instances(filter: $filter, first: $first, orderBy: { field: START_TIME, direction: DESC }) {
    nodes { id startTime }
  }
}"""
NODES_QUERY = """
query ($job: String!, $id: Long!) {
  instance(jobName: $job, instanceId: $id) { nodes(first: 1000) { nodes { name } } }
}"""


def post_graphql(
    base_url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    workspace: str = WORKSPACE,
) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "workspace": workspace,
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, Any] = json.load(response)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def utc(minute: str) -> str:
    """The page reads its datetime-local inputs as UTC: `2025-05-20T00:00` -> `...:00Z`."""
    return f"{minute}:00Z"


@pytest.fixture(scope="module")
def plan(live_server: str) -> dict[str, Any]:
    """Filters from the data: a window over the 300 newest runs, their 2 commonest statuses."""
    recent = post_graphql(live_server, RECENT_QUERY)["instances"]["nodes"]
    assert len(recent) >= 200, f"too little demo data in {WORKSPACE} to filter: {len(recent)}"
    # Plan times are minute-aligned in the demo data; datetime-local inputs hold minutes.
    before = recent[20]["planTime"][:16]
    after = recent[-1]["planTime"][:16]
    assert after < before, (after, before)
    common = [status for status, _ in Counter(n["status"] for n in recent).most_common(2)]
    return {
        "workspace": WORKSPACE,
        "statuses": common,
        "planTimeAfter": after,
        "planTimeBefore": before,
    }


def api_filter(plan: dict[str, Any], *, statuses: list[str] | None = None) -> dict[str, Any]:
    return {
        "statuses": plan["statuses"] if statuses is None else statuses,
        "planTimeAfter": utc(plan["planTimeAfter"]),
        "planTimeBefore": utc(plan["planTimeBefore"]),
    }


def run_dashboard(
    node_tool: NodeTool, chromium: str, base_url: str, screenshot: Path, plan: dict[str, Any]
) -> dict[str, Any]:
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    run = node_tool("dashboard.mjs", base_url, str(screenshot), json.dumps(plan), CHROMIUM=chromium)
    assert run.returncode == 0, (
        f"dashboard.mjs exited with {run.returncode} (screenshot: {screenshot})\n"
        f"--- stderr\n{run.stderr}\n--- stdout\n{run.stdout}"
    )
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def session(
    node_tool: NodeTool,
    chromium: str,
    live_server: str,
    plan: dict[str, Any],
    artifacts: list[str],
) -> dict[str, Any]:
    result = run_dashboard(node_tool, chromium, live_server, SCREENSHOT, plan)
    artifacts.append(f"dashboard screenshot: {SCREENSHOT}")
    return result


def test_screenshot_is_saved_under_build(session: dict[str, Any]) -> None:
    assert SCREENSHOT.is_file()
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert session["url"].endswith("/dashboard/"), session["url"]


def test_filtered_rows_are_the_apis_first_page(
    session: dict[str, Any], live_server: str, plan: dict[str, Any]
) -> None:
    answer = post_graphql(
        live_server, PAGE_QUERY, {"filter": api_filter(plan), "first": PAGE_SIZE}
    )["instances"]
    expected = [(n["id"], n["jobName"], str(n["instanceId"])) for n in answer["nodes"]]
    views = session["views"]
    shown = [(row["id"], row["jobName"], row["instanceId"]) for row in views["rows"]]
    assert expected, "the chosen filters match nothing, so the page proved nothing"
    assert shown == expected
    assert len(shown) == min(answer["totalCount"], PAGE_SIZE)
    assert int(views["totalCount"]) == answer["totalCount"]
    assert views["summary"].endswith(f"of {answer['totalCount']:,}"), views["summary"]
    # The status column shows only the statuses ticked.
    assert {row["cells"][2] for row in views["rows"]} <= set(plan["statuses"])


def test_next_page_is_the_apis_next_page(
    session: dict[str, Any], live_server: str, plan: dict[str, Any]
) -> None:
    variables = {"filter": api_filter(plan), "first": PAGE_SIZE}
    first = post_graphql(live_server, PAGE_QUERY, variables)["instances"]
    assert first["totalCount"] > PAGE_SIZE, "the filters fit one page, so paging proved nothing"
    after = first["pageInfo"]["endCursor"]
    second = post_graphql(live_server, PAGE_QUERY, {**variables, "after": after})["instances"]
    assert session["secondPage"]["rows"] == [n["id"] for n in second["nodes"]]
    assert session["secondPage"]["summary"].startswith(f"{PAGE_SIZE + 1}–")
    (request,) = session["pageRequests"]
    assert name_of(operation(request["query"])) == "DashboardInstances"
    assert request["variables"]["after"], "page 2 must be asked for with the cursor"
    assert request["workspace"] == WORKSPACE


def test_counts_per_status_equal_the_apis_total_count(
    session: dict[str, Any], live_server: str, plan: dict[str, Any]
) -> None:
    enum = post_graphql(live_server, STATUSES_QUERY)["__type"]["enumValues"]
    statuses = [value["name"] for value in enum]
    counts = session["views"]["counts"]
    assert sorted(counts) == sorted(statuses), "the page must count every InstanceStatus"
    expected = {
        status: post_graphql(
            live_server, COUNT_QUERY, {"filter": api_filter(plan, statuses=[status])}
        )["instances"]["totalCount"]
        for status in statuses
    }
    assert counts == expected
    assert sum(expected.values()) > 0
    window = {k: v for k, v in api_filter(plan).items() if k != "statuses"}
    everything = post_graphql(live_server, COUNT_QUERY, {"filter": window})
    assert sum(counts.values()) == everything["instances"]["totalCount"]


def test_timeline_draws_the_latest_started_runs(
    session: dict[str, Any], live_server: str, plan: dict[str, Any]
) -> None:
    answer = post_graphql(
        live_server, TIMELINE_QUERY, {"filter": api_filter(plan), "first": TIMELINE_SIZE}
    )["instances"]["nodes"]
    expected = {n["id"] for n in answer if n["startTime"] is not None}
    bars = session["views"]["timeline"]
    assert expected, "no started runs in the window, so the timeline proved nothing"
    assert {bar["id"] for bar in bars} == expected
    assert len(bars) == len(expected)
    assert all(bar["width"] > 0 for bar in bars)


def test_drill_down_shows_the_instances_nodes(session: dict[str, Any], live_server: str) -> None:
    drill = session["drillDown"]
    first_row = session["views"]["rows"][0]
    assert (drill["jobName"], drill["instanceId"]) == (
        first_row["jobName"],
        first_row["instanceId"],
    )
    answer = post_graphql(
        live_server, NODES_QUERY, {"job": drill["jobName"], "id": int(drill["instanceId"])}
    )
    expected = [node["name"] for node in answer["instance"]["nodes"]["nodes"]]
    assert expected, "the instance has no nodes, so the drill-down proved nothing"
    assert drill["names"] == expected


def operation(document: str) -> OperationDefinitionNode:
    definitions = parse(document).definitions
    assert len(definitions) == 1, f"one operation per request, got {len(definitions)}"
    only = definitions[0]
    assert isinstance(only, OperationDefinitionNode)
    return only


def fields_of(selection_set: SelectionSetNode | None) -> list[FieldNode]:
    """The fields of a selection set, with those of inline fragments (`... on Instance`)."""
    assert selection_set is not None
    fields: list[FieldNode] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            fields.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            fields.extend(fields_of(selection.selection_set))
    return fields


def leaf_names(field: FieldNode, *path: str) -> set[str]:
    """The leaf fields selected under `field` -> path[0] -> path[1] ..."""
    for name in path:
        (field,) = [child for child in fields_of(field.selection_set) if child.name.value == name]
    return {child.name.value for child in fields_of(field.selection_set)}


def name_of(op: OperationDefinitionNode) -> str:
    assert op.name is not None
    return op.name.value


def top_fields(op: OperationDefinitionNode) -> list[FieldNode]:
    return fields_of(op.selection_set)


def test_each_view_sends_one_query_that_selects_only_what_it_shows(
    session: dict[str, Any],
) -> None:
    applied = {name_of(operation(r["query"])): r for r in session["applied"]}
    assert len(session["applied"]) == 3, [r["query"] for r in session["applied"]]
    assert set(applied) == {"DashboardStatusCounts", "DashboardInstances", "DashboardTimeline"}
    (drill,) = session["drillDownRequests"]
    requests = [*session["applied"], drill]
    assert {r["workspace"] for r in requests} == {WORKSPACE}
    assert {r["authorization"] for r in requests} == {None}, "no token was typed in"
    views = session["views"]

    (instances,) = top_fields(operation(applied["DashboardInstances"]["query"]))
    shown = set(views["instancesFields"])
    # `id` is the key the drill-down fetches by; everything else is a column of the table.
    assert leaf_names(instances, "nodes") == shown | {"id"}

    (timeline,) = top_fields(operation(applied["DashboardTimeline"]["query"]))
    assert leaf_names(timeline, "nodes") == set(views["timelineFields"]) | {"id"}

    counts = top_fields(operation(applied["DashboardStatusCounts"]["query"]))
    assert sorted(f.alias.value for f in counts if f.alias) == sorted(views["counts"])
    for field in counts:
        assert field.name.value == "instances"
        assert [f.name.value for f in fields_of(field.selection_set)] == ["totalCount"]

    (node,) = top_fields(operation(drill["query"]))
    assert drill["variables"]["id"] == session["drillDown"]["id"]
    assert leaf_names(node, "nodes", "nodes") == set(session["drillDown"]["fields"])


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server that needs a token (read, `default` only), with a small demo data set."""
    tokens = [
        {
            "name": "dashboard-e2e",
            "sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
            "workspaces": ["default"],
            "scopes": ["read"],
        }
    ]
    with serve(
        tmp_path_factory.mktemp("guarded_server"),
        JOBQL_TOKENS=json.dumps(tokens),
        JOBQL_DEMO_INSTANCES="300",
    ) as base_url:
        yield base_url


def test_token_travels_as_a_bearer_header(
    node_tool: NodeTool, chromium: str, guarded_server: str, tmp_path: Path
) -> None:
    # The page itself needs no token; its data does.
    with pytest.raises(urllib.error.HTTPError) as refused:
        post_graphql(guarded_server, COUNT_QUERY, workspace="default")
    refused.value.close()  # an HTTPError holds the response open
    assert refused.value.code == 401
    wide_open = {"workspace": "default", "statuses": [], "planTimeAfter": "", "planTimeBefore": ""}

    without = run_dashboard(
        node_tool,
        chromium,
        guarded_server,
        tmp_path / "no-token.png",
        {**wide_open, "expectError": True},
    )
    assert "UNAUTHENTICATED" in without["views"]["errorCodes"].split()
    assert without["views"]["rows"] == []

    with_token = run_dashboard(
        node_tool, chromium, guarded_server, tmp_path / "token.png", {**wide_open, "token": TOKEN}
    )
    assert with_token["views"]["error"] is None
    assert with_token["views"]["rows"], "with the token the page must show instances"
    sent = [*with_token["applied"], *with_token["drillDownRequests"]]
    assert {r["authorization"] for r in sent} == {f"Bearer {TOKEN}"}

    # A workspace the token does not cover is refused, and the page says so.
    elsewhere = run_dashboard(
        node_tool,
        chromium,
        guarded_server,
        tmp_path / "forbidden.png",
        {**wide_open, "workspace": "ws1", "token": TOKEN, "expectError": True},
    )
    assert "FORBIDDEN" in elsewhere["views"]["errorCodes"].split()
