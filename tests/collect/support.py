"""Sources as the collector's configuration describes them, for tests."""

from __future__ import annotations

from jobql.collect.config import (
    Credentials,
    DlfScope,
    FlinkInstance,
    FlinkScope,
    Pace,
    SchedulerxScope,
    SourceConfig,
)
from tests.collect.upstream import UPSTREAM_TIMEZONE

DUMMY = Credentials("dummy-access-key", "dummy-secret-key")
# Fast and patient: small timeouts and waits, many retries (faults are injected on purpose).
TEST_PACE = Pace(
    poll_interval=0.2, rate_limit=500.0, timeout=1.0, retries=8, backoff=0.02, backoff_max=0.2
)


def dlf_source(
    name: str,
    endpoint: str,
    dlf_workspace: str,
    workspace: str,
    pace: Pace = TEST_PACE,
    *,
    page_size: int = 100,
    window: float = 86_400.0,
    overlap: float = 3_600.0,
    lookback: float = 86_400.0,
) -> SourceConfig:
    return SourceConfig(
        name=name,
        kind="dlf",
        endpoint=endpoint,
        region="cn-north-4",
        workspace=workspace,
        credentials=DUMMY,
        scope=DlfScope(
            project_id="b384b9e9ab9b4ee8994c8633aabc9505",
            dlf_workspace=dlf_workspace,
            page_size=page_size,
            window=window,
            overlap=overlap,
            lookback=lookback,
        ),
        pace=pace,
    )


def schedulerx_source(
    name: str,
    endpoint: str,
    namespace: str,
    workspace: str,
    job_ids: list[int],
    pace: Pace = TEST_PACE,
) -> SourceConfig:
    return SourceConfig(
        name=name,
        kind="schedulerx",
        endpoint=endpoint,
        region="cn-hangzhou",
        workspace=workspace,
        credentials=DUMMY,
        scope=SchedulerxScope(
            namespace=namespace,
            group_id="testSchedulerx.defaultGroup",
            job_ids=tuple(job_ids),
            timezone=UPSTREAM_TIMEZONE,
        ),
        pace=pace,
    )


def flink_source(
    name: str,
    endpoint: str,
    project: str,
    workspace: str,
    instances: list[tuple[str, int]],
    pace: Pace = TEST_PACE,
) -> SourceConfig:
    return SourceConfig(
        name=name,
        kind="flink",
        endpoint=endpoint,
        region="cn-hangzhou",
        workspace=workspace,
        credentials=DUMMY,
        scope=FlinkScope(
            project=project, instances=tuple(FlinkInstance(job, key) for job, key in instances)
        ),
        pace=pace,
    )
