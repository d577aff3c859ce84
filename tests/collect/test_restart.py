"""`jobql collect` as it runs in production: a process reading all three kinds of source through
a proxy that injects faults, killed (SIGKILL) at random points while the upstream changes, and
restarted; then stopped with SIGTERM. Afterwards the collecting jobql answers as the upstream does
for every followed job, no instance is stored twice, and another pass writes nothing."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx

from jobql.storage import migrate
from jobql.storage.engine import create_engine
from tests.collect.compare import assert_same_jobs, workspace_answer
from tests.collect.conftest import unique
from tests.collect.data import DlfUpstream, FlinkUpstream, SchedulerxUpstream
from tests.collect.proxy import FaultProxy, at_random, never
from tests.collect.upstream import ROOT, UPSTREAM_TIMEZONE, Server, jobql_env, run_jobql
from tests.rest.live import live_app

KILLS = 4
PASS_LINE = re.compile(
    r"(?P<source>\S+): pass \d+ (?P<outcome>ok|failed|stopped) .*?(?P<created>\d+) created, "
    r"(?P<updated>\d+) updated"
)

CONFIG = """
[defaults]
poll_interval = 0.3
rate_limit = 300
timeout = 0.6
retries = 10
backoff = 0.02
backoff_max = 0.2

[sources.dlf]
kind = "dlf"
endpoint = "{endpoint}"
region = "cn-north-4"
workspace = "{dlf_target}"
access_key_env = "COLLECT_AK"
secret_key_env = "COLLECT_SK"
project_id = "b384b9e9ab9b4ee8994c8633aabc9505"
dlf_workspace = "{dlf}"
page_size = 5
window = 21600
overlap = 600
lookback = 172800

[sources.sx]
kind = "schedulerx"
endpoint = "{endpoint}"
region = "cn-hangzhou"
workspace = "{sx_target}"
access_key_env = "COLLECT_AK"
secret_key_env = "COLLECT_SK"
namespace = "{sx}"
group_id = "testSchedulerx.defaultGroup"
job_ids = [{job_ids}]
timezone = "{timezone}"

[sources.rc]
kind = "flink"
endpoint = "{endpoint}"
region = "cn-hangzhou"
workspace = "{rc_target}"
access_key_env = "COLLECT_AK"
secret_key_env = "COLLECT_SK"
project = "{rc}"
instances = [{instances}]
"""


async def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def requests_seen(proxy: FaultProxy, count: int) -> Callable[[], bool]:
    return lambda: len(proxy.seen) >= count


async def test_killed_and_restarted_at_random_points_the_collector_loses_and_repeats_nothing(
    tmp_path: Path, upstream: Server, proxy: FaultProxy
) -> None:
    rng = random.Random(2026_12_06)
    dlf = DlfUpstream(upstream.http, unique("dlf"), random.Random(31))
    dlf.seed(jobs=3, per_job=15, span=timedelta(hours=40), open_share=0.3)
    sx = SchedulerxUpstream(upstream.http, unique("sx"), random.Random(32))
    sx.seed(jobs=3, per_job=5)
    rc = FlinkUpstream(upstream.http, unique("rc"), random.Random(33))
    for state in ("RUNNING", "RUNNING", "PAUSE", "SUCCESS", "FAIL"):
        rc.add_instance(f"stream_{rng.randint(1, 2)}", state)
    for data in (dlf, sx, rc):
        await data.push()
    targets = {"dlf": unique("m_dlf"), "sx": unique("m_sx"), "rc": unique("m_rc")}
    config = tmp_path / "collect.toml"
    config.write_text(
        CONFIG.format(
            endpoint=proxy.url,
            dlf=dlf.workspace,
            sx=sx.workspace,
            rc=rc.workspace,
            dlf_target=targets["dlf"],
            sx_target=targets["sx"],
            rc_target=targets["rc"],
            job_ids=", ".join(sx.job_names),
            timezone=UPSTREAM_TIMEZONE,
            instances=", ".join(
                f'{{ job = "{job}", id = {key} }}' for job, key in sorted(rc.instances)
            ),
        ),
        encoding="utf-8",
    )
    database = f"sqlite+aiosqlite:///{tmp_path / 'collector.db'}"
    engine = create_engine(database)
    await migrate.upgrade(engine)
    env = jobql_env(database, COLLECT_AK="dummy-ak", COLLECT_SK="dummy-sk", JOBQL_LOG_LEVEL="info")
    logs: list[Path] = []

    async def start() -> asyncio.subprocess.Process:
        log = tmp_path / f"collect-{len(logs)}.log"
        logs.append(log)
        with log.open("wb") as output:  # the child writes to its own copy of the descriptor
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "jobql", "collect", "--config", str(config),
                cwd=ROOT, env=env, stdout=output, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip

    try:
        proxy.decide = at_random(random.Random(34), 0.15)
        for kill in range(KILLS):
            process = await start()
            seen = len(proxy.seen)
            # A random point: after 1 to 60 requests of this process (its pass may be anywhere).
            await wait_for(requests_seen(proxy, seen + rng.randint(1, 60)), 60, "requests")
            if kill in (1, 2):  # the sources change while the collector runs
                await dlf.push(dlf.progress(new=4))
                await sx.push(sx.progress(new_per_job=2))
                await rc.push(rc.progress() if kill == 2 else [])
            process.send_signal(signal.SIGKILL)
            assert await process.wait() == -signal.SIGKILL

        # SIGTERM: the requests in flight finish, their data and checkpoints are stored, exit 0.
        process = await start()
        seen = len(proxy.seen)
        await wait_for(requests_seen(proxy, seen + 5), 60, "requests")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        stopped = logs[-1].read_text()
        assert "SIGTERM: stopping after the requests in flight" in stopped

        # Faults off: one pass catches up with whatever is left, the next one writes nothing.
        proxy.decide = never
        status, output = await run_jobql("collect", "--config", str(config), "--once", env=env)
        assert status == 0, output
        status, output = await run_jobql("collect", "--config", str(config), "--once", env=env)
        assert status == 0, output
        lines = {m["source"]: m for m in PASS_LINE.finditer(output)}
        assert set(lines) == {"dlf", "sx", "rc"}, output
        for line in lines.values():
            assert (line["outcome"], line["created"], line["updated"]) == ("ok", "0", "0"), output

        with live_app(engine) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30.0) as mirror:
                compared = 0
                for data, target in (
                    (dlf, targets["dlf"]),
                    (sx, targets["sx"]),
                    (rc, targets["rc"]),
                ):
                    compared += await assert_same_jobs(
                        upstream.http, data.workspace, mirror, target, data.job_names
                    )
                    assert await workspace_answer(mirror, target) == await workspace_answer(
                        upstream.http, data.workspace
                    )
        assert compared == len(dlf.instances) + len(sx.instances) + len(rc.instances)

        status, output = await run_jobql("collect", "--status", "--config", str(config), env=env)
        assert status == 0, output
        assert re.search(r"^dlf\s+dlf\s+\d{4}-\d\d-\d\dT", output, re.MULTILINE), output
        assert re.search(r"^sx\s+schedulerx\s+\d{4}-", output, re.MULTILINE), output
        assert re.search(r"^rc\s+flink\s+\d{4}-", output, re.MULTILINE), output
    except BaseException:
        for log in logs:
            print(f"--- {log.name}\n{log.read_text()[-4000:]}")
        raise
    finally:
        await engine.dispose()
