"""/dashboard in a real browser: what each view shows is what the API answers, one query per view.

dashboard.mjs applies filters chosen here from the server's own data (a non-default workspace,
the two most frequent statuses, a plan time window), reads every view (the job charts from their
Chart.js instances) and opens a drill-down; the tests below ask /graphql the same questions and
compare. A second session runs on known data, on SQLite and PostgreSQL: the charts' numbers are
also checked against values computed here, after picking a job and a window, after a write made
with Live ticked, and for jobs beyond the job picker's first page (reached with "More jobs" and
with a search by name). The screenshots are the CI artifacts build/dashboard.png and
build/dashboard-stats-<backend>.png.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
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

from tests.conftest import drop_postgres_database
from tests.e2e.conftest import (
    REPO_ROOT,
    _create_postgres_database,
    _jobql,
    _server_env,
    serve,
)

pytestmark = pytest.mark.e2e

WORKSPACE = "ws1"  # not `default`: proves the page sends the workspace header
SCREENSHOT = REPO_ROOT / "build" / "dashboard.png"
PAGE_SIZE = 50  # examples/dashboard/queries.js
TIMELINE_SIZE = 40
JOBS_SIZE = 200
SLOWEST_NODES = 5
DEFAULT_STATS_DAYS = 30
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
COUNTS_BY_STATUS_QUERY = """
query ($filter: InstanceFilter) {
  instances(filter: $filter) { totalCount countsByStatus { status count } }
}"""
JOBS_QUERY = "query ($first: Int!) { jobs(first: $first) { nodes { name } } }"
JOBS_PAGE_QUERY = """
query ($filter: JobFilter, $first: Int!, $after: String) {
  jobs(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { name }
  }
}"""
JOB_STATS_QUERY = """
query ($name: String!, $window: StatsWindow!) {
  job(name: $name) {
    instances(first: 1) { nodes { planTime } }
    stats(window: $window, bucket: DAY) {
      count
      timeline { start count durationMs { p50 p95 } countsByStatus { status count } }
    }
  }
}"""
LATEST_RUN_QUERY = """
query ($name: String!) { job(name: $name) { instances(first: 1) { nodes { planTime } } } }"""
NODE_STATS_QUERY = """
query ($job: String!, $id: Long!, $first: Int!) {
  instance(jobName: $job, instanceId: $id) {
    nodeStats(orderBy: SLOWEST, first: $first) { name runs failures durationMs { p50 p95 } }
  }
}"""
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


def plan_window(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan time range alone: what the counts panel counts in (every status)."""
    return {k: v for k, v in api_filter(plan).items() if k != "statuses"}


def check_counts(
    views: dict[str, Any], base_url: str, window: dict[str, Any], workspace: str
) -> None:
    """The counts shown are the API's `countsByStatus`, every status in the enum's order."""
    enum = post_graphql(base_url, STATUSES_QUERY, workspace=workspace)["__type"]["enumValues"]
    statuses = [value["name"] for value in enum]
    answer = post_graphql(base_url, COUNTS_BY_STATUS_QUERY, {"filter": window}, workspace=workspace)
    by_status = answer["instances"]["countsByStatus"]
    assert [entry["status"] for entry in by_status] == statuses
    assert views["countsOrder"] == statuses, "the page must count every InstanceStatus, in order"
    assert views["counts"] == {entry["status"]: entry["count"] for entry in by_status}
    assert views["countsShown"] == {
        entry["status"]: f"{entry['count']:,}" for entry in by_status
    }, "the numbers drawn are the counts"
    assert sum(views["counts"].values()) == answer["instances"]["totalCount"] > 0


def test_counts_per_status_equal_the_apis_counts_by_status(
    session: dict[str, Any], live_server: str, plan: dict[str, Any]
) -> None:
    check_counts(session["views"], live_server, plan_window(plan), WORKSPACE)


def test_counts_are_one_counts_by_status_field_not_an_alias_per_status(
    session: dict[str, Any], plan: dict[str, Any]
) -> None:
    check_counts_request(session, plan_window(plan))


