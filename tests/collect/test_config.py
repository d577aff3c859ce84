"""The collector's TOML file: read whole and refused, before anything runs, with the file, the
key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobql.collect.config import (
    ConfigError,
    DlfScope,
    FlinkInstance,
    FlinkScope,
    SchedulerxScope,
    load_config,
)

ENV = {"AK": "access", "SK": "secret"}
VALID = """
[defaults]
poll_interval = 30
rate_limit = 2.5

[sources.dlf-prod]
kind = "dlf"
endpoint = "https://dayu.cn-north-4.myhuaweicloud.com"
region = "cn-north-4"
workspace = "prod"
access_key_env = "AK"
secret_key_env = "SK"
project_id = "b384b9e9ab9b4ee8994c8633aabc9505"
dlf_workspace = "a0b1c2"
jobs = ["job_batch", "job_stream"]
page_size = 500
rate_limit = 10

[sources.sx]
kind = "schedulerx"
endpoint = "http://127.0.0.1:8000"
region = "cn-hangzhou"
workspace = "ws1"
access_key_env = "AK"
secret_key_env = "SK"
namespace = "ns"
group_id = "testSchedulerx.defaultGroup"
job_ids = [92583, 92584]
timezone = "Asia/Shanghai"

[sources.rc]
kind = "flink"
endpoint = "https://foas.cn-hangzhou.aliyuncs.com"
region = "cn-hangzhou"
workspace = "stream"
access_key_env = "AK"
secret_key_env = "SK"
project = "project1"
instances = [{ job = "job1", id = 412536 }]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "collect.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refused(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ=ENV if env is None else env)
    message = str(raised.value)
    assert message.startswith(f"{path}: "), message
    return message.removeprefix(f"{path}: ")


def test_a_valid_file_describes_each_source(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), environ=ENV)
    dlf, sx, rc = config.sources
    assert (dlf.name, dlf.kind, dlf.workspace, dlf.region) == (
        "dlf-prod",
        "dlf",
        "prod",
        "cn-north-4",
    )
    assert dlf.endpoint == "https://dayu.cn-north-4.myhuaweicloud.com"
    assert dlf.credentials.access_key == "access"
    assert "secret" not in repr(dlf.credentials)
    assert dlf.scope == DlfScope(
        project_id="b384b9e9ab9b4ee8994c8633aabc9505",
        dlf_workspace="a0b1c2",
        jobs=("job_batch", "job_stream"),
        page_size=500,
    )
    assert (dlf.pace.poll_interval, dlf.pace.rate_limit) == (30.0, 10.0)
    assert (sx.pace.poll_interval, sx.pace.rate_limit) == (30.0, 2.5)
    assert sx.scope == SchedulerxScope(
        namespace="ns",
        group_id="testSchedulerx.defaultGroup",
        job_ids=(92583, 92584),
        timezone="Asia/Shanghai",
    )
    assert rc.scope == FlinkScope(project="project1", instances=(FlinkInstance("job1", 412536),))
    assert [s.name for s in config.select(["rc"])] == ["rc"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("rate_limit = 10", "rate_limit = 0"),
            "sources.dlf-prod.rate_limit: must be more than 0, not 0",
        ),
        (
            ("page_size = 500", "page_size = 5000"),
            "sources.dlf-prod.page_size: must be an integer in 1..1000, not int 5000",
        ),
        (
            ("page_size = 500", "pagesize = 5"),
            "sources.dlf-prod.pagesize: unknown key for a dlf source (known: kind, endpoint",
        ),
        (
            ("page_size = 500", 'secret_key = "s3cret"'),
            "sources.dlf-prod.secret_key: credentials never go in the file",
        ),
        (
            ('kind = "dlf"', 'kind = "airflow"'),
            "sources.dlf-prod.kind: 'airflow' is not one of dlf, schedulerx, flink",
        ),
        (
            ('project_id = "b384b9e9ab9b4ee8994c8633aabc9505"', ""),
            "sources.dlf-prod.project_id: missing",
        ),
        (
            ("job_ids = [92583, 92584]", "job_ids = []"),
            "sources.sx.job_ids: list at least one job id",
        ),
        (
            ("job_ids = [92583, 92584]", 'job_ids = [1, "2"]'),
            "sources.sx.job_ids[1]: must be an integer job id, not '2'",
        ),
        (
            ('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"'),
            "sources.sx.timezone: 'Mars/Olympus' is not an IANA time zone",
        ),
        (
            ('{ job = "job1", id = 412536 }', '{ job = "job1" }'),
            "sources.rc.instances[0]: must be a table",
        ),
        (
            ('endpoint = "http://127.0.0.1:8000"', 'endpoint = "127.0.0.1:8000"'),
            "sources.sx.endpoint: '127.0.0.1:8000' is not an endpoint URL",
        ),
        (
            ("poll_interval = 30", "poll_interval = -1"),
            "defaults.poll_interval: must be more than 0, not -1",
        ),
        (
            ("page_size = 500", "window = 864000"),
            "sources.dlf-prod.window: at most 604800 seconds (DLF lists at most 7 days",
        ),
        (("[sources.rc]", "[sources.'r c']"), "sources.r c: a source name is 1..128 letters"),
    ],
)
def test_a_bad_value_is_refused_with_its_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in VALID
    assert refused(tmp_path, VALID.replace(old, new, 1)).startswith(message)


def test_a_credential_variable_that_is_not_set_is_refused(tmp_path: Path) -> None:
    assert refused(tmp_path, VALID, {"AK": "access"}) == (
        "sources.dlf-prod.secret_key_env: the environment variable SK is not set"
    )


def test_no_credentials_are_needed_to_read_the_status(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), environ={}, credentials=False)
    assert len(config.sources) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sources.a\nkind = 1", "not valid TOML: "),
        ("", "sources: missing (a table)"),
        ("[sources]", "sources: no sources: add a [sources.NAME] table"),
        ("title = 'x'\n[sources.a]\nkind = 'dlf'", "title: unknown key (known: defaults, sources)"),
    ],
)
def test_a_file_that_is_not_a_configuration_is_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    assert refused(tmp_path, text).startswith(message)


def test_an_unknown_source_name_is_refused(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), environ=ENV)
    with pytest.raises(
        ConfigError, match="no source named 'nope' \\(the file has dlf-prod, sx, rc\\)"
    ):
        config.select(["nope"])


def test_a_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path / "missing.toml", environ=ENV)
