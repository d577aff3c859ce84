"""jobql's own run facet: where a run came from in jobql. The receiving half (`POST
/api/v1/lineage`) reads `instanceId` and `instanceType` from it: the keys are a contract."""

from __future__ import annotations

from importlib import metadata

import attr
from openlineage.client.facet_v2 import RunFacet

try:
    VERSION = metadata.version("jobql")
except metadata.PackageNotFoundError:  # a checkout that was never installed
    VERSION = "0"

# The events' `producer` (a URI naming the software that made them).
PRODUCER = f"urn:jobql:{VERSION}"
FACET_KEY = "jobql"
SCHEMA_URL = "urn:jobql:facets:JobqlRunFacet:1"


@attr.define(kw_only=True)
class JobqlRunFacet(RunFacet):
    workspace: str
    instanceId: int
    instanceType: str
    # SchedulerX ("schedulerx") or Realtime Compute ("flink") when the instance shows it; the
    # client drops null values, so an unknown source leaves the key out.
    sourceApi: str | None
    globalId: str

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_URL
