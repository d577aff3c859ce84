"""The root Subscription type: instance events and live instances."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import Annotated, Any

import orjson
import strawberry

from jobql.errors import BadUserInput
from jobql.resolvers import instances as instance_use_cases
from jobql.resolvers import live as live_use_cases
from jobql.resolvers.objects import parse_global_id
from jobql.schema.context import Info
from jobql.schema.enums import InstanceStatus
from jobql.schema.execution import compiled_instances, selected, selection_keys
from jobql.schema.instances import Instance, InstanceFilter
from jobql.schema.scalars import Long
from jobql.storage.enums import InstanceEventKind
from jobql.storage.types import format_utc

strawberry.enum(
    InstanceEventKind,
    description=(
        "What a change did to an instance: CREATED (it was recorded for the first time), "
        "STATUS_CHANGED (its status changed, perhaps with other fields or its nodes), UPDATED "
        "(other fields or its nodes changed, its status did not)."
    ),
)

TRANSPORT_NOTE = (
    " Subscriptions are served over graphql-transport-ws on `/graphql` (npm `graphql-ws`) and "
    "over Server-Sent Events on `/graphql/stream` (npm `graphql-sse`, distinct connections); "
    "the selection is resolved like a query's, in the connection's workspace, with the same "
    "limits, checked for each subscription."
)


@strawberry.type(description="One committed change to an instance.")
class InstanceEvent:
    value: strawberry.Private[Any]
    cursor: str = strawberry.field(
        description=(
            "Position of this event in the event log: pass it as `after` to resume after it. "
            "Bound to the workspace it was made in."
        )
    )
    kind: InstanceEventKind = strawberry.field(description="What the change did.")
    status: InstanceStatus = strawberry.field(
        description=(
            "The instance's status as this change left it (`instance.status` is the status "
            "when the event was delivered, which later changes may have moved on)."
        )
    )
    previous_status: InstanceStatus | None = strawberry.field(
        description=(
            "The status before this change; null for CREATED. Equals `status` for UPDATED."
        )
    )
    at: datetime = strawberry.field(description="When the change was written (UTC).")

    @strawberry.field(
        description=(
            "The instance, read when the event is delivered (so events of one instance that "
            "arrive together show it as the last of them left it)."
        )
    )
    def instance(self) -> Instance:
        return self.value  # type: ignore[no-any-return]

    @classmethod
    def of(cls, info: Info, event: live_use_cases.Event, value: Any) -> InstanceEvent:
        return cls(
            value=value,
            cursor=live_use_cases.event_cursor(info.context, event.id),
            kind=InstanceEventKind[event.kind],
            status=InstanceStatus[event.status],
            previous_status=(
                None if event.previous_status is None else InstanceStatus[event.previous_status]
            ),
            at=event.at,
        )


@functools.lru_cache(maxsize=4096)
def _at_text(at: datetime) -> str:
    """An event's time as text, made once per worker for every group the event reaches."""
    return format_utc(at)


# InstanceEvent's fields, each as its JSON value of an event (and its instance, when compiled).
EVENT_FIELDS: dict[str, Callable[[Info, live_use_cases.Event, Any], Any]] = {
    "__typename": lambda info, event, value: "InstanceEvent",
    "cursor": lambda info, event, value: live_use_cases.event_cursor(info.context, event.id),
    "kind": lambda info, event, value: event.kind,
    "status": lambda info, event, value: event.status,
    "previousStatus": lambda info, event, value: event.previous_status,
    "at": lambda info, event, value: _at_text(event.at),
    "instance": lambda info, event, value: value,
}
Projection = Callable[[live_use_cases.Event, Any], orjson.Fragment]


def _projection(info: Info, instance_compiled: bool) -> Projection | None:
    """The compiled strategy's events: each event's answer made here as JSON, in the
    selection's order, instead of graphql-core completing an InstanceEvent per event and
    subscription group (the instance is the compiled statement's JSON already). None where the
    reference way answers: the reference strategy, an instance that does not compile, a
    directive the planner does not know."""
    if getattr(info.schema, "read_strategy", None) != "compiled":
        return None
    keys = selection_keys(info, "InstanceEvent")
    if keys is None or ("instance" in keys.values() and not instance_compiled):
        return None
    fields = [(key, EVENT_FIELDS[name]) for key, name in keys.items()]

    def project(event: live_use_cases.Event, value: Any) -> orjson.Fragment:
        return orjson.Fragment(orjson.dumps({key: get(info, event, value) for key, get in fields}))

    return project