def check_counts_request(session: dict[str, Any], window: dict[str, Any]) -> None:
    """The counts panel asks once: `instances { countsByStatus { status count } }`, no aliases."""
    (counts,) = [
        r for r in session["applied"] if name_of(operation(r["query"])) == "DashboardStatusCounts"
    ]
    (field,) = top_fields(operation(counts["query"]))
    assert field.name.value == "instances"
    assert field.alias is None
    assert leaf_names(field) == {"countsByStatus"}
    assert leaf_names(field, "countsByStatus") == {"status", "count"}
    assert counts["variables"]["filter"] == window, "every status, in the plan time range"
    # No request of the session counts per status the old way (an aliased `instances` each).
    sent = [
        *session["applied"],
        *session["drillDownRequests"],
        *session["pickRequests"],
        *session["liveRequests"],
    ]
    for request in sent:
        op = operation(request["query"])
        for top in top_fields(op):
            assert top.alias is None, f"an aliased field was sent: {request['query']}"
        if name_of(op) == "DashboardStatusCounts":
            assert request["query"].count("countsByStatus") == 1


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


def check_slowest_nodes(base_url: str, workspace: str, drill: dict[str, Any]) -> list[str]:
    """The drill-down's slowest nodes are the API's `nodeStats(orderBy: SLOWEST, first: 5)`."""
    variables = {"job": drill["jobName"], "id": int(drill["instanceId"]), "first": SLOWEST_NODES}
    answer = post_graphql(base_url, NODE_STATS_QUERY, variables, workspace=workspace)
    expected = [
        (n["name"], n["runs"], n["failures"], n["durationMs"]["p50"], n["durationMs"]["p95"])
        for n in answer["instance"]["nodeStats"]
    ]
    assert expected, "the job's nodes ran nowhere in the window, so the list proved nothing"
    shown = [(n["name"], n["runs"], n["failures"], n["p50"], n["p95"]) for n in drill["slowest"]]
    assert shown == expected
    assert [n["cells"][:3] for n in drill["slowest"]] == [
        [name, str(runs), str(failures)] for name, runs, failures, _, _ in expected
    ]
    return [name for name, *_ in expected]


def test_drill_down_lists_the_slowest_nodes_of_the_job(
    session: dict[str, Any], live_server: str
) -> None:
    names = check_slowest_nodes(live_server, WORKSPACE, session["drillDown"])
    assert len(names) <= SLOWEST_NODES


DAY = timedelta(days=1)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso_ms(moment: datetime) -> str:
    """As JavaScript's toISOString: `2025-05-31T23:59:59.999Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def expected_window(latest: str | None, days: int) -> dict[str, str]:
    """The charts' window: `days` UTC days ending with the day of the job's latest planned run
    (today when that is later, or when there is none); `planTimeAfter` is exclusive."""
    now = datetime.now(UTC)
    anchor = min(parse_time(latest), now) if latest else now
    end = datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC) + DAY
    return {
        "planTimeAfter": iso_ms(end - days * DAY - timedelta(milliseconds=1)),
        "planTimeBefore": iso_ms(end),
    }


def failure_rate(bucket: dict[str, Any]) -> float | None:
    if bucket["count"] == 0:
        return None
    (failed,) = [int(e["count"]) for e in bucket["countsByStatus"] if e["status"] == "FAIL"]
    return failed / int(bucket["count"])


def assert_drawn(chart: dict[str, Any]) -> None:
    """Every value is drawn where the y axis puts it, inside the axis; a null draws nothing."""
    low, high = chart["yRange"]
    width, height = chart["size"]
    assert width > 0
    assert height > 0
    assert high > low
    for dataset in chart["datasets"]:
        assert not dataset["hidden"], dataset["label"]
        for value, drawn in zip(dataset["data"], dataset["drawn"], strict=True):
            if value is None:
                assert drawn is None
                continue
            assert low <= value <= high, (dataset["label"], value, chart["yRange"])
            assert drawn == pytest.approx(value, abs=(high - low) * 1e-6), dataset["label"]


def check_job_charts(
    base_url: str,
    workspace: str,
    shown: dict[str, Any],
    *,
    job: str,
    days: int,
    window: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The job charts hold the API's numbers for `job` over `days`; returns the API's stats. The
    window is the one ending with the job's latest run now, unless `window` (drawn before a run
    written later moved it) says."""
    assert (shown["job"], shown["days"]) == (job, days)
    if window is None:
        latest = post_graphql(base_url, LATEST_RUN_QUERY, {"name": job}, workspace=workspace)
        runs = latest["job"]["instances"]["nodes"]
        window = expected_window(runs[0]["planTime"] if runs else None, days)
    assert {key: shown[key] for key in window} == window
    variables = {"name": job, "window": window}
    stats = post_graphql(base_url, JOB_STATS_QUERY, variables, workspace=workspace)["job"]["stats"]
    timeline = stats["timeline"]
    assert shown["count"] == stats["count"]
    labels = [bucket["start"][:10] for bucket in timeline]
    assert len(labels) == days, "a label per UTC day of the window"
    duration, failures = shown["duration"], shown["failureRate"]
    assert (duration["type"], failures["type"]) == ("line", "bar")
    assert duration["labels"] == labels
    assert failures["labels"] == labels
    p50, p95 = duration["datasets"]
    assert (p50["label"], p95["label"]) == ("p50", "p95")
    assert p50["data"] == [bucket["durationMs"]["p50"] for bucket in timeline]
    assert p95["data"] == [bucket["durationMs"]["p95"] for bucket in timeline]
    (rate,) = failures["datasets"]
    assert rate["data"] == [failure_rate(bucket) for bucket in timeline]
    assert_drawn(duration)
    assert_drawn(failures)
    return dict(stats)


