"""The commands' own metrics: `jobql collect --metrics-address` serves its process's registry
(prometheus-client's server) while it runs, read here over HTTP after a known pass; `jobql import
--metrics-textfile` writes its registry at the end (node_exporter's textfile collector), also
after a failure partway. Values that cannot be used are refused in one line, exit 2."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.cli import main
from jobql.resolvers import ingest
from tests.collect.conftest import unique
from tests.collect.data import DlfUpstream
from tests.collect.upstream import ROOT, Server, free_port, jobql_env, run_jobql
from tests.ops.conftest import Metrics

EXAMPLES = ROOT / "tests" / "importers" / "examples"
# Six instances in four formats (DLF v1 list, SchedulerX, Realtime Compute).
IMPORTED = ["000_example1.json", "000_example3.json", "002_example.json", "004_example.json"]
INGEST = "jobql_ingest_items_total"
PASS_LINE = re.compile(
    r"(?P<source>\S+): pass (?P<number>\d+) (?P<outcome>ok|failed|stopped) .*?"
    r"(?P<read>\d+) instances read: (?P<created>\d+) created, (?P<updated>\d+) updated, "
    r"(?P<unchanged>\d+) unchanged, (?P<stale>\d+) stale, (?P<rejected>\d+) rejected"
)
OUTCOMES = ("created", "updated", "unchanged", "stale", "rejected")
# One source; a pass an hour, so that the scrape after the first pass sees that pass alone.
CONFIG = """
[defaults]
poll_interval = {poll_interval}
rate_limit = 300
timeout = 5

[sources.{name}]
kind = "dlf"
endpoint = "{endpoint}"
region = "cn-north-4"
workspace = "{target}"
access_key_env = "COLLECT_AK"
secret_key_env = "COLLECT_SK"
project_id = "b384b9e9ab9b4ee8994c8633aabc9505"
dlf_workspace = "{dlf}"
page_size = 5
window = 21600
overlap = 600
lookback = 172800
"""


@pytest.fixture(scope="module")
async def source_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """The source: a jobql serving DLF's API (as the SDK calls it), on a database of its own."""
    path = tmp_path_factory.mktemp("source_api") / "source.db"
    server = Server(f"sqlite+aiosqlite:///{path}")
    await server.start()
    yield server
    await server.stop()


async def test_collect_serves_its_own_metrics(
    engine: AsyncEngine, source_api: Server, tmp_path: Path
) -> None:
    dlf = DlfUpstream(source_api.http, unique("ops_dlf"), random.Random(26))
    dlf.seed(jobs=2, per_job=8, span=timedelta(hours=30), open_share=0.4)
    await dlf.push()
    name = unique("ops_src")
    config = tmp_path / "collect.toml"
    fields = {
        "name": name,
        "endpoint": source_api.url,
        "target": unique("ops_m"),
        "dlf": dlf.workspace,
    }
    config.write_text(CONFIG.format(poll_interval=3600, **fields), encoding="utf-8")
    env = jobql_env(
        engine.url.render_as_string(hide_password=False),
        COLLECT_AK="dummy-ak",
        COLLECT_SK="dummy-sk",
        JOBQL_LOG_LEVEL="info",
    )
    # Everything there is now, by a collector of its own; then some runs end, new ones start.
    status, output = await run_jobql("collect", "--config", str(config), "--once", env=env)
    assert status == 0, output
    changed = dlf.progress(new=3)
    assert len(changed) > 3, "no open run ended"
    await dlf.push(changed)

    port = free_port()
    log = tmp_path / "collect.log"
    started = datetime.now(UTC)
    with log.open("wb") as output_file:  # the child writes to its own copy of the descriptor
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobql", "collect", "--config", str(config),
            "--metrics-address", f"127.0.0.1:{port}",
            cwd=ROOT, env=env, stdout=output_file, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        line = await _pass_line(log, name, process)
        assert line["outcome"] == "ok", line
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        scraped = Metrics.parse(response.text)
        counted = {o: scraped.value(INGEST, kind="instance", outcome=o) for o in OUTCOMES}
        # What the pass wrote, as its line says, and as the changes made upstream say.
        assert counted == {o: float(line[o]) for o in OUTCOMES}
        assert (counted["created"], counted["updated"]) == (3, len(changed) - 3)
        assert counted["unchanged"] >= 1  # runs still open, read again
        assert sum(counted.values()) == int(line["read"])
        # The source's gauges, as serve's /metrics shows them from the database.
        success = scraped.value("jobql_collector_last_success_timestamp_seconds", source=name)
        assert started.timestamp() - 1 <= success <= time.time()
        lag = scraped.samples.get(
            ("jobql_collector_lag_seconds", frozenset({("source", name), ("kind", "dlf")}))
        )
        assert lag is not None
        assert 0 <= lag < 600
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _pass_line(log: Path, source: str, process: asyncio.subprocess.Process) -> dict[str, Any]:
    """The first pass line of `source` in the collector's log."""
    deadline = time.monotonic() + 60
    while True:
        text = await asyncio.to_thread(log.read_text)
        for found in PASS_LINE.finditer(text):
            if found["source"] == source:
                return found.groupdict()
        assert process.returncode is None, text
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.1)


def _in_workspace(example: Path, workspace: str, folder: Path) -> str:
    """The example, in `workspace`: Realtime Compute's names its own (`ProjectName`), which
    `--workspace` does not override and other tests write into too."""
    text = example.read_text()
    if '"ProjectName"' not in text:
        return str(example)
    copy = folder / example.name
    copy.write_text(text.replace('"ProjectName": "project1"', f'"ProjectName": "{workspace}"'))
    return str(copy)


