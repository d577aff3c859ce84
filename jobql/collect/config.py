"""The collector's configuration: a TOML file of sources, checked whole before anything runs.

```toml
[defaults]                      # optional: pace and retries for every source
poll_interval = 60              # seconds between passes
rate_limit = 5                  # requests per second, at most

[sources.dlf-prod]              # the source's name: its checkpoints are kept under it
kind = "dlf"                    # dlf | schedulerx | flink
endpoint = "https://dayu.cn-north-4.myhuaweicloud.com"
region = "cn-north-4"
workspace = "prod"              # the jobql workspace it writes into
access_key_env = "DLF_AK"       # names of environment variables, never the keys themselves
secret_key_env = "DLF_SK"
project_id = "b384b9e9ab9b4ee8994c8633aabc9505"
dlf_workspace = "a0b1c2"        # DLF's workspace id (absent: DLF's default workspace)
```

Every problem is a `ConfigError` naming the file, the key and the problem.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Kind = Literal["dlf", "schedulerx", "flink"]
KINDS: tuple[Kind, ...] = ("dlf", "schedulerx", "flink")
T = TypeVar("T")

# Longest jobql workspace and source names (the columns' lengths).
MAX_WORKSPACE = 128
MAX_SOURCE_NAME = 128
# DLF's v1 list answers windows of at most 7 days (the SDK's ListJobInstancesRequest says so).
MAX_DLF_WINDOW = 7 * 86_400.0
_SOURCE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# Keys a user might put credentials under: refused with a pointer to the *_env keys.
_CREDENTIAL_KEYS = frozenset(
    {"ak", "sk", "access_key", "secret_key", "access_key_id", "access_key_secret", "secret",
     "password", "token", "security_token", "credentials"}
)  # fmt: skip


class ConfigError(ValueError):
    """A configuration the collector cannot use: `collect.toml: sources.x.rate_limit: ...`."""

    def __init__(self, path: str, key: str | None, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")


@dataclass(frozen=True)
class Pace:
    """How often and how hard a source is asked."""

    poll_interval: float = 60.0
    rate_limit: float = 5.0
    timeout: float = 30.0
    retries: int = 5
    backoff: float = 0.5
    backoff_max: float = 30.0


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class DlfScope:
    project_id: str
    dlf_workspace: str | None = None
    # Empty: every job of the workspace, walked as one.
    jobs: tuple[str, ...] = ()
    page_size: int = 100
    window: float = 86_400.0
    overlap: float = 3_600.0
    lookback: float = 86_400.0


@dataclass(frozen=True)
class SchedulerxScope:
    namespace: str
    group_id: str
    job_ids: tuple[int, ...]
    namespace_source: str | None = None
    timezone: str = "UTC"


@dataclass(frozen=True)
class FlinkInstance:
    job: str
    id: int


@dataclass(frozen=True)
class FlinkScope:
    project: str
    instances: tuple[FlinkInstance, ...]


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: Kind
    endpoint: str
    region: str
    workspace: str
    credentials: Credentials
    scope: DlfScope | SchedulerxScope | FlinkScope
    pace: Pace = Pace()


@dataclass(frozen=True)
class CollectConfig:
    path: str
    sources: tuple[SourceConfig, ...]

    def select(self, names: list[str] | None) -> tuple[SourceConfig, ...]:
        """The sources named (all when None); an unknown name is a ConfigError."""
        if not names:
            return self.sources
        known = {source.name: source for source in self.sources}
        for name in names:
            if name not in known:
                raise ConfigError(
                    self.path, None, f"no source named {name!r} (the file has {', '.join(known)})"
                )
        return tuple(known[name] for name in dict.fromkeys(names))


_COMMON = ("kind", "endpoint", "region", "workspace", "access_key_env", "secret_key_env")
_PACE = ("poll_interval", "rate_limit", "timeout", "retries", "backoff", "backoff_max")
_SCOPE: dict[str, tuple[str, ...]] = {
    "dlf": (
        "project_id",
        "dlf_workspace",
        "jobs",
        "page_size",
        "window",
        "overlap",
        "lookback",
    ),
    "schedulerx": ("namespace", "group_id", "job_ids", "namespace_source", "timezone"),
    "flink": ("project", "instances"),
}


def load_config(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    default_timezone: str = "UTC",
    credentials: bool = True,
) -> CollectConfig:
    """Read and check the whole file; credentials are read from the variables it names (unless
    `credentials` is false: for `--status`, which reads only the database)."""
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(label, None, f"cannot read it: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(label, None, f"not valid TOML: {exc}") from None
    return parse_config(
        data,
        path=label,
        environ=os.environ if environ is None else environ,
        default_timezone=default_timezone,
        credentials=credentials,
    )


def parse_config(
    data: Mapping[str, Any],
    *,
    path: str,
    environ: Mapping[str, str],
    default_timezone: str = "UTC",
    credentials: bool = True,
) -> CollectConfig:
    reader = _Reader(path, credentials=credentials)
    reader.only(data, "", ("defaults", "sources"))
    defaults = reader.table(data, "defaults", required=False)
    reader.only(defaults, "defaults", _PACE)
    base = _pace(reader, defaults, "defaults", Pace())
    sources_table = reader.table(data, "sources", required=True)
    if not sources_table:
        raise ConfigError(path, "sources", "no sources: add a [sources.NAME] table")
    sources = []
    for name in sources_table:
        key = f"sources.{name}"
        if not _SOURCE_NAME.fullmatch(name) or len(name) > MAX_SOURCE_NAME:
            raise ConfigError(
                path,
                key,
                f"a source name is 1..{MAX_SOURCE_NAME} letters, digits, '.', '_' or '-'",
            )
        table = reader.table(sources_table, name, required=True, prefix="sources")
        sources.append(_source(reader, name, table, base, environ, default_timezone))
    return CollectConfig(path=path, sources=tuple(sources))


def _source(
    reader: _Reader,
    name: str,
    table: Mapping[str, Any],
    base: Pace,
    environ: Mapping[str, str],
    default_timezone: str,
) -> SourceConfig:
    prefix = f"sources.{name}"
    kind = reader.text(table, prefix, "kind")
    if kind not in KINDS:
        raise ConfigError(
            reader.path, f"{prefix}.kind", f"{kind!r} is not one of {', '.join(KINDS)}"
        )
    reader.only(table, prefix, (*_COMMON, *_PACE, *_SCOPE[kind]), kind=kind)
    endpoint = _endpoint(reader, table, prefix)
    workspace = reader.text(table, prefix, "workspace")
    if len(workspace) > MAX_WORKSPACE:
        raise ConfigError(
            reader.path, f"{prefix}.workspace", f"longer than {MAX_WORKSPACE} characters"
        )
    scope: DlfScope | SchedulerxScope | FlinkScope
    if kind == "dlf":
        scope = _dlf(reader, table, prefix)
    elif kind == "schedulerx":
        scope = _schedulerx(reader, table, prefix, default_timezone)
    else:
        scope = _flink(reader, table, prefix)
    return SourceConfig(
        name=name,
        kind=kind,
        endpoint=endpoint,
        region=reader.text(table, prefix, "region"),
        workspace=workspace,
        credentials=Credentials(
            access_key=_secret(reader, table, prefix, "access_key_env", environ),
            secret_key=_secret(reader, table, prefix, "secret_key_env", environ),
        ),
        scope=scope,
        pace=_pace(reader, table, prefix, base),
    )


def _endpoint(reader: _Reader, table: Mapping[str, Any], prefix: str) -> str:
    value = reader.text(table, prefix, "endpoint")
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ConfigError(
            reader.path,
            f"{prefix}.endpoint",
            f"{value!r} is not an endpoint URL like https://host or http://host:port",
        )
    try:
        parts.port  # noqa: B018  # raises on a port out of range
    except ValueError as exc:
        raise ConfigError(reader.path, f"{prefix}.endpoint", str(exc)) from None
    return f"{parts.scheme}://{parts.netloc}"


def _secret(
    reader: _Reader,
    table: Mapping[str, Any],
    prefix: str,
    key: str,
    environ: Mapping[str, str],
) -> str:
    variable = reader.text(table, prefix, key)
    value = environ.get(variable, "")
    if not value and reader.credentials:
        raise ConfigError(
            reader.path, f"{prefix}.{key}", f"the environment variable {variable} is not set"
        )
    return value


def _pace(reader: _Reader, table: Mapping[str, Any], prefix: str, base: Pace) -> Pace:
    pace = Pace(
        poll_interval=reader.number(table, prefix, "poll_interval", base.poll_interval),
        rate_limit=reader.number(table, prefix, "rate_limit", base.rate_limit),
        timeout=reader.number(table, prefix, "timeout", base.timeout),
        retries=reader.integer(table, prefix, "retries", base.retries, low=0, high=100),
        backoff=reader.number(table, prefix, "backoff", base.backoff),
        backoff_max=reader.number(table, prefix, "backoff_max", base.backoff_max),
    )
    if pace.backoff_max < pace.backoff:
        raise ConfigError(
            reader.path, f"{_join(prefix, 'backoff_max')}", "must not be less than backoff"
        )
    return pace


def _dlf(reader: _Reader, table: Mapping[str, Any], prefix: str) -> DlfScope:
    jobs = reader.strings(table, prefix, "jobs")
    window = reader.number(table, prefix, "window", DlfScope.window)
    if window > MAX_DLF_WINDOW:
        raise ConfigError(
            reader.path,
            f"{prefix}.window",
            f"at most {MAX_DLF_WINDOW:.0f} seconds (DLF lists at most 7 days at a time), not "
            f"{window:g}",
        )
    overlap = reader.number(table, prefix, "overlap", DlfScope.overlap, minimum=0.0)
    return DlfScope(
        project_id=reader.text(table, prefix, "project_id"),
        dlf_workspace=reader.text(table, prefix, "dlf_workspace", required=False) or None,
        jobs=tuple(dict.fromkeys(jobs)),
        page_size=reader.integer(table, prefix, "page_size", DlfScope.page_size, low=1, high=1000),
        window=window,
        overlap=overlap,
        lookback=reader.number(table, prefix, "lookback", DlfScope.lookback),
    )


def _schedulerx(
    reader: _Reader, table: Mapping[str, Any], prefix: str, default_timezone: str
) -> SchedulerxScope:
    job_ids = reader.list_of(table, prefix, "job_ids", _int64, "an integer job id")
    if not job_ids:
        raise ConfigError(reader.path, f"{prefix}.job_ids", "list at least one job id")
    zone = reader.text(table, prefix, "timezone", required=False) or default_timezone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            reader.path, f"{prefix}.timezone", f"{zone!r} is not an IANA time zone"
        ) from None
    return SchedulerxScope(
        namespace=reader.text(table, prefix, "namespace"),
        group_id=reader.text(table, prefix, "group_id"),
        job_ids=tuple(dict.fromkeys(job_ids)),
        namespace_source=reader.text(table, prefix, "namespace_source", required=False) or None,
        timezone=zone,
    )


def _flink(reader: _Reader, table: Mapping[str, Any], prefix: str) -> FlinkScope:
    def instance(raw: Any) -> FlinkInstance | None:
        if not isinstance(raw, dict) or set(raw) != {"job", "id"}:
            return None
        job, key = raw["job"], _int64(raw["id"])
        if not isinstance(job, str) or not job.strip() or key is None:
            return None
        return FlinkInstance(job=job, id=key)

    instances = reader.list_of(
        table, prefix, "instances", instance, 'a table { job = "name", id = 123 }'
    )
    if not instances:
        raise ConfigError(reader.path, f"{prefix}.instances", "list at least one instance")
    return FlinkScope(
        project=reader.text(table, prefix, "project"), instances=tuple(dict.fromkeys(instances))
    )


def _int64(raw: Any) -> int | None:
    if type(raw) is int and -(2**63) <= raw < 2**63:
        return raw
    return None


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


class _Reader:
    """Typed reads of one table's keys, each failure naming the file and the key."""

    def __init__(self, path: str, *, credentials: bool = True) -> None:
        self.path = path
        self.credentials = credentials

    def fail(self, prefix: str, key: str, problem: str) -> ConfigError:
        return ConfigError(self.path, _join(prefix, key), problem)

    def only(
        self,
        table: Mapping[str, Any],
        prefix: str,
        allowed: tuple[str, ...],
        *,
        kind: str | None = None,
    ) -> None:
        for key in table:
            if key in allowed:
                continue
            if key in _CREDENTIAL_KEYS:
                problem = (
                    "credentials never go in the file: put them in environment variables "
                    "and name those in access_key_env and secret_key_env"
                )
            elif kind is not None:
                problem = f"unknown key for a {kind} source (known: {', '.join(allowed)})"
            else:
                problem = f"unknown key (known: {', '.join(allowed)})"
            raise self.fail(prefix, key, problem)

    def table(
        self, data: Mapping[str, Any], key: str, *, required: bool, prefix: str = ""
    ) -> Mapping[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(prefix, key, "missing (a table)")
            return {}
        if not isinstance(value, dict):
            raise self.fail(prefix, key, f"must be a table, not {_what(value)}")
        return value

    def text(
        self, table: Mapping[str, Any], prefix: str, key: str, *, required: bool = True
    ) -> str:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(prefix, key, "missing")
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(prefix, key, f"must be a non-empty string, not {_what(value)}")
        return value

    def number(
        self,
        table: Mapping[str, Any],
        prefix: str,
        key: str,
        default: float,
        *,
        minimum: float | None = None,
    ) -> float:
        """A positive number of seconds (or per second); `minimum` 0.0 allows zero."""
        value = table.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(prefix, key, f"must be a number, not {_what(value)}")
        if not math.isfinite(value):
            raise self.fail(prefix, key, f"must be a number, not {_what(value)}")
        if minimum is None and value <= 0:
            raise self.fail(prefix, key, f"must be more than 0, not {value}")
        if minimum is not None and value < minimum:
            raise self.fail(prefix, key, f"must be at least {minimum:g}, not {value}")
        return float(value)

    def integer(
        self, table: Mapping[str, Any], prefix: str, key: str, default: int, *, low: int, high: int
    ) -> int:
        value = table.get(key)
        if value is None:
            return default
        if type(value) is not int or not low <= value <= high:
            raise self.fail(prefix, key, f"must be an integer in {low}..{high}, not {_what(value)}")
        return value

    def strings(self, table: Mapping[str, Any], prefix: str, key: str) -> list[str]:
        def one(raw: Any) -> str | None:
            return raw if isinstance(raw, str) and raw.strip() else None

        return self.list_of(table, prefix, key, one, "a non-empty string")

    def list_of(
        self,
        table: Mapping[str, Any],
        prefix: str,
        key: str,
        convert: Callable[[Any], T | None],
        expected: str,
    ) -> list[T]:
        value = table.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(prefix, key, f"must be a list, not {_what(value)}")
        items: list[T] = []
        for index, raw in enumerate(value):
            item = convert(raw)
            if item is None:
                raise self.fail(prefix, f"{key}[{index}]", f"must be {expected}, not {_what(raw)}")
            items.append(item)
        return items


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
