"""Alibaba Realtime Compute (Flink) through its SDK (`aliyun-python-sdk-foas` on
`aliyun-python-sdk-core`).

`GetInstanceRequest` on `AcsClient.do_action_with_exception` (JSON), with the configured endpoint
(`set_endpoint`) and protocol (`set_protocol_type`), the client's own ROA signer, its timeouts,
and its retries switched off (the collector paces and retries). The body it returns is read with
the `flink-instance` importer.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkfoas.request.v20181111.GetInstanceRequest import GetInstanceRequest

from jobql.collect.config import FlinkScope, SourceConfig
from jobql.collect.faults import Malformed, Refused, SourceFault, Throttled, Transient
from jobql.collect.sources import read_records
from jobql.storage.records import InstanceRecord

INSTANCE_MISSING = "InvalidInstance.NotFound"
# aliyun-python-sdk-core's code for a request that got no HTTP answer (timeouts, resets).
HTTP_ERROR = "SDK.HttpError"


class FlinkSource:
    def __init__(self, config: SourceConfig) -> None:
        assert isinstance(config.scope, FlinkScope)
        self.name = config.name
        self.workspace = config.workspace
        self.scope = config.scope
        endpoint = urlsplit(config.endpoint)
        self._host = endpoint.netloc
        self._protocol = endpoint.scheme
        # The SDK logs every error answer and unreadable body itself (ERROR, WARNING); the
        # collector logs every fault with its source and request instead.
        logging.getLogger("aliyunsdkcore").setLevel(logging.CRITICAL)
        self._client = AcsClient(
            config.credentials.access_key,
            config.credentials.secret_key,
            config.region,
            auto_retry=False,
            max_retry_time=0,
            connect_timeout=config.pace.timeout,
            timeout=config.pace.timeout,
        )

    def instance(self, job_name: str, instance_id: int) -> InstanceRecord | None:
        """The instance as GetInstance reports it; None when it does not exist."""
        request = GetInstanceRequest()
        request.set_endpoint(self._host)
        request.set_protocol_type(self._protocol)
        request.set_projectName(self.scope.project)
        request.set_jobName(job_name)
        request.set_instanceId(str(instance_id))
        what = f"{self.name}: GetInstance(jobName={job_name}, instanceId={instance_id})"
        try:
            body = self._client.do_action_with_exception(request)
        except ServerException as exc:
            fault = _fault(what, exc)
            if fault.code == INSTANCE_MISSING:
                return None
            raise fault from None
        except ClientException as exc:
            said = f"{what}: {exc.get_error_code()}: {exc.get_error_msg()}"
            if exc.get_error_code() == HTTP_ERROR:
                raise Transient(said, code=HTTP_ERROR) from None
            raise Refused(said, code=exc.get_error_code()) from None
        records = read_records(
            body, format="flink-instance", request=what, workspace=self.workspace
        )
        if len(records) != 1 or (records[0].job_name, records[0].instance_id) != (
            job_name,
            instance_id,
        ):
            raise Malformed(f"{what}: the reply is not that instance")
        return records[0]


def _fault(what: str, exc: ServerException) -> SourceFault:
    status, code = exc.get_http_status(), str(exc.get_error_code())
    said = (
        f"{what}: HTTP {status} {code}: {exc.get_error_msg()} (request id {exc.get_request_id()})"
    )
    if status == 429 or code.startswith("Throttling"):
        return Throttled(said, code=code)
    if status >= 500:
        return Transient(said, code=code)
    return Refused(said, code=code)