def test_job_charts_equal_the_apis_stats(session: dict[str, Any], live_server: str) -> None:
    charts = session["jobStats"]
    jobs = post_graphql(live_server, JOBS_QUERY, {"first": JOBS_SIZE})["jobs"]["nodes"]
    names = [job["name"] for job in jobs]
    assert charts["applied"]["jobChoices"] == names
    assert charts["applied"]["windowChoices"] == [7, 30, 90]
    # Before anything is picked: the first job of the list, over 30 days.
    first = check_job_charts(
        live_server, WORKSPACE, charts["applied"], job=names[0], days=DEFAULT_STATS_DAYS
    )
    # Opening an instance shows its job.
    drilled = check_job_charts(
        live_server,
        WORKSPACE,
        charts["drillDown"],
        job=session["drillDown"]["jobName"],
        days=DEFAULT_STATS_DAYS,
    )
    durations = [b["durationMs"]["p50"] for s in (first, drilled) for b in s["timeline"]]
    assert any(value is not None for value in durations), (
        "no durations, so the charts proved nothing"
    )


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
    assert len(session["applied"]) == 5, [r["query"] for r in session["applied"]]
    assert set(applied) == {
        "DashboardStatusCounts",
        "DashboardInstances",
        "DashboardTimeline",
        "DashboardJobs",
        "DashboardJobStats",
    }
    drills = [(name_of(operation(r["query"])), r) for r in session["drillDownRequests"]]
    (drill,) = [r for name, r in drills if name == "DashboardInstanceNodes"]
    # The drilled instance's job is drawn with one more request, unless the charts showed it.
    job_changed = session["jobStats"]["applied"]["job"] != session["drillDown"]["jobName"]
    assert sorted(name for name, _ in drills) == sorted(
        ["DashboardInstanceNodes", *(["DashboardJobStats"] if job_changed else [])]
    )
    requests = [*session["applied"], *session["drillDownRequests"]]
    assert {r["workspace"] for r in requests} == {WORKSPACE}
    assert {r["authorization"] for r in requests} == {None}, "no token was typed in"
    views = session["views"]

    (instances,) = top_fields(operation(applied["DashboardInstances"]["query"]))
    shown = set(views["instancesFields"])
    # `id` is the key the drill-down fetches by; everything else is a column of the table.
    assert leaf_names(instances, "nodes") == shown | {"id"}

    (timeline,) = top_fields(operation(applied["DashboardTimeline"]["query"]))
    assert leaf_names(timeline, "nodes") == set(views["timelineFields"]) | {"id"}

    # The job picker: names, and each job's latest plan time (where its window ends).
    (jobs,) = top_fields(operation(applied["DashboardJobs"]["query"]))
    assert leaf_names(jobs, "nodes") == {"name", "instances"}
    assert leaf_names(jobs, "nodes", "instances", "nodes") == {"planTime"}
    # The charts: the summary's totals and, per day, p50/p95 and the counts the failure rate
    # is drawn from.
    (job,) = top_fields(operation(applied["DashboardJobStats"]["query"]))
    assert leaf_names(job) == {"stats"}
    assert leaf_names(job, "stats") == {"count", "successRate", "durationMs", "timeline"}
    assert leaf_names(job, "stats", "durationMs") == {"p50", "p95"}
    assert leaf_names(job, "stats", "timeline") == {
        "start",
        "count",
        "durationMs",
        "countsByStatus",
    }
    assert leaf_names(job, "stats", "timeline", "durationMs") == {"p50", "p95"}

    (node,) = top_fields(operation(drill["query"]))
    assert drill["variables"]["id"] == session["drillDown"]["id"]
    assert leaf_names(node, "nodes", "nodes") == set(session["drillDown"]["fields"])
    assert leaf_names(node, "nodeStats") == {"name", "runs", "failures", "durationMs"}
    assert leaf_names(node, "nodeStats", "durationMs") == {"p50", "p95"}
    assert session["drillDown"]["slowestFields"] == ["name", "runs", "failures", "p50", "p95"]
    assert drill["variables"]["slowest"] == SLOWEST_NODES


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


