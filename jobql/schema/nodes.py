"""InstanceNode: one step inside a run."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers.objects import global_id
from jobql.schema.catalogue import known_resolver
from jobql.schema.context import Info
from jobql.schema.enums import NodeStatus
from jobql.schema.pagination import CountedConnection
from jobql.schema.relay import Node
from jobql.schema.scalars import Long
from jobql.schema.stats import COUNTS_BY_STATUS, NodeStatusCount, node_status_counts

if TYPE_CHECKING:
    from jobql.schema.instances import Instance


def duration_ms(start: datetime | None, end: datetime | None) -> Long | None:
    if start is None or end is None:
        return None
    return Long(round((end - start).total_seconds() * 1000))


@strawberry.type(description="A node (step) of an instance, as DLF's instance detail lists it.")
class InstanceNode(Node):
    key: strawberry.Private[int]
    instance_key: strawberry.Private[int]
    name: str = strawberry.field(description="Node name (`nodeName`), unique within the instance.")
    type: str = strawberry.field(description="Node type as the source names it, e.g. `DWS SQL`.")
    status: NodeStatus = strawberry.field(description="Node status.")
    plan_time: datetime | None = strawberry.field(description="Planned execution time.")
    start_time: datetime | None = strawberry.field(description="Actual start time.")
    end_time: datetime | None = strawberry.field(description="Actual end time; null while running.")
    submit_time: datetime | None = strawberry.field(description="Submission time.")
    retry_times: int | None = strawberry.field(description="Attempts after a failure.")
    input_row_count: Long | None = strawberry.field(description="Rows of input data.")
    speed: float | None = strawberry.field(description="Write speed in rows per second.")
    log_path: str | None = strawberry.field(description="Where the node's execution log is kept.")
    error_message: str | None = strawberry.field(
        description=(
            "Why the node failed, as its reporter said (OpenLineage: the `errorMessage` facet's "
            "`message` of the child run); null when not reported."
        )
    )

    @strawberry.field(
        description="`endTime - startTime` in milliseconds; null while either is missing."
    )
    @known_resolver
    def duration_ms(self) -> Long | None:
        return duration_ms(self.start_time, self.end_time)

    @strawberry.field(description="Global id of the node.")
    @known_resolver
    def id(self) -> strawberry.ID:
        return strawberry.ID(global_id("InstanceNode", self.key))

    @strawberry.field(description="The instance this node belongs to.")
    @known_resolver
    async def instance(
        self, info: Info
    ) -> Annotated[Instance, strawberry.lazy("jobql.schema.instances")]:
        from jobql.schema.instances import Instance

        row = await instance_use_cases.load_instance(info.context, self.instance_key)
        return Instance.from_row(row)

    @classmethod
    def from_row(cls, row: Any) -> InstanceNode:
        return cls(
            key=row.id,
            instance_key=row.instance_id,
            name=row.name,
            type=row.type,
            status=NodeStatus[row.status],
            plan_time=row.plan_time,
            start_time=row.start_time,
            end_time=row.end_time,
            submit_time=row.submit_time,
            retry_times=row.retry_times,
            input_row_count=row.input_row_count,
            speed=row.speed,
            log_path=row.log_path,
            error_message=row.error_message,
        )


@strawberry.type(
    description=(
        "A page of an instance's nodes with Relay cursor pagination, and counts over all the "
        "nodes its `statuses` match."
    )
)
class InstanceNodeConnection(CountedConnection[InstanceNode]):
    @staticmethod
    def item(row: Any) -> InstanceNode:
        return InstanceNode.from_row(row)

    @strawberry.field(description=COUNTS_BY_STATUS)
    async def counts_by_status(self) -> list[NodeStatusCount]:
        return node_status_counts(await self.read_status_counts())