def test_import_writes_its_metrics_to_a_textfile(engine: AsyncEngine, tmp_path: Path) -> None:
    env = jobql_env(engine.url.render_as_string(hide_password=False))
    workspace = unique("ops_import")
    files = [_in_workspace(EXAMPLES / name, workspace, tmp_path) for name in IMPORTED]
    textfile = tmp_path / "jobql_import.prom"
    for expected in ("created", "unchanged"):  # the same files twice
        status, output = _jobql(
            "import", "--workspace", workspace, "--metrics-textfile", str(textfile), *files,
            env=env,
        )  # fmt: skip
        assert status == 0, output
        scraped = Metrics.parse(textfile.read_text())
        counted = {o: scraped.value(INGEST, kind="instance", outcome=o) for o in OUTCOMES}
        assert counted == {o: 6.0 if o == expected else 0.0 for o in OUTCOMES}
        assert "process_cpu_seconds_total" in scraped.names()  # the process's whole registry
    assert [p.name for p in tmp_path.glob("*.prom*")] == [textfile.name]  # no temporary file

    # A file refused: what landed is in the file, and the exit status says it failed.
    status, output = _jobql(
        "import", "--workspace", workspace, "--metrics-textfile", str(textfile),
        files[0], str(EXAMPLES / "001_failure.json"), env=env,
    )  # fmt: skip
    assert status == 1
    assert "the body is an error response" in output
    assert Metrics.parse(textfile.read_text()).value(INGEST, outcome="unchanged") == 2


def _jobql(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """`python -m jobql ARGS`: its exit status and output (stdout and stderr together)."""
    done = subprocess.run(
        [sys.executable, "-m", "jobql", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`main` configures logging for the command: put it back after."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_an_import_that_raises_partway_still_writes_its_metrics(
    engine: AsyncEngine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    restore_logging: None,
) -> None:
    """The second file's write fails (the database went away, say): the exception goes on, and
    the file holds the first file's instances (the counters are the process's: a delta)."""
    monkeypatch.setenv("JOBQL_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    real = ingest.import_instances
    calls = 0

    async def failing_second(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionResetError("the database went away")
        return await real(*args, **kwargs)

    monkeypatch.setattr(ingest, "import_instances", failing_second)
    labels = {"kind": "instance", "outcome": "created"}
    before = REGISTRY.get_sample_value(INGEST, labels) or 0.0
    textfile = tmp_path / "jobql_import.prom"
    files = [str(EXAMPLES / name) for name in IMPORTED[:2]]

    def run() -> int:
        return main(
            ["import", "--workspace", unique("ops_partway"), "--metrics-textfile", str(textfile),
             *files]
        )  # fmt: skip

    with pytest.raises(ConnectionResetError):
        await asyncio.to_thread(run)  # the command runs its own event loop
    assert calls == 2
    written = Metrics.parse(textfile.read_text())
    assert written.value(INGEST, **labels) == before + 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["collect", "--metrics-address", "nonsense"],
         "jobql collect: --metrics-address 'nonsense' is not HOST:PORT (a port from 1 to "
         "65535, such as 127.0.0.1:9464)"),
        (["collect", "--metrics-address", "127.0.0.1:99999"],
         "jobql collect: --metrics-address '127.0.0.1:99999' is not HOST:PORT (a port from 1 to "
         "65535, such as 127.0.0.1:9464)"),
        (["collect", "--metrics-address", "::1:9464"],
         "jobql collect: --metrics-address '::1:9464' is an IPv6 address without brackets "
         "(write it as [::1]:9464)"),
        (["import", "--metrics-textfile", "/nonexistent-ops/jobql.prom", "x.json"],
         "jobql import: --metrics-textfile /nonexistent-ops/jobql.prom: no directory "
         "/nonexistent-ops"),
        (["import", "--metrics-textfile", "/tmp", "x.json"],
         "jobql import: --metrics-textfile /tmp: is a directory"),
        (["import", "--metrics-textfile", "/proc/jobql.prom", "x.json"],
         "jobql import: --metrics-textfile /proc/jobql.prom: cannot write in /proc: "),
    ],
)  # fmt: skip
def test_values_that_cannot_be_used_are_refused_in_one_line(
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message)
    assert captured.err.count("\n") == 1, captured.err
    assert captured.out == ""


def test_a_bad_address_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBQL_COLLECT_METRICS_ADDRESS", "localhost")
    assert main(["collect", "--status"]) == 2
    assert capsys.readouterr().err == (
        "jobql: JOBQL_COLLECT_METRICS_ADDRESS='localhost' is not HOST:PORT (a port from 1 to "
        "65535, such as 127.0.0.1:9464)\n"
    )


def test_an_address_in_use_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    monkeypatch.setenv("COLLECT_AK", "ak")
    monkeypatch.setenv("COLLECT_SK", "sk")
    monkeypatch.setenv("JOBQL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    config = tmp_path / "collect.toml"
    fields = {"name": "dlf", "endpoint": "http://127.0.0.1:9", "target": "t", "dlf": "d"}
    config.write_text(CONFIG.format(poll_interval=1, **fields), encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(
            ["collect", "--config", str(config), "--metrics-address", f"127.0.0.1:{port}"]
        )
    assert status == 2
    assert capsys.readouterr().err == (
        f"jobql collect: cannot serve metrics on 127.0.0.1:{port}: Address already in use\n"
    )
    assert not (tmp_path / "unused.db").exists()  # refused before anything ran
