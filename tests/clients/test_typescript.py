"""GraphQL Code Generator (client-preset) + `tsc --strict` over schema.graphql and examples/.

The generated code goes to a temporary build directory (never committed); `client.ts` is compiled
against it, then run with node against live servers. Copies with a wrong field access, and a
scratch schema without a field the examples select, must fail the build naming the field.
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
from tests.clients.support import NODE_DIR, data_of, post_graphql, schema_without_field

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def output(run: subprocess.CompletedProcess[str]) -> str:
    return ANSI.sub("", f"{run.stdout}\n{run.stderr}")


def new_build(directory: Path) -> Path:
    """A build directory with client.ts and its tsconfig, resolving packages from NODE_DIR."""
    directory.mkdir(parents=True)
    for name in ("client.ts", "tsconfig.json"):
        shutil.copy(NODE_DIR / name, directory / name)
    (directory / "node_modules").symlink_to(NODE_DIR / "node_modules", target_is_directory=True)
    return directory


def codegen(npx: Tool, build: Path, schema: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"JOBQL_CODEGEN_OUT": f"{build / 'gql'}/", "NO_COLOR": "1"}
    if schema is not None:
        env["JOBQL_SCHEMA"] = str(schema)
    return npx("graphql-codegen", "--config", str(NODE_DIR / "codegen.cjs"), **env)


def tsc(npx: Tool, build: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return npx("tsc", "-p", str(build), "--strict", "--pretty", "false", *args)


@pytest.fixture(scope="session")
def generated(npx: Tool, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build directory with client.ts and the code generated for examples/."""
    build = new_build(tmp_path_factory.mktemp("ts") / "build")
    run = codegen(npx, build)
    assert run.returncode == 0, output(run)
    return build


def test_codegen_output_types_the_examples(generated: Path) -> None:
    types = (generated / "gql" / "graphql.ts").read_text()
    for operation in ("DashboardInstances", "InstanceDetail", "JobPage", "RefetchNode"):
        assert f"export type {operation}Query = " in types
        assert f"export const {operation}Document = " in types
    assert "export type RecordInstancesMutation = " in types
    # custom scalars are typed as configured (strictScalars fails generation for an unmapped one)
    assert "planTimeAfter?: string | null | undefined;" in types  # DateTime
    assert re.search(r"export type DashboardInstancesQuery = .*instanceId: number,", types)  # Long


def test_typed_client_compiles_with_strict_tsc(npx: Tool, generated: Path) -> None:
    run = tsc(npx, generated, "--noEmit")

    assert run.returncode == 0, output(run)


@pytest.fixture(scope="session")
def compiled_client(npx: Tool, generated: Path) -> Path:
    run = tsc(npx, generated, "--outDir", str(generated / "out"))
    assert run.returncode == 0, output(run)
    (generated / "out" / "node_modules").symlink_to(NODE_DIR / "node_modules")
    return generated / "out" / "client.js"


def test_typed_client_runs_against_the_server(
    node_bin: str, compiled_client: Path, server: str
) -> None:
    run = subprocess.run(
        [node_bin, str(compiled_client), server],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, output(run)
    summary: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])

    failed = data_of(
        post_graphql(
            server,
            "{ instances(first: 5, filter: {statuses: [FAIL]}) { nodes { jobName instanceId"
            " planTime nodes(first: 3) { totalCount nodes { name status } } } } }",
        )
    )["instances"]["nodes"]
    assert failed, "the demo data has no failed instance to show"
    first = failed[0]
    assert summary["failedOnPage"] == len(failed)
    assert summary["firstFailed"] == {
        "job": first["jobName"],
        "instanceId": first["instanceId"],
        "planTime": first["planTime"],
        "steps": [f"{n['name']}:{n['status']}" for n in first["nodes"]["nodes"]],
    }
    assert summary["detail"]["jobName"] == first["jobName"]
    assert summary["detail"]["status"] == "FAIL"
    assert summary["detail"]["nodeCount"] == first["nodes"]["totalCount"]
    assert 1 <= summary["jobRuns"] <= 3
    assert summary["refetchedTypename"] == "Instance:FAIL"


# (what client.ts says, what the broken copy says instead, the name tsc must report); one
# compilation reports them all.
WRONG_ACCESSES = [
    ("instanceId: first.instanceId,", "instanceId: first.instanceID,", "instanceID"),  # misspelt
    # in the schema, but not selected by RefetchNode: the types follow the selection
    (
        "const status: string = refetched.node.status;",
        "const status: string = refetched.node.jobInstanceName;",
        "jobInstanceName",
    ),
]


def test_wrong_field_access_fails_tsc(npx: Tool, generated: Path, tmp_path: Path) -> None:
    build = new_build(tmp_path / "build")
    shutil.copytree(generated / "gql", build / "gql")
    source = (build / "client.ts").read_text()
    for correct, wrong, _ in WRONG_ACCESSES:
        assert correct in source, f"client.ts no longer contains {correct!r}; update this test"
        source = source.replace(correct, wrong)
    (build / "client.ts").write_text(source)

    run = tsc(npx, build, "--noEmit")

    assert run.returncode != 0, "tsc accepted accesses to fields the types do not have"
    for _, _, field in WRONG_ACCESSES:
        pattern = rf"client\.ts\(\d+,\d+\): error TS\d+: Property '{field}' does not exist"
        assert re.search(pattern, output(run)), output(run)


def test_removing_a_schema_field_fails_the_typescript_build(npx: Tool, tmp_path: Path) -> None:
    scratch = tmp_path / "schema.graphql"
    scratch.write_text(schema_without_field("Instance", "status"))
    build = new_build(tmp_path / "build")

    run = codegen(npx, build, schema=scratch)
    if run.returncode == 0:  # had the generator let it through, the compiler must not
        run = tsc(npx, build, "--noEmit")

    assert run.returncode != 0, "the TypeScript build passed without Instance.status"
    assert 'Cannot query field "status" on type "Instance"' in output(run), output(run)
