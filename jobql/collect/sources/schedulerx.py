"""Alibaba SchedulerX through its SDK (`alibabacloud-schedulerx220190430` on
`alibabacloud-tea-openapi`).

`Client.get_job_instance_list_with_options`: the latest instances of one job (the API's default
page, the latest 10; the collector asks for nothing else, as the API documents it), with the
SDK's default signature (ACS3-HMAC-SHA256), the configured endpoint and protocol, and the
request timeout in `RuntimeOptions`; the SDK retries nothing by itself (no `retry_options`). The
reply is the SDK's response model turned back into its fields (`to_map()`) and read with the
`schedulerx` importer, local times in the source's time zone.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
import urllib3
from alibabacloud_schedulerx220190430 import models
from alibabacloud_schedulerx220190430.client import Client
from alibabacloud_tea_openapi import exceptions as alibaba
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.runtime import RuntimeOptions

from jobql.collect.config import SchedulerxScope, SourceConfig
from jobql.collect.faults import Malformed, Refused, SourceFault, Throttled, Transient
from jobql.collect.sources import read_records
from jobql.storage.records import InstanceRecord

NOT_FOUND = 404


class SchedulerxSource:
    def __init__(self, config: SourceConfig) -> None:
        assert isinstance(config.scope, SchedulerxScope)
        self.name = config.name
        self.workspace = config.workspace
        self.scope = config.scope
        self.zone = ZoneInfo(config.scope.timezone)
        endpoint = urlsplit(config.endpoint)
        timeout_ms = int(config.pace.timeout * 1000)
        self._runtime = RuntimeOptions(read_timeout=timeout_ms, connect_timeout=timeout_ms)
        self._client = Client(
            Config(
                access_key_id=config.credentials.access_key,
                access_key_secret=config.credentials.secret_key,
                endpoint=endpoint.netloc,
                protocol=endpoint.scheme,
                region_id=config.region,
                read_timeout=timeout_ms,
                connect_timeout=timeout_ms,
            )
        )
        self._region = config.region

    def latest_instances(self, job_id: int) -> list[InstanceRecord] | None:
        """The job's latest instances, newest first; None when SchedulerX knows no such job."""
        request = models.GetJobInstanceListRequest(
            namespace=self.scope.namespace,
            group_id=self.scope.group_id,
            job_id=job_id,
            namespace_source=self.scope.namespace_source,
            region_id=self._region,
        )
        what = f"{self.name}: GetJobInstanceList(JobId={job_id})"
        try:
            response = self._client.get_job_instance_list_with_options(request, self._runtime)
        except alibaba.AlibabaCloudException as exc:
            fault = _fault(what, exc)
            if isinstance(fault, Refused) and exc.status_code == NOT_FOUND:
                return None
            raise fault from None
        except UnretryableException as exc:
            raise _transport_fault(what, exc.inner_exception) from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Malformed(f"{what}: the SDK cannot read the reply: {exc!r}") from None
        body = response.body
        if body is None:
            raise Malformed(f"{what}: the reply has no body")
        return read_records(
            json.dumps(body.to_map()),
            format="schedulerx",
            request=what,
            workspace=self.workspace,
            timezone=self.zone,
        )


def _fault(what: str, exc: alibaba.AlibabaCloudException) -> SourceFault:
    code = str(exc.code)
    said = f"{what}: HTTP {exc.status_code} {code}: {exc.message} (request id {exc.request_id})"
    if isinstance(exc, alibaba.ThrottlingException) or code.startswith("Throttling"):
        retry_after = exc.retry_after / 1000 if exc.retry_after else None
        return Throttled(said, code=code, retry_after=retry_after)
    if exc.status_code is not None and exc.status_code >= 500:
        return Transient(said, code=code)
    return Refused(said, code=code)


def _transport_fault(what: str, inner: Any) -> SourceFault:
    # RetryError: the SDK's name for an IOError while sending (timeouts, resets, refusals).
    if isinstance(inner, RetryError | requests.RequestException | urllib3.exceptions.HTTPError):
        return Transient(f"{what}: {type(inner).__name__}: {inner}")
    if isinstance(inner, OSError):
        return Transient(f"{what}: {type(inner).__name__}: {inner}")
    # The SDK reads every reply as JSON before it looks at the status: a body that is not JSON
    # (a proxy's error page, a truncated reply) ends here.
    return Malformed(f"{what}: the SDK cannot read the reply: {inner!r}")
