"""Instance node queries, confined to one workspace. Nodes keep the order the source listed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, false, func, select
from sqlalchemy.sql import Select

from jobql.storage.engine import Reader
from jobql.storage.models import InstanceNode
from jobql.storage.paging import KeysetWindow, Page, SortKey, group_pages, per_parent_window
from jobql.storage.scope import in_workspace

_node = InstanceNode.__table__.c
NODE_ORDER = SortKey(column=_node.position, id=_node.id, descending=False, nullable=False)


def base_query(workspace: str) -> Select[Any]:
    return select(InstanceNode.__table__).where(
        in_workspace(InstanceNode.workspace_id, workspace)  # type: ignore[arg-type]
    )


def filter_conditions(statuses: tuple[str, ...] | None) -> list[ColumnElement[bool]]:
    if statuses is None:
        return []
    return [InstanceNode.status.in_(statuses) if statuses else false()]


Parent = tuple[int, datetime]


def of_instances(instances: Sequence[Parent]) -> list[ColumnElement[bool]]:
    """The nodes of these (instance id, plan time) pairs. The plan times are the node
    partitions' key: PostgreSQL reads only their months, not one index per month."""
    return [
        InstanceNode.instance_id.in_([key for key, _ in instances]),
        InstanceNode.instance_plan_time.in_(sorted({plan_time for _, plan_time in instances})),
    ]


async def nodes_for_instances(
    reader: Reader,
    workspace: str,
    instances: Sequence[Parent],
    statuses: tuple[str, ...] | None,
    window: KeysetWindow,
) -> dict[int, Page[Row[Any]]]:
    """A page of nodes for each (instance id, plan time), by instance id, in one statement."""
    instance_ids = [key for key, _ in instances]
    statement = per_parent_window(
        base_query(workspace).where(*of_instances(instances), *filter_conditions(statuses)),
        InstanceNode.instance_id,  # type: ignore[arg-type]
        "instance_id",
        NODE_ORDER,
        window,
    )
    return group_pages(await reader.execute(statement), instance_ids, "instance_id", window)


async def count_nodes_for_instances(
    reader: Reader,
    workspace: str,
    instances: Sequence[Parent],
    statuses: tuple[str, ...] | None,
) -> dict[int, int]:
    """The nodes of each (instance id, plan time) with one of `statuses`, by instance id."""
    instance_ids = [key for key, _ in instances]
    statement = (
        select(InstanceNode.instance_id, func.count())
        .where(
            in_workspace(InstanceNode.workspace_id, workspace),  # type: ignore[arg-type]
            *of_instances(instances),
            *filter_conditions(statuses),
        )
        .group_by(InstanceNode.instance_id)
    )
    counts = {instance_id: 0 for instance_id in instance_ids}
    counts.update({row[0]: int(row[1]) for row in await reader.execute(statement)})
    return counts


async def nodes_by_ids(reader: Reader, workspace: str, ids: Sequence[int]) -> dict[int, Row[Any]]:
    """By a bare node id (`node(id:)`): its plan time is not known, so PostgreSQL probes the id
    index of each month's partition (microseconds per month)."""
    rows = await reader.execute(base_query(workspace).where(InstanceNode.id.in_(ids)))
    return {row.id: row for row in rows}
