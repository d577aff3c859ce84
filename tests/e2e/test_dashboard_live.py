"""/dashboard with "Live" ticked, in a real browser: writes made by another client show up in the
counts, the list and the open drill-down (its nodes and its slowest nodes) without a reload, and
the page comes back after a network drop with its last cursor (dashboard_live.mjs). The screenshot
is build/dashboard-live.png.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO_ROOT, serve
from tests.e2e.test_dashboard import (
    NODE_STATS_QUERY,
    SLOWEST_NODES,
    leaf_names,
    name_of,
    operation,
    post_graphql,
    top_fields,
)

pytestmark = pytest.mark.e2e

SCREENSHOT = REPO_ROOT / "build" / "dashboard-live.png"
WORKSPACE = "default"
JOB = "live_dashboard"
INSTANCE_ID = 424_242

NodeTool = Callable[..., subprocess.CompletedProcess[str]]


def test_live_dashboard_follows_writes_and_survives_a_drop(
    node_tool: NodeTool, chromium: str, tmp_path: Path, artifacts: list[str]
) -> None:
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    plan = {"workspace": WORKSPACE, "job": JOB, "instanceId": INSTANCE_ID}
    with serve(tmp_path, JOBQL_DEMO_INSTANCES="300") as base_url:
        run = node_tool(
            "dashboard_live.mjs", base_url, str(SCREENSHOT), json.dumps(plan), CHROMIUM=chromium
        )
        assert run.returncode == 0, run.stderr
        # Nothing was written after the page showed it: the API's answer now is what it shows.
        variables = {"job": JOB, "id": INSTANCE_ID, "first": SLOWEST_NODES}
        answer = post_graphql(base_url, NODE_STATS_QUERY, variables, workspace=WORKSPACE)
    seen = json.loads(run.stdout)
    artifacts.append(f"live dashboard screenshot: {SCREENSHOT}")
    assert seen["reloaded"] is False
    assert seen["steps"]["created"]["firstRow"] == str(INSTANCE_ID)
    assert seen["steps"]["afterDrop"]["firstRow"] in (str(INSTANCE_ID), str(INSTANCE_ID + 1))
    assert seen["steps"]["afterDrop"]["fails"] == seen["steps"]["created"]["fails"] + 1
    assert [row[:3] for row in seen["steps"]["drillDown"]] == [
        ["extract", "SQL", "SUCCESS"],
        ["load", "SQL", "FAIL"],
    ]
    events = [s for s in seen["subscribes"] if "instanceEvents" in s["query"]]
    # The first subscription starts from now; the one after the drop resumes after a cursor.
    assert events[0]["variables"]["after"] is None
    assert events[-1]["variables"]["after"]
    assert any("instanceById" in s["query"] for s in seen["subscribes"])

    # The drill-down's slowest nodes followed the node runs written elsewhere: `load` (50 s) first,
    # then `extract` (120 s, after a burst of two writes), and they are the API's `nodeStats`.
    load, extract = seen["steps"]["loadSlowest"], seen["steps"]["extractSlowest"]
    assert [(name, p95) for name, *_, p95 in load] == [("load", 50_000), ("extract", 10_000)]
    assert [(name, p95) for name, *_, p95 in extract] == [("extract", 120_000), ("load", 50_000)]
    expected = [
        [n["name"], n["runs"], n["failures"], n["durationMs"]["p50"], n["durationMs"]["p95"]]
        for n in answer["instance"]["nodeStats"]
    ]
    assert extract == expected
    # One `nodeStats` read per change of the instance at most (a burst may be one), each asking
    # for the open drill-down's slowest nodes only.
    slowest = seen["steps"]["slowest"]
    assert 2 <= slowest["reads"] <= slowest["pushes"], slowest
    for read in seen["slowestReads"]:
        op = operation(read["query"])
        assert name_of(op) == "DashboardSlowestNodes"
        (node,) = top_fields(op)
        assert leaf_names(node) == {"nodeStats"}
        assert leaf_names(node, "nodeStats") == {"name", "runs", "failures", "durationMs"}
        assert read["variables"] == {"id": slowest["drillDownId"], "slowest": SLOWEST_NODES}
