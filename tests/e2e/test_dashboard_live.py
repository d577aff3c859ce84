"""/dashboard with "Live" ticked, in a real browser: writes made by another client show up in the
counts, the list and the open drill-down without a reload, and the page comes back after a
network drop with its last cursor (dashboard_live.mjs). The screenshot is build/dashboard-live.png.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO_ROOT, serve

pytestmark = pytest.mark.e2e

SCREENSHOT = REPO_ROOT / "build" / "dashboard-live.png"
INSTANCE_ID = 424_242

NodeTool = Callable[..., subprocess.CompletedProcess[str]]


def test_live_dashboard_follows_writes_and_survives_a_drop(
    node_tool: NodeTool, chromium: str, tmp_path: Path, artifacts: list[str]
) -> None:
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    plan = {"workspace": "default", "job": "live_dashboard", "instanceId": INSTANCE_ID}
    with serve(tmp_path, JOBQL_DEMO_INSTANCES="300") as base_url:
        run = node_tool(
            "dashboard_live.mjs", base_url, str(SCREENSHOT), json.dumps(plan), CHROMIUM=chromium
        )
    assert run.returncode == 0, run.stderr
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
