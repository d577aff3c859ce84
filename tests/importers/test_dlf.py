"""DLF lists and instance detail: codes, absent fields, workspaces, nodes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobql.importers import dlf_v1_detail, dlf_v1_list, dlf_v2_list
from tests.importers.support import example, utc


def v2_body(**changes: Any) -> str:
    instance = {
        "job_name": "job_batch",
        "instance_id": 1,
        "status": "success",
        "plan_time": 1551671580000,
        **changes,
    }
    return json.dumps({"total": 1, "instances": [instance]})


@pytest.mark.parametrize(
    ("code", "member"),
    [(0, "GENERAL"), (2, "MANUAL"), (5, "PATCH_DATA"), (6, "SUBJOB"), (7, "ONE_OFF")],
)
def test_instance_types(code: int, member: str) -> None:
    values = dlf_v2_list.parse(v2_body(instance_type=code), source="d").instances[0].values
    assert values["instance_type"] == member


@pytest.mark.parametrize(
    ("status", "member"),
    [
        ("waiting", "WAITING"),
        ("running", "RUNNING"),
        ("success", "SUCCESS"),
        ("fail", "FAIL"),
        ("running-exception", "RUNNING_EXCEPTION"),
        ("skip-by-depend", "SKIP_BY_DEPEND"),
        ("freeze", "FREEZE"),
        ("pause", "PAUSE"),
        ("manual-stop", "MANUAL_STOP"),
    ],
)
def test_dlf_statuses(status: str, member: str) -> None:
    values = dlf_v2_list.parse(v2_body(status=status), source="d").instances[0].values
    assert values["status"] == member


def test_absent_and_null_fields_stay_out_of_values() -> None:
    body = v2_body(end_time=None, execute_time=None, job_id=None, force_success=True)
    [record] = dlf_v2_list.parse(body, source="d").instances
    assert record.values == {
        "status": "SUCCESS",
        "plan_time": utc(2019, 3, 4, 3, 53, 0),
        "force_success": True,
    }
    assert record.job_values == {}


def test_workspace_comes_from_the_caller() -> None:
    body = example("000_example1.json")
    assert {r.workspace for r in dlf_v1_list.parse(body, source="d").instances} == {"default"}
    parsed = dlf_v1_list.parse(body, source="d", workspace="ws2")
    assert {r.workspace for r in parsed.instances} == {"ws2"}
    assert [j.workspace for j in parsed.jobs] == ["ws2"]


def test_sub_job_names_are_kept_as_they_are() -> None:
    parsed = dlf_v1_list.parse(example("000_example3.json"), source="d")
    assert [j.name for j in parsed.jobs] == ["job_sms_DLI_SMS_PROCESS"]
    assert parsed.jobs[0].parent_name is None  # linked by the `<P>_<node>` rule in storage


def detail(**changes: Any) -> str:
    body = {
        "jobName": "job_batch",
        "instanceId": 34765,
        "status": "running",
        "planTime": 1551671580000,
        **changes,
    }
    return json.dumps(body)


def node(name: str, **changes: Any) -> dict[str, Any]:
    return {"nodeName": name, "type": "Dummy", "status": "skip", **changes}


def test_nodes_keep_their_listed_order() -> None:
    names = ["z", "a", "m", "b"]
    parsed = dlf_v1_detail.parse(detail(nodes=[node(n) for n in names], total=4), source="d")
    nodes = parsed.instances[0].nodes
    assert nodes is not None
    assert [n.name for n in nodes] == names
    assert {n.values["status"] for n in nodes} == {"SKIP"}
    assert parsed.warnings == []


def test_node_fields() -> None:
    full = node(
        "n",
        status="manual-stop",
        retryTimes=3,
        inputRowCount=2**40,
        speed=12.5,
        logPath="obs://x",
        planTime=1551671580000,
    )
    [record] = dlf_v1_detail.parse(detail(nodes=[full]), source="d").instances
    assert record.nodes is not None
    assert record.nodes[0].values == {
        "type": "Dummy",
        "status": "MANUAL_STOP",
        "plan_time": utc(2019, 3, 4, 3, 53, 0),
        "retry_times": 3,
        "input_row_count": 2**40,
        "speed": 12.5,
        "log_path": "obs://x",
    }


def test_nodes_absent_means_not_reported_and_empty_means_none() -> None:
    assert dlf_v1_detail.parse(detail(), source="d").instances[0].nodes is None
    assert dlf_v1_detail.parse(detail(nodes=[], total=0), source="d").instances[0].nodes == []


def test_a_total_that_disagrees_with_the_nodes_is_a_warning() -> None:
    parsed = dlf_v1_detail.parse(detail(nodes=[node("a")], total=2), source="d.json")
    nodes = parsed.instances[0].nodes
    assert nodes is not None
    assert len(nodes) == 1
    assert parsed.warnings == [
        "d.json: instance: total 2 but 1 nodes listed; imported the listed nodes"
    ]