# -- Known data: the job charts and the slowest nodes, on SQLite and PostgreSQL ------------------

STATS_WORKSPACE = "default"
RECORD_MUTATION = """
mutation ($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome userErrors { message } } }
}"""
# (day, status, duration in seconds or None for a run without an end), per job. etl_orders is
# first by name, so the charts start with it; the newest run is etl_users', so the drill-down
# (the first row of the table) switches the charts to etl_users. The two warehouse_ jobs come
# after FILLERS more jobs by name: beyond the job picker's first page (JOBS_SIZE).
ORDERS = "etl_orders"
USERS = "etl_users"
FAR_PAGED = "warehouse_orders"
FAR_SEARCHED = "warehouse_users"
RUNS: dict[str, list[tuple[str, str, int | None]]] = {
    ORDERS: [
        ("2025-02-24", "SUCCESS", 50),
        ("2025-02-24", "FAIL", 70),
        ("2025-03-10", "SUCCESS", 60),
        ("2025-03-10", "SUCCESS", 90),
        ("2025-03-10", "FAIL", 30),
        ("2025-03-10", "SUCCESS", 120),
        ("2025-03-11", "SUCCESS", 100),
        ("2025-03-11", "SUCCESS", 100),
        # 2025-03-12: no run (a gap in both charts)
        ("2025-03-13", "FAIL", 10),
        ("2025-03-13", "FAIL", 20),
        ("2025-03-13", "SUCCESS", 300),
        ("2025-03-14", "RUNNING", None),
        ("2025-03-15", "SUCCESS", 45),
        ("2025-03-15", "SUCCESS", 55),
        ("2025-03-15", "SUCCESS", 65),
        ("2025-03-15", "SUCCESS", 75),
        ("2025-03-15", "FAIL", 85),
        ("2025-03-16", "SUCCESS", 200),
        ("2025-03-16", "SUCCESS", 400),
    ],
    USERS: [
        ("2025-03-15", "SUCCESS", 30),
        ("2025-03-16", "SUCCESS", 40),
        ("2025-03-16", "FAIL", 50),
        ("2025-03-17", "SUCCESS", 35),
    ],
    FAR_PAGED: [
        ("2025-03-01", "SUCCESS", 200),
        ("2025-03-02", "FAIL", 30),
        ("2025-03-02", "SUCCESS", 220),
        ("2025-03-04", "SUCCESS", 180),
    ],
    FAR_SEARCHED: [
        ("2025-03-02", "SUCCESS", 15),
        ("2025-03-03", "SUCCESS", 25),
        ("2025-03-03", "FAIL", 5),
        ("2025-03-05", "SUCCESS", 20),
    ],
}
# filler_000 ... filler_239: one run each, planned before the dashboard's plan time range.
FILLERS = 240
FILLER_RUN = ("2025-01-10", "SUCCESS", 10)
# Node name -> base duration (s) of etl_users' runs; the n-th run's nodes take base * (1 + n/10).
# Six names, so `first: 5` leaves one out; by p95, slowest first:
USER_NODES = {"extract": 5, "transform": 40, "load": 20, "validate": 3, "publish": 12, "cleanup": 1}
SLOWEST_USER_NODES = ["transform", "load", "publish", "extract", "validate"]
# The dashboard's filters: every status, a plan time range holding every run.
STATS_PLAN_AFTER = "2025-02-01T00:00"
STATS_PLAN_BEFORE = "2025-04-01T00:00"
# Picked in the charts after the drill-down, then a FAIL run of 100 s on the window's last day
# is recorded from outside the page with Live ticked.
PICKED_DAYS = 7
LIVE_RUN = ("2025-03-16", "FAIL", 100)
LIVE_INDEX = 99
# Beyond the first page: "More jobs" reaches warehouse_orders, a search warehouse_users; then a
# search that does not list it, and a run of warehouse_users recorded from outside the page three
# days after its last one, which moves its window (2025-03-02 .. 2025-03-08).
JOBS_SEARCH = "warehouse_u"
JOBS_SEARCH_HIDING = "filler_1"
FAR_LIVE_RUN = ("2025-03-08", "SUCCESS", 40)
# etl_orders' last day is 2025-03-16, so its 7-day window is 2025-03-10 .. 2025-03-16.
ORDERS_WEEK = {
    "planTimeAfter": "2025-03-09T23:59:59.999Z",
    "planTimeBefore": "2025-03-17T00:00:00.000Z",
}


