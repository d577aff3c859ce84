"""The source APIs themselves: REST endpoints compatible with the five seed pages.

One module per source API (`dlf_v1`, `dlf_v2`, `schedulerx`, `flink`), `dlf` for what the DLF
ones share, `routes` to mount them all. They answer with the sources' own parameters, defaults,
limits, shapes and error bodies, on the resolvers GraphQL uses (no second query path): a request
opens a `RequestContext`, parameters become an `InstanceFilter` (`resolvers.instances.
build_filter`), lists go through `resolvers.instances.list_instances_offset` (offset window +
total) or `list_instances` (keyset), look-ups through `get_instance`/`get_job`. Like the schema
layer, this package reaches storage only through the resolvers.
"""

from __future__ import annotations

from jobql.rest.endpoint import RequestIds
from jobql.rest.routes import rest_routes

__all__ = ["RequestIds", "rest_routes"]
