"""DataArts Studio / DLF v1 instance detail (seed 003): one instance with its `nodes`.

The instance reads like a v1 list item (`dlf_v1_list.camel_instance`). Nodes keep the order they
are listed in; a node's `instanceId`, when given, must be the instance's. `total` ("total number of
node records") is not trusted: a mismatch with the list is a warning, and the listed nodes win.
A body without `nodes` reports no nodes (stored ones stay); `nodes: []` reports that there are none.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import Any

from jobql.importers.body import (
    DEFAULT_WORKSPACE,
    Collector,
    Document,
    ParsedBody,
    body_object,
    load,
)
from jobql.importers.dlf_v1_list import camel_instance
from jobql.importers.fields import (
    Field,
    Rec,
    code,
    epoch_ms,
    int32,
    int64,
    name,
    number,
    put,
    record_object,
    required,
    show,
    text,
)
from jobql.storage.enums import NodeStatus
from jobql.storage.records import NodeRecord

FORMAT = "dlf-v1-detail"

NODE_STATUS = code({s.value: s.name for s in NodeStatus})

_NODE_OPTIONAL: tuple[Field, ...] = (
    ("planTime", "plan_time", epoch_ms),
    ("startTime", "start_time", epoch_ms),
    ("endTime", "end_time", epoch_ms),
    ("submitTime", "submit_time", epoch_ms),
    ("retryTimes", "retry_times", int32),
    ("inputRowCount", "input_row_count", int64),
    ("speed", "speed", number),
    ("logPath", "log_path", text),
)


def parse(
    body: str, *, source: str, workspace: str | None = None, timezone: tzinfo = UTC
) -> ParsedBody:
    return parse_document(load(body, source), workspace=workspace, timezone=timezone)


def parse_document(
    doc: Document, *, workspace: str | None = None, timezone: tzinfo = UTC
) -> ParsedBody:
    data = body_object(doc, json_only=True)
    rec = Rec(doc.source, "instance", False)
    record = camel_instance(data, rec, workspace or DEFAULT_WORKSPACE)
    collector = Collector(FORMAT, doc.source)
    raw_nodes = data.get("nodes")
    if raw_nodes is not None:
        if not isinstance(raw_nodes, list):
            rec.fail(f"nodes {show(raw_nodes)} is not a list")
        nodes: list[NodeRecord] = []
        seen: dict[str, int] = {}
        for index, raw in enumerate(raw_nodes):
            node_rec = Rec(doc.source, f"nodes[{index}]", False)
            node = _node(record_object(raw, node_rec), node_rec, record.instance_id)
            if node.name in seen:
                node_rec.fail(
                    f"node {node.name!r} is listed twice (first at nodes[{seen[node.name]}])"
                )
            seen[node.name] = index
            nodes.append(node)
        record.nodes = nodes
        total = data.get("total")
        if type(total) is int and total != len(nodes):
            collector.parsed.warnings.append(
                f"{doc.source}: instance: total {total} but {len(nodes)} nodes listed; "
                "imported the listed nodes"
            )
    collector.add(record, rec)
    return collector.parsed


def _node(obj: dict[str, Any], rec: Rec, instance_id: int) -> NodeRecord:
    node_name = required(obj, rec, "nodeName", name)
    values: dict[str, Any] = {
        "type": required(obj, rec, "type", text),
        "status": required(obj, rec, "status", NODE_STATUS),
    }
    put(values, obj, rec, _NODE_OPTIONAL)
    owner = obj.get("instanceId")
    if owner is not None and int64(owner, rec, "instanceId") != instance_id:
        rec.fail(f"instanceId {show(owner)} is not the instance's instanceId {instance_id}")
    return NodeRecord(name=node_name, values=values)