def run_input(job: str, index: int, run: tuple[str, str, int | None]) -> dict[str, Any]:
    day, status, seconds = run
    plan_time = datetime.fromisoformat(f"{day}T06:00:00+00:00") + timedelta(hours=index % 12)
    start = plan_time + timedelta(minutes=1)
    item: dict[str, Any] = {
        "jobName": job,
        "instanceId": 1000 + index,
        "status": status,
        "planTime": iso_ms(plan_time),
        "startTime": iso_ms(start),
    }
    if seconds is not None:
        item["endTime"] = iso_ms(start + timedelta(seconds=seconds))
    if job == USERS:
        nodes = []
        for name, base in USER_NODES.items():
            node_seconds = base * (1 + index / 10)
            nodes.append(
                {
                    "name": name,
                    "type": "SQL",
                    "status": "FAIL" if status == "FAIL" and name == "load" else "SUCCESS",
                    "startTime": iso_ms(start),
                    "endTime": iso_ms(start + timedelta(seconds=node_seconds)),
                }
            )
        item["nodes"] = nodes
    return item


def seed_known_runs(base_url: str) -> None:
    items = [run_input(job, i, run) for job, runs in RUNS.items() for i, run in enumerate(runs)]
    items += [run_input(f"filler_{i:03d}", 0, FILLER_RUN) for i in range(FILLERS)]
    answer = post_graphql(base_url, RECORD_MUTATION, {"input": items}, workspace=STATS_WORKSPACE)
    results = answer["recordInstances"]["results"]
    assert all(not result["userErrors"] for result in results), results


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the two nearest values."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def known_days(job: str, days: int, extra: list[tuple[str, str, int | None]]) -> list[Any]:
    """Per day of the window ending with the job's last day: (day, p50, p95, failure rate)."""
    runs = RUNS[job] + extra
    last = datetime.fromisoformat(max(day for day, _, _ in runs))
    result = []
    for offset in range(days - 1, -1, -1):
        day = (last - offset * DAY).date().isoformat()
        today = [(status, s) for d, status, s in runs if d == day]
        durations = [s * 1000.0 for _, s in today if s is not None]
        fails = sum(1 for status, _ in today if status == "FAIL")
        result.append(
            (
                day,
                percentile_cont(durations, 0.5),
                percentile_cont(durations, 0.95),
                fails / len(today) if today else None,
            )
        )
    return result


def assert_known(shown: dict[str, Any], job: str, days: int, extra: list[Any]) -> None:
    """The charts hold the values computed here from the runs written (the API's, exactly)."""
    expected = known_days(job, days, extra)
    assert shown["duration"]["labels"] == [day for day, *_ in expected]
    p50, p95 = (dataset["data"] for dataset in shown["duration"]["datasets"])
    assert_close(p50, [row[1] for row in expected])
    assert_close(p95, [row[2] for row in expected])
    (rate,) = shown["failureRate"]["datasets"]
    assert_close(rate["data"], [row[3] for row in expected])


