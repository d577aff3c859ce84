"""The Relay compiler accepts jobql's schema for @connection and @refetchable fragments.

tests/clients/node/relay/*.ts hold the fragments: @connection on Query.instances, Job.instances
and Instance.nodes, @refetchable on Query, Job, Instance and InstanceNode. The compiler writes its
artifacts into a temporary directory; the refetch queries are taken from those artifacts
(`params.text`) and run against live servers with real global ids.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import Tool
from tests.clients.support import (
    NODE_DIR,
    SCHEMA_PATH,
    Demo,
    data_of,
    post_graphql,
    schema_without_field,
)

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;]*m")
CONFIG = json.loads((NODE_DIR / "relay.config.json").read_text())


def output(run: subprocess.CompletedProcess[str]) -> str:
    return ANSI.sub("", f"{run.stdout}\n{run.stderr}")


def compile_relay(npx: Tool, directory: Path, schema: Path) -> subprocess.CompletedProcess[str]:
    """Run relay-compiler on a copy of relay/ in `directory` (paths resolve from the cwd)."""
    shutil.copytree(NODE_DIR / "relay", directory / "relay")
    (directory / "__generated__").mkdir()
    config = {**CONFIG, "schema": str(schema)}
    (directory / "relay.config.json").write_text(json.dumps(config))
    return npx("relay-compiler", "relay.config.json", cwd=directory, NO_COLOR="1")


@pytest.fixture(scope="session")
def artifacts(npx: Tool, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("relay")
    run = compile_relay(npx, directory, SCHEMA_PATH)
    assert run.returncode == 0, output(run)
    assert "Compilation completed" in output(run), output(run)
    return directory / "__generated__"


def operation_text(artifact: Path) -> str:
    """`params.text` of a compiled operation artifact: the query Relay sends."""
    match = re.search(r'^\s*"text": (".*"),?$', artifact.read_text(), re.MULTILINE)
    assert match, f"{artifact.name} has no params.text"
    text: str = json.loads(match.group(1))
    return text


def test_compiler_writes_refetch_and_pagination_artifacts(artifacts: Path) -> None:
    names = {path.name for path in artifacts.glob("*.graphql.ts")}
    for query in (
        "JobInstancesRefetchQuery",
        "InstanceNodesRefetchQuery",
        "InstanceNodeRowRefetchQuery",
        "DashboardPaginationQuery",
    ):
        assert f"{query}.graphql.ts" in names
    # @connection made pagination fragments over the named connection fields
    for fragment, key in (
        ("JobInstances_job", "JobInstances_instances"),
        ("InstanceNodes_instance", "InstanceNodes_nodes"),
        ("Dashboard_query", "Dashboard_instances"),
    ):
        reader = (artifacts / f"{fragment}.graphql.ts").read_text()
        assert '"connection": [' in reader, fragment
        assert '"direction": "forward"' in reader, fragment
        assert f'"name": "__{key}_connection"' in reader, fragment


def run_artifact(server: str, artifacts: Path, name: str, variables: dict[str, Any]) -> Any:
    query = operation_text(artifacts / f"{name}.graphql.ts")
    assert f"query {name}(" in query
    return data_of(post_graphql(server, query, variables))


def test_job_refetch_query_pages_the_jobs_instances(
    artifacts: Path, server: str, demo: Demo
) -> None:
    node = run_artifact(server, artifacts, "JobInstancesRefetchQuery", {"id": demo.job_id})["node"]

    assert node["__typename"] == "Job"
    assert (node["id"], node["name"]) == (demo.job_id, demo.job_name)
    connection = node["instances"]
    edges = connection["edges"]
    assert 1 <= len(edges) <= 5  # the fragment's default count
    assert all(edge["cursor"] and edge["node"]["__typename"] == "Instance" for edge in edges)
    assert connection["pageInfo"]["endCursor"] == edges[-1]["cursor"]
    assert connection["pageInfo"]["hasNextPage"] == (connection["totalCount"] > len(edges))

    if connection["pageInfo"]["hasNextPage"]:  # the next page, as Relay's loadNext asks for it
        cursor = connection["pageInfo"]["endCursor"]
        variables = {"id": demo.job_id, "count": 5, "cursor": cursor}
        following = run_artifact(server, artifacts, "JobInstancesRefetchQuery", variables)
        ids = [edge["node"]["id"] for edge in edges]
        next_ids = [edge["node"]["id"] for edge in following["node"]["instances"]["edges"]]
        assert next_ids
        assert not set(ids) & set(next_ids)


def test_instance_refetch_query_lists_its_nodes(artifacts: Path, server: str, demo: Demo) -> None:
    variables = {"id": demo.instance_gid}
    node = run_artifact(server, artifacts, "InstanceNodesRefetchQuery", variables)["node"]

    assert node["__typename"] == "Instance"
    assert (node["id"], node["instanceId"], node["jobName"]) == (
        demo.instance_gid,
        demo.instance_id,
        demo.job_name,
    )
    edges = node["nodes"]["edges"]
    assert edges[0]["node"]["id"] == demo.node_gid
    assert all(edge["node"]["__typename"] == "InstanceNode" for edge in edges)
    assert all(edge["node"]["name"] and edge["node"]["type"] for edge in edges)


def test_instance_node_refetch_query(artifacts: Path, server: str, demo: Demo) -> None:
    variables = {"id": demo.node_gid}
    node = run_artifact(server, artifacts, "InstanceNodeRowRefetchQuery", variables)["node"]

    assert node["__typename"] == "InstanceNode"
    assert node["id"] == demo.node_gid
    assert isinstance(node["name"], str)
    assert node["status"] in {
        "WAITING",
        "RUNNING",
        "SUCCESS",
        "FAIL",
        "SKIP",
        "PAUSE",
        "MANUAL_STOP",
    }


def test_dashboard_pagination_query_applies_its_filter(
    artifacts: Path, server: str, demo: Demo
) -> None:
    variables = {"filter": {"statuses": [demo.status]}, "count": 7}
    data = run_artifact(server, artifacts, "DashboardPaginationQuery", variables)

    edges = data["instances"]["edges"]
    assert 1 <= len(edges) <= 7
    assert {edge["node"]["status"] for edge in edges} == {demo.status}


def test_removing_a_schema_field_fails_the_relay_build(npx: Tool, tmp_path: Path) -> None:
    scratch = tmp_path / "schema.graphql"
    scratch.write_text(schema_without_field("Instance", "status"))

    run = compile_relay(npx, tmp_path, scratch)

    assert run.returncode != 0, "relay-compiler passed without Instance.status"
    assert "The type `Instance` has no field `status`" in output(run), output(run)
