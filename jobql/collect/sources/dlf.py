"""DataArts Studio / DLF through Huawei Cloud's SDK (`huaweicloudsdkdgc` on `huaweicloudsdkcore`).

`DgcClient.list_job_instances` (v1 instance list) and `DgcClient.show_job_instance` (v1 detail
with nodes), built with `BasicCredentials(ak, sk, project_id)`, the configured endpoint (https
or plain http) and the SDK's `HttpConfig` (the request timeout; no retries of its own: the
collector paces and retries). Bodies are read with the `dlf-v1-list` and `dlf-v1-detail`
importers from the SDK response's `raw_content` (its models turn `executeTime` 0.3 into 0).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions as huawei
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkdgc.v1 import DgcClient, ListJobInstancesRequest, ShowJobInstanceRequest

from jobql.collect.config import DlfScope, SourceConfig
from jobql.collect.faults import Malformed, Refused, SourceFault, Throttled, Transient
from jobql.collect.sources import Listing, read_records
from jobql.storage.records import InstanceRecord

T = TypeVar("T")
# Huawei's API gateway answers 429 with this code when a throttling policy is exceeded.
THROTTLED_CODES = frozenset({"APIGW.0308"})
INSTANCE_MISSING = "DLF.0137"


class DlfSource:
    def __init__(self, config: SourceConfig) -> None:
        assert isinstance(config.scope, DlfScope)
        self.name = config.name
        self.workspace = config.workspace
        self.scope = config.scope
        credentials = BasicCredentials(
            config.credentials.access_key, config.credentials.secret_key, self.scope.project_id
        )
        http = HttpConfig(timeout=(config.pace.timeout, config.pace.timeout), retry_times=0)
        self._client = (
            DgcClient.new_builder()
            .with_credentials(credentials)
            .with_endpoint(config.endpoint)
            .with_http_config(http)
            .build()
        )
        # The SDK logs each connection error itself, on a logger without handlers (so Python
        # prints it bare); the collector logs every fault with its source and request instead.
        _quiet(logging.getLogger(f"HuaweiCloud-SDK-{DgcClient.__name__}"))

    def list_instances(
        self, *, job_name: str | None, min_plan_ms: int, max_plan_ms: int, offset: int, limit: int
    ) -> Listing:
        """Instances planned strictly between the bounds (epoch ms), newest first, from row
        `offset`; `total` counts every match."""
        request = ListJobInstancesRequest(
            workspace=self.scope.dlf_workspace,
            job_name=job_name,
            min_plan_time=min_plan_ms,
            max_plan_time=max_plan_ms,
            offset=offset,
            limit=limit,
        )
        what = (
            f"{self.name}: ListJobInstances(jobName={job_name or '*'}, minPlanTime={min_plan_ms}, "
            f"maxPlanTime={max_plan_ms}, offset={offset}, limit={limit})"
        )
        response = _call(what, self._client.list_job_instances, request)
        records = read_records(
            response.raw_content, format="dlf-v1-list", request=what, workspace=self.workspace
        )
        total = response.total
        if type(total) is not int or total < 0:
            raise Malformed(f"{what}: total {total!r} is not a count")
        if len(records) > limit:
            raise Malformed(f"{what}: {len(records)} instances in a page of {limit}")
        return Listing(total=total, records=records)

    def instance_detail(self, job_name: str, instance_id: int) -> InstanceRecord | None:
        """The instance with its nodes; None when DLF says it does not exist (DLF.0137)."""
        request = ShowJobInstanceRequest(
            workspace=self.scope.dlf_workspace, job_name=job_name, instance_id=str(instance_id)
        )
        what = f"{self.name}: ShowJobInstance(jobName={job_name}, instanceId={instance_id})"
        try:
            response = _call(what, self._client.show_job_instance, request)
        except Refused as exc:
            if exc.code == INSTANCE_MISSING:
                return None
            raise
        records = read_records(
            response.raw_content, format="dlf-v1-detail", request=what, workspace=self.workspace
        )
        if len(records) != 1 or (records[0].job_name, records[0].instance_id) != (
            job_name,
            instance_id,
        ):
            raise Malformed(f"{what}: the reply is not the detail of that instance")
        return records[0]


def _quiet(logger: logging.Logger) -> None:
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def _call(what: str, method: Callable[[Any], T], request: Any) -> T:
    try:
        return method(request)
    except huawei.ServiceResponseException as exc:
        raise _fault(what, exc) from None
    except (huawei.ConnectionException, huawei.RequestTimeoutException) as exc:
        raise Transient(f"{what}: {type(exc).__name__}: {exc}") from None
    except requests.RequestException as exc:  # read timeouts and resets the SDK lets through
        raise Transient(f"{what}: {type(exc).__name__}: {exc}") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # The SDK could not make its model of the reply.
        raise Malformed(f"{what}: the SDK cannot read the reply: {exc!r}") from None


def _fault(what: str, exc: huawei.ServiceResponseException) -> SourceFault:
    said = (
        f"{what}: HTTP {exc.status_code} {exc.error_code}: {exc.error_msg} "
        f"(request id {exc.request_id})"
    )
    code = str(exc.error_code)
    if exc.status_code == 429 or code in THROTTLED_CODES:
        return Throttled(said, code=code)
    if exc.status_code >= 500:
        return Transient(said, code=code)
    return Refused(said, code=code)