def assert_close(shown: list[float | None], expected: list[float | None]) -> None:
    """Equal up to float rounding (the database's arithmetic is not Python's); None is None."""
    assert [value is None for value in shown] == [value is None for value in expected]
    for value, wanted in zip(shown, expected, strict=True):
        if wanted is not None:
            assert value == pytest.approx(wanted, rel=1e-9), (shown, expected)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stats_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(backend, base URL) of a server holding only the known runs above, on each database."""
    backend: str = request.param
    workdir = tmp_path_factory.mktemp(f"stats_server_{backend}")
    if backend == "sqlite":
        with serve(workdir, JOBQL_DEMO_INSTANCES="0") as base_url:
            seed_known_runs(base_url)
            yield backend, base_url
        return
    name, engine = asyncio.run(_create_postgres_database())
    url = engine.url.render_as_string(hide_password=False)
    try:
        _jobql(["migrate"], workdir, {**_server_env(), "JOBQL_DATABASE_URL": url})
        with serve(workdir, JOBQL_DATABASE_URL=url) as base_url:
            seed_known_runs(base_url)
            yield backend, base_url
    finally:
        asyncio.run(drop_postgres_database(name))


@pytest.fixture(scope="module")
def stats_session(
    node_tool: NodeTool, chromium: str, stats_server: tuple[str, str], artifacts: list[str]
) -> dict[str, Any]:
    backend, base_url = stats_server
    screenshot = REPO_ROOT / "build" / f"dashboard-stats-{backend}.png"
    plan = {
        "workspace": STATS_WORKSPACE,
        "statuses": [],
        "planTimeAfter": STATS_PLAN_AFTER,
        "planTimeBefore": STATS_PLAN_BEFORE,
        "statsJob": ORDERS,
        "statsDays": PICKED_DAYS,
        "liveWrite": run_input(ORDERS, LIVE_INDEX, LIVE_RUN),
        "liveCount": 1 + sum(1 for day, _, _ in RUNS[ORDERS] if day >= "2025-03-10"),
        "farJobs": {
            "paged": FAR_PAGED,
            "search": JOBS_SEARCH,
            "searched": FAR_SEARCHED,
            "hiding": JOBS_SEARCH_HIDING,
            "liveWrite": run_input(FAR_SEARCHED, LIVE_INDEX, FAR_LIVE_RUN),
            "liveCount": 1 + sum(1 for day, _, _ in RUNS[FAR_SEARCHED] if day >= "2025-03-02"),
        },
    }
    result = run_dashboard(node_tool, chromium, base_url, screenshot, plan)
    artifacts.append(f"dashboard stats screenshot ({backend}): {screenshot}")
    return result


def test_known_data_counts_are_one_counts_by_status_field(
    stats_session: dict[str, Any], stats_server: tuple[str, str]
) -> None:
    _, base_url = stats_server
    window = {"planTimeAfter": utc(STATS_PLAN_AFTER), "planTimeBefore": utc(STATS_PLAN_BEFORE)}
    check_counts_request(stats_session, window)
    # The counts were read before the live write: the API's now, less that run.
    answer = post_graphql(
        base_url, COUNTS_BY_STATUS_QUERY, {"filter": window}, workspace=STATS_WORKSPACE
    )
    api = {entry["status"]: entry["count"] for entry in answer["instances"]["countsByStatus"]}
    api[LIVE_RUN[1]] -= 1
    api[FAR_LIVE_RUN[1]] -= 1
    written = Counter(status for runs in RUNS.values() for _, status, _ in runs)
    views = stats_session["views"]
    assert views["countsOrder"] == list(api)
    assert views["counts"] == api == {status: written[status] for status in api}


def test_known_data_charts_are_the_runs_written_and_the_apis(
    stats_session: dict[str, Any], stats_server: tuple[str, str]
) -> None:
    _, base_url = stats_server
    charts = stats_session["jobStats"]
    assert charts["applied"]["jobChoices"][:3] == [ORDERS, USERS, "filler_000"]
    # Before anything is picked: etl_orders (first by name) over 30 days, before the live write.
    applied = charts["applied"]
    assert (applied["job"], applied["days"]) == (ORDERS, DEFAULT_STATS_DAYS)
    assert applied["planTimeBefore"] == ORDERS_WEEK["planTimeBefore"]
    assert_known(applied, ORDERS, DEFAULT_STATS_DAYS, [])
    assert_drawn(applied["duration"])
    assert_drawn(applied["failureRate"])
    # The drill-down's job (nothing written to it since): the API's numbers, and ours.
    drilled = charts["drillDown"]
    check_job_charts(base_url, STATS_WORKSPACE, drilled, job=USERS, days=DEFAULT_STATS_DAYS)
    assert_known(drilled, USERS, DEFAULT_STATS_DAYS, [])
    # Picked: etl_orders over 7 days, before the live write.
    picked = charts["picked"]
    assert (picked["job"], picked["days"]) == (ORDERS, PICKED_DAYS)
    assert {key: picked[key] for key in ORDERS_WEEK} == ORDERS_WEEK
    assert_known(picked, ORDERS, PICKED_DAYS, [])
    assert picked["count"] == stats_session["jobStats"]["live"]["count"] - 1
    # After the write made with Live ticked: redrawn with it, equal to the API's now.
    live = charts["live"]
    check_job_charts(base_url, STATS_WORKSPACE, live, job=ORDERS, days=PICKED_DAYS)
    assert_known(live, ORDERS, PICKED_DAYS, [LIVE_RUN])
    (rate,) = live["failureRate"]["datasets"]
    assert rate["data"][-1] == pytest.approx(1 / 3), "2025-03-16: 1 FAIL of 3 runs"


def test_known_data_picking_a_job_and_a_window_sends_one_request_each(
    stats_session: dict[str, Any],
) -> None:
    picks = stats_session["pickRequests"]
    assert [name_of(operation(r["query"])) for r in picks] == ["DashboardJobStats"] * 2
    assert picks[0]["variables"]["name"] == ORDERS
    assert picks[1]["variables"] == {"name": ORDERS, "window": ORDERS_WEEK}
    refreshed = {name_of(operation(r["query"])) for r in stats_session["liveRequests"]}
    # Live re-reads every view, the charts included (the job list too: a run can move the window).
    assert refreshed == {
        "DashboardStatusCounts",
        "DashboardInstances",
        "DashboardTimeline",
        "DashboardJobs",
        "DashboardJobStats",
    }


def test_known_data_slowest_nodes_are_the_apis_and_the_runs_written(
    stats_session: dict[str, Any], stats_server: tuple[str, str]
) -> None:
    _, base_url = stats_server
    drill = stats_session["drillDown"]
    assert drill["jobName"] == USERS, "the newest run is the first row"
    assert check_slowest_nodes(base_url, STATS_WORKSPACE, drill) == SLOWEST_USER_NODES
    runs = len(RUNS[USERS])
    for node in drill["slowest"]:
        seconds = [USER_NODES[node["name"]] * (1 + i / 10) for i in range(runs)]
        durations = [round(value * 1000) for value in seconds]
        assert node["runs"] == runs
        assert node["failures"] == (1 if node["name"] == "load" else 0)
        assert node["p50"] == pytest.approx(percentile_cont(durations, 0.5), rel=1e-9)
        assert node["p95"] == pytest.approx(percentile_cont(durations, 0.95), rel=1e-9)


# -- Known data: jobs beyond the picker's first page ---------------------------------------------


def jobs_page(
    base_url: str, *, after: str | None = None, search: str | None = None
) -> dict[str, Any]:
    """One page of the picker's size, as the API answers it (by name; `search`: a name prefix)."""
    variables = {
        "filter": None if search is None else {"nameStartsWith": search},
        "first": JOBS_SIZE,
        "after": after,
    }
    answer = post_graphql(base_url, JOBS_PAGE_QUERY, variables, workspace=STATS_WORKSPACE)
    page: dict[str, Any] = answer["jobs"]
    return page


