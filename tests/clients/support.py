"""What the client tests share: paths, a plain GraphQL-over-HTTP call, and the demo data's facts."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import parse, print_ast
from graphql.language import DocumentNode, ObjectTypeDefinitionNode

CLIENTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = CLIENTS_DIR.parents[1]
EXAMPLES_DIR = REPO_ROOT / "examples"
SCHEMA_PATH = REPO_ROOT / "schema.graphql"
NODE_DIR = CLIENTS_DIR / "node"
PYTHON_DIR = CLIENTS_DIR / "python"


def example_files() -> list[Path]:
    """The operations a frontend sends: `examples/*.graphql` (top level only)."""
    return sorted(EXAMPLES_DIR.glob("*.graphql"))


def post_graphql(
    base_url: str, query: str, variables: dict[str, Any] | None = None, workspace: str | None = None
) -> dict[str, Any]:
    """POST one operation; the answer must be a 200 JSON body (Accept: application/json)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if workspace is not None:
        headers["workspace"] = workspace
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers=headers,
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        body: dict[str, Any] = json.load(response)
    return body


def data_of(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


@dataclass(frozen=True)
class Demo:
    """Facts about a live server's demo data, found by asking its API (never assumed)."""

    job_name: str
    job_id: str  # global id
    instance_id: int  # the source's id of an instance of job_name that has nodes
    instance_gid: str
    node_gid: str
    status: str  # a status that occurs among the newest `window` instances
    plan_time_after: str  # the plan time of the `window`-th newest instance
    window: int


DISCOVERY_QUERY = """
query Discover($first: Int!) {
  instances(first: $first) {
    nodes { id instanceId jobName status planTime job { id } nodes(first: 1) { nodes { id } } }
  }
}
"""


def discover_demo(base_url: str, window: int = 100) -> Demo:
    newest = data_of(post_graphql(base_url, DISCOVERY_QUERY, {"first": window}))
    instances = newest["instances"]["nodes"]
    assert len(instances) == window, f"the demo data has fewer than {window} instances"
    with_nodes = next(i for i in instances if i["nodes"]["nodes"])
    bound = instances[-1]["planTime"]
    # planTimeAfter is exclusive: pick a status of an instance planned strictly after the bound
    inside = next(i for i in instances if i["planTime"] > bound)
    return Demo(
        job_name=with_nodes["jobName"],
        job_id=with_nodes["job"]["id"],
        instance_id=int(with_nodes["instanceId"]),
        instance_gid=with_nodes["id"],
        node_gid=with_nodes["nodes"]["nodes"][0]["id"],
        status=inside["status"],
        plan_time_after=bound,
        window=window,
    )


def schema_without_field(type_name: str, field_name: str) -> str:
    """schema.graphql with one field of one object type removed (a breaking change)."""
    document = parse(SCHEMA_PATH.read_text())
    definitions = []
    removed = False
    for definition in document.definitions:
        if isinstance(definition, ObjectTypeDefinitionNode) and definition.name.value == type_name:
            fields = tuple(f for f in definition.fields or () if f.name.value != field_name)
            removed = len(fields) != len(definition.fields or ())
            definition = ObjectTypeDefinitionNode(
                name=definition.name,
                description=definition.description,
                interfaces=definition.interfaces,
                directives=definition.directives,
                fields=fields,
            )
        definitions.append(definition)
    assert removed, f"{type_name}.{field_name} is not in schema.graphql"
    return print_ast(DocumentNode(definitions=tuple(definitions)))