def _reader(info: Info, nodes: list[Any] | None) -> live_use_cases.SharedRead[Any]:
    """One read per batch: the compiled statement of the `Instance` selection `nodes` where it
    compiles, else rows (also for `nodes=None`)."""
    compiled = None if nodes is None else compiled_instances(info, nodes)
    if compiled is not None:
        return compiled
    return _rows(info)


def _rows(info: Info) -> live_use_cases.SharedRead[Any]:
    return live_use_cases.instance_rows(info.context.workspace, Instance.from_row)


@strawberry.type(description="Live data: events, and instances kept up to date." + TRANSPORT_NOTE)
class Subscription:
    @strawberry.subscription(
        description=(
            "Every committed change to an instance of this workspace that matches `filter`, "
            "in commit order: creation, any field, its nodes. Changes that change nothing, "
            "and stale reports, are no events; a rolled-back write has none. The filter is "
            "decided on the instance as each change left it. Without `after`, events from "
            "now on; with `after`, first the events after that cursor (a reconnecting client "
            "misses nothing and gets nothing twice), then live ones. The log keeps events for "
            "JOBQL_EVENT_RETENTION_SECONDS (7 days) and at most JOBQL_EVENT_RETENTION_COUNT "
            "(1,000,000); an older cursor is BAD_USER_INPUT, never a silent gap."
        )
    )
    async def instance_events(
        self,
        info: Info,
        filter: Annotated[
            InstanceFilter | None,
            strawberry.argument(description="Conditions, as for `instances`."),
        ] = None,
        after: Annotated[
            str | None,
            strawberry.argument(description="Resume after this event (an event's `cursor`)."),
        ] = None,
    ) -> AsyncGenerator[InstanceEvent, None]:
        spec = filter.to_spec() if filter is not None else instance_use_cases.build_filter()
        if spec.run_ids is not None:  # the event log does not carry run ids
            raise BadUserInput("`runIds` does not filter subscriptions; use `jobName`.")
        asked = selected(info, "InstanceEvent", "instance")
        # Asked for under several aliases: the reference way (one compiled JSON per instance).
        compiled = compiled_instances(info, asked[0]) if len(asked) == 1 else None
        read = compiled or (_rows(info) if asked else None)
        project = _projection(info, compiled is not None)
        async for event, value in live_use_cases.instance_events(info.context, spec, after, read):
            if project is not None:
                yield project(event, value)  # type: ignore[misc]  # graphql-core passes it on
            else:
                yield InstanceEvent.of(info, event, value)

    @strawberry.subscription(
        description=(
            "One instance with the fields selected: as it is now (null while it does not exist "
            "in this workspace), then again after every committed change to it, its nodes "
            "included (changes that arrive together are pushed once)."
        )
    )
    async def instance(
        self,
        info: Info,
        job_name: Annotated[str, strawberry.argument(description="Exact job name.")],
        instance_id: Annotated[Long, strawberry.argument(description="The source's instance id.")],
    ) -> AsyncGenerator[Instance | None, None]:
        read = _reader(info, list(info._raw_info.field_nodes))
        async for value in live_use_cases.watch_instance(
            info.context, read, job_name=job_name, instance_id=instance_id
        ):
            yield value

    @strawberry.subscription(
        description=(
            "`instance`, by global id (an `Instance.id`); an id of another type or workspace "
            "is null and stays null. A text that is not a global id is BAD_USER_INPUT."
        )
    )
    async def instance_by_id(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="An instance's global id.")],
    ) -> AsyncGenerator[Instance | None, None]:
        type_name, key = parse_global_id(id)
        read = _reader(info, list(info._raw_info.field_nodes))
        async for value in live_use_cases.watch_instance(
            info.context, read, key=key if type_name == "Instance" and key else 0
        ):
            yield value
