"""Every operation in examples/ runs against a live server on SQLite and PostgreSQL.

Each file gets variables found in the demo data through the API, and its answer is checked for
shape: the keys the document selects, their JSON types, and non-empty lists where the demo data
guarantees rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse

from tests.clients.support import EXAMPLES_DIR, Demo, data_of, example_files, post_graphql

pytestmark = pytest.mark.e2e

INSTANCE_STATUSES = {
    "WAITING", "RUNNING", "SUCCESS", "FAIL", "RUNNING_EXCEPTION", "SKIP_BY_DEPEND", "FREEZE",
    "PAUSE", "MANUAL_STOP", "REJECTED",
}  # fmt: skip
NODE_STATUSES = {"WAITING", "RUNNING", "SUCCESS", "FAIL", "SKIP", "PAUSE", "MANUAL_STOP"}


def is_time(value: Any) -> bool:
    """An RFC 3339 instant in UTC with milliseconds, as the API writes every DateTime."""
    if not isinstance(value, str) or not value.endswith("Z"):
        return False
    datetime.fromisoformat(value)
    return len(value) == len("2019-03-04T03:53:00.000Z")


def optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def check_keys(obj: dict[str, Any], types: dict[str, Callable[[Any], bool]], where: str) -> None:
    assert set(obj) == set(types), f"{where}: keys {sorted(obj)}, selected {sorted(types)}"
    for key, check in types.items():
        assert check(obj[key]), f"{where}.{key} = {obj[key]!r} has the wrong type"


def check_page_info(page_info: dict[str, Any], where: str) -> None:
    check_keys(
        page_info,
        {
            "hasNextPage": lambda v: isinstance(v, bool),
            "endCursor": optional(is_str),
        },
        f"{where}.pageInfo",
    )


# One entry per example: (variables for this server, check of `data`).
Variables = Callable[[Demo], dict[str, Any]]
Check = Callable[[dict[str, Any], Demo, dict[str, Any]], None]


def dashboard_variables(demo: Demo) -> dict[str, Any]:
    return {"statuses": [demo.status], "planTimeAfter": demo.plan_time_after, "first": 20}


def check_dashboard(data: dict[str, Any], demo: Demo, variables: dict[str, Any]) -> None:
    connection = data["instances"]
    check_keys(
        connection,
        {
            "totalCount": is_int,
            "pageInfo": lambda v: isinstance(v, dict),
            "edges": lambda v: isinstance(v, list),
        },
        "instances",
    )
    check_page_info(connection["pageInfo"], "instances")
    edges = connection["edges"]
    assert edges, f"no {demo.status} instance after {demo.plan_time_after}, yet the API listed one"
    assert len(edges) <= variables["first"]
    assert connection["totalCount"] >= len(edges)
    assert connection["totalCount"] < demo.window, "the time filter was not applied"
    for edge in edges:
        check_keys(edge, {"cursor": is_str, "node": lambda v: isinstance(v, dict)}, "edge")
        node = edge["node"]
        check_keys(
            node,
            {
                "id": is_str,
                "instanceId": is_int,
                "jobName": is_str,
                "status": lambda v: v in INSTANCE_STATUSES,
                "planTime": is_time,
                "startTime": optional(is_time),
                "endTime": optional(is_time),
                "durationMs": optional(is_int),
                "job": lambda v: isinstance(v, dict),
                "nodes": lambda v: isinstance(v, dict),
            },
            "instance",
        )
        assert node["status"] == demo.status, "the status filter was not applied"
        assert node["planTime"] > demo.plan_time_after, "planTimeAfter was not applied"
        check_keys(node["job"], {"id": is_str, "type": lambda v: v in {"BATCH", "REALTIME"}}, "job")
        steps = node["nodes"]
        check_keys(steps, {"totalCount": is_int, "nodes": lambda v: isinstance(v, list)}, "nodes")
        assert len(steps["nodes"]) == min(5, steps["totalCount"])  # $nodesFirst defaults to 5
        for step in steps["nodes"]:
            check_keys(
                step, {"id": is_str, "name": is_str, "status": lambda v: v in NODE_STATUSES}, "node"
            )


def instance_detail_variables(demo: Demo) -> dict[str, Any]:
    return {"jobName": demo.job_name, "instanceId": demo.instance_id}


def check_instance_detail(data: dict[str, Any], demo: Demo, variables: dict[str, Any]) -> None:
    instance = data["instance"]
    check_keys(
        instance,
        {
            "id": is_str,
            "instanceId": is_int,
            "jobName": is_str,
            "jobInstanceName": optional(is_str),
            "status": lambda v: v in INSTANCE_STATUSES,
            "instanceType": lambda v: v in {"GENERAL", "MANUAL", "PATCH_DATA", "SUBJOB", "ONE_OFF"},
            "planTime": is_time,
            "startTime": optional(is_time),
            "endTime": optional(is_time),
            "submitTime": optional(is_time),
            "executeTime": optional(lambda v: isinstance(v, int | float)),
            "durationMs": optional(is_int),
            "forceSuccess": lambda v: isinstance(v, bool),
            "ignoreSuccess": lambda v: isinstance(v, bool),
            "version": optional(is_int),
            "job": lambda v: isinstance(v, dict),
            "nodes": lambda v: isinstance(v, dict),
        },
        "instance",
    )
    assert (instance["id"], instance["instanceId"], instance["jobName"]) == (
        demo.instance_gid,
        demo.instance_id,
        demo.job_name,
    )
    check_keys(
        instance["job"],
        {"id": is_str, "name": is_str, "type": lambda v: v in {"BATCH", "REALTIME"}},
        "instance.job",
    )
    assert instance["job"]["name"] == demo.job_name
    steps = instance["nodes"]
    assert steps["nodes"], "the demo instance chosen for having nodes shows none"
    assert len(steps["nodes"]) == steps["totalCount"]  # all of them: $nodesFirst is 100
    assert steps["nodes"][0]["id"] == demo.node_gid, "nodes are not in the source's order"
    for step in steps["nodes"]:
        check_keys(
            step,
            {
                "id": is_str,
                "name": is_str,
                "type": is_str,
                "status": lambda v: v in NODE_STATUSES,
                "startTime": optional(is_time),
                "endTime": optional(is_time),
                "durationMs": optional(is_int),
                "retryTimes": optional(is_int),
                "inputRowCount": optional(is_int),
                "logPath": optional(is_str),
            },
            "node",
        )


def job_page_variables(demo: Demo) -> dict[str, Any]:
    return {"name": demo.job_name, "first": 3}


def check_job_page(data: dict[str, Any], demo: Demo, variables: dict[str, Any]) -> None:
    job = data["job"]
    check_keys(
        job,
        {
            "id": is_str,
            "jobId": optional(is_int),
            "name": is_str,
            "workspace": is_str,
            "type": lambda v: v in {"BATCH", "REALTIME"},
            "parentNodeName": optional(is_str),
            "parent": optional(lambda v: isinstance(v, dict)),
            "instances": lambda v: isinstance(v, dict),
        },
        "job",
    )
    assert (job["id"], job["name"], job["workspace"]) == (demo.job_id, demo.job_name, "default")
    if job["parent"] is not None:
        check_keys(job["parent"], {"id": is_str, "name": is_str}, "job.parent")
    connection = job["instances"]
    check_page_info(connection["pageInfo"], "job.instances")
    runs = connection["nodes"]
    assert 1 <= len(runs) <= 3, "the job of a listed instance lists no instance"
    assert connection["totalCount"] >= len(runs)
    assert connection["pageInfo"]["hasNextPage"] == (connection["totalCount"] > 3)
    plan_times = [run["planTime"] for run in runs]
    assert plan_times == sorted(plan_times, reverse=True), "not newest planned first"
    for run in runs:
        check_keys(
            run,
            {
                "id": is_str,
                "instanceId": is_int,
                "status": lambda v: v in INSTANCE_STATUSES,
                "planTime": is_time,
                "startTime": optional(is_time),
                "endTime": optional(is_time),
                "durationMs": optional(is_int),
            },
            "job.instances.nodes",
        )


def refetch_variables(demo: Demo) -> dict[str, Any]:
    return {"id": demo.instance_gid}


def check_refetch(data: dict[str, Any], demo: Demo, variables: dict[str, Any]) -> None:
    check_keys(
        data["node"],
        {
            "__typename": lambda v: v == "Instance",
            "id": lambda v: v == demo.instance_gid,
            "instanceId": lambda v: v == demo.instance_id,
            "jobName": lambda v: v == demo.job_name,
            "status": lambda v: v in INSTANCE_STATUSES,
            "planTime": is_time,
        },
        "node",
    )


RECORD_WORKSPACE = f"clients-{uuid.uuid4().hex[:8]}"  # writes stay out of the demo workspaces


def record_variables(demo: Demo) -> dict[str, Any]:
    return {
        "input": [
            {
                "jobName": "clients_example_job",
                "instanceId": 7,
                "status": "RUNNING",
                "planTime": "2026-01-02T03:04:05.000Z",
                "startTime": "2026-01-02T03:04:06.000Z",
                "reportedAt": "2026-01-02T03:04:07.000Z",
                "nodes": [{"name": "load", "type": "DWS SQL", "status": "RUNNING"}],
            },
            {"jobName": "clients_example_job", "instanceId": 8},  # new, without status: refused
        ]
    }


def check_record(data: dict[str, Any], demo: Demo, variables: dict[str, Any]) -> None:
    results = data["recordInstances"]["results"]
    assert [r["index"] for r in results] == [0, 1]
    written, refused = results
    assert written["outcome"] in {"CREATED", "UNCHANGED"}  # UNCHANGED: the other backend's replay
    assert written["userErrors"] == []
    check_keys(
        written["instance"],
        {
            "id": is_str,
            "instanceId": lambda v: v == 7,
            "jobName": lambda v: v == "clients_example_job",
            "status": lambda v: v == "RUNNING",
            "planTime": lambda v: v == "2026-01-02T03:04:05.000Z",
            "nodes": lambda v: v == {"nodes": [{"name": "load", "status": "RUNNING"}]},
        },
        "recordInstances.results[0].instance",
    )
    assert refused["outcome"] is None
    assert refused["instance"] is None
    assert refused["userErrors"], "an instance without status was written"
    for error in refused["userErrors"]:
        check_keys(
            error,
            {"code": is_str, "field": optional(lambda v: isinstance(v, list)), "message": is_str},
            "userError",
        )


EXAMPLES: dict[str, tuple[Variables, Check]] = {
    "dashboard_instances": (dashboard_variables, check_dashboard),
    "instance_detail": (instance_detail_variables, check_instance_detail),
    "job_page": (job_page_variables, check_job_page),
    "refetch_node": (refetch_variables, check_refetch),
    "record_instances": (record_variables, check_record),
}


def test_every_example_has_a_shape_check() -> None:
    assert {path.stem for path in example_files()} == set(EXAMPLES)


@pytest.mark.parametrize("path", example_files(), ids=lambda path: path.stem)
def test_example_runs_and_answers_its_shape(path: Path, server: str, demo: Demo) -> None:
    document = path.read_text()
    operations = [d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)]
    assert len(operations) == 1, "one operation per file"
    assert operations[0].name, "named operations (codegen names its types after them)"
    assert operations[0].variable_definitions, "examples take their inputs as variables"
    make_variables, check = EXAMPLES[path.stem]
    variables = make_variables(demo)
    workspace = RECORD_WORKSPACE if operations[0].operation.value == "mutation" else None

    body = post_graphql(server, document, variables, workspace=workspace)

    check(data_of(body), demo, variables)


def test_refetch_example_resolves_each_node_type(server: str, demo: Demo) -> None:
    document = (EXAMPLES_DIR / "refetch_node.graphql").read_text()
    expected = {
        demo.job_id: {"__typename": "Job", "id": demo.job_id, "name": demo.job_name},
        demo.instance_gid: {"__typename": "Instance", "instanceId": demo.instance_id},
        demo.node_gid: {"__typename": "InstanceNode", "instance": {"id": demo.instance_gid}},
    }
    for global_id, subset in expected.items():
        node = data_of(post_graphql(server, document, {"id": global_id}))["node"]
        assert node["id"] == global_id
        assert {key: node[key] for key in subset} == subset