def names_of(page: dict[str, Any]) -> list[str]:
    return [job["name"] for job in page["nodes"]]


def jobs_requests(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if name_of(operation(r["query"])) == "DashboardJobs"]


def test_known_data_job_picker_starts_with_the_apis_first_page(
    stats_session: dict[str, Any], stats_server: tuple[str, str]
) -> None:
    _, base_url = stats_server
    first = jobs_page(base_url)
    assert first["totalCount"] == len(RUNS) + FILLERS > JOBS_SIZE
    assert first["pageInfo"]["hasNextPage"]
    applied = stats_session["jobStats"]["applied"]
    assert applied["jobChoices"] == names_of(first)
    assert applied["jobsTotal"] == first["totalCount"]
    assert FAR_PAGED not in applied["jobChoices"]
    assert FAR_SEARCHED not in applied["jobChoices"]
    # One page of JOBS_SIZE, not the whole list.
    (request,) = jobs_requests(stats_session["applied"])
    assert request["variables"] == {"filter": None, "first": JOBS_SIZE, "after": None}


def test_known_data_more_jobs_reaches_a_job_beyond_the_first_page(
    stats_session: dict[str, Any], stats_server: tuple[str, str]
) -> None:
    _, base_url = stats_server
    far = stats_session["farJobs"]
    first = jobs_page(base_url)
    second = jobs_page(base_url, after=first["pageInfo"]["endCursor"])
    assert not second["pageInfo"]["hasNextPage"]
    # One click on "More jobs": the API's next page, asked for with the first page's cursor.
    (request,) = far["more"]["requests"]
    assert name_of(operation(request["query"])) == "DashboardJobs"
    assert request["variables"] == {
        "filter": None,
        "first": JOBS_SIZE,
        "after": first["pageInfo"]["endCursor"],
    }
    (listed,) = far["more"]["pages"]
    total = first["totalCount"]
    assert listed["choices"] == names_of(first) + names_of(second)
    assert FAR_PAGED in listed["choices"]
    assert (listed["listed"], listed["total"], listed["more"]) == (total, total, False)
    assert listed["shown"] == f"{total} of {total} jobs"
    # Picked: its charts are the API's and the runs written.
    picked = far["paged"]
    assert [name_of(operation(r["query"])) for r in picked["requests"]] == ["DashboardJobStats"]
    check_job_charts(base_url, STATS_WORKSPACE, picked["charts"], job=FAR_PAGED, days=PICKED_DAYS)
    assert_known(picked["charts"], FAR_PAGED, PICKED_DAYS, [])


