"""`python -m bench --db-cpus N` pins the private cluster: its postmaster and every process it
started (backends it forks later inherit the mask)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from bench.pgcluster import PrivateCluster, _children


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: nothing to pin to")
def test_pin_puts_the_postmaster_and_its_children_on_the_first_cores(tmp_path: Path) -> None:
    # A stand-in postmaster with a child, as PostgreSQL has its background processes.
    parent = subprocess.Popen(["sh", "-c", "sleep 60 & wait"])
    try:
        deadline = time.monotonic() + 10
        while not (children := _children(parent.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert children, "the stand-in postmaster started no child"
        (tmp_path / "postmaster.pid").write_text(f"{parent.pid}\n{tmp_path}\n")
        cluster = object.__new__(PrivateCluster)
        cluster.data_dir = tmp_path
        first = min(os.sched_getaffinity(0))
        assert cluster.pin(1) == {first}
        for pid in [parent.pid, *children]:
            assert os.sched_getaffinity(pid) == {first}
    finally:
        for pid in _children(parent.pid):
            os.kill(pid, 9)
        parent.kill()
        parent.wait()