def test_known_data_job_search_asks_the_api_by_name(
    stats_session: dict[str, Any], stats_server: tuple[str, str]
) -> None:
    _, base_url = stats_server
    far = stats_session["farJobs"]
    answer = jobs_page(base_url, search=JOBS_SEARCH)
    assert names_of(answer) == [FAR_SEARCHED]
    search = far["search"]
    (request,) = search["requests"]
    assert name_of(operation(request["query"])) == "DashboardJobs"
    assert request["variables"] == {
        "filter": {"nameStartsWith": JOBS_SEARCH},
        "first": JOBS_SIZE,
        "after": None,
    }
    # The jobs found, and the charts' job, kept although it does not match.
    picker = search["picker"]
    assert picker["choices"] == [*names_of(answer), FAR_PAGED]
    assert (picker["search"], picker["listed"], picker["total"], picker["more"]) == (
        JOBS_SEARCH,
        1,
        answer["totalCount"],
        False,
    )
    assert picker["shown"] == f'1 of 1 job starting with "{JOBS_SEARCH}"'
    searched = far["searched"]
    # Drawn before the live write (test_known_data_live_write_moves_the_window_...) moved it.
    week = {
        "planTimeAfter": "2025-02-26T23:59:59.999Z",
        "planTimeBefore": "2025-03-06T00:00:00.000Z",
    }
    check_job_charts(
        base_url,
        STATS_WORKSPACE,
        searched["charts"],
        job=FAR_SEARCHED,
        days=PICKED_DAYS,
        window=week,
    )
    assert_known(searched["charts"], FAR_SEARCHED, PICKED_DAYS, [])


def test_known_data_live_write_moves_the_window_of_a_job_not_listed(
    stats_session: dict[str, Any], stats_server: tuple[str, str]
) -> None:
    _, base_url = stats_server
    far = stats_session["farJobs"]
    hiding = jobs_page(base_url, search=JOBS_SEARCH_HIDING)
    assert FAR_SEARCHED not in names_of(hiding)
    assert far["hiding"]["picker"]["choices"] == [*names_of(hiding), FAR_SEARCHED]
    # Live re-read the list as searched, and the latest run of the charts' job, not in it: its
    # window now ends with the run written (the API's numbers, and ours).
    live = far["live"]
    (request,) = jobs_requests(live["requests"])
    assert request["variables"] == {
        "filter": {"nameStartsWith": JOBS_SEARCH_HIDING},
        "first": JOBS_SIZE,
        "after": None,
    }
    sent = [name_of(operation(r["query"])) for r in live["requests"]]
    assert sent.count("DashboardJobLatestRun") == 1
    check_job_charts(base_url, STATS_WORKSPACE, live["charts"], job=FAR_SEARCHED, days=PICKED_DAYS)
    assert live["charts"]["planTimeBefore"] == "2025-03-09T00:00:00.000Z"
    assert_known(live["charts"], FAR_SEARCHED, PICKED_DAYS, [FAR_LIVE_RUN])
    assert live["picker"]["choices"] == far["hiding"]["picker"]["choices"]
