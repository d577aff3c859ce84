"""The benchmark's correctness gate runs in CI: every contender answers what jobql answers.

No timings are asserted; this proves that `python -m bench` still works end to end (data, servers,
PostGraphile's mapping, the comparison) on a small PostgreSQL database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest

from bench import run
from bench.contenders.registry import Contender, normalise, postgraphile_missing
from bench.measure import BenchError
from bench.workloads import Case
from tests.conftest import PG_ADMIN_URL

REPO = Path(__file__).resolve().parents[2]
CASES = ("W1", "W2-page1", "W2-deep", "W3", "W4", "W4-count", "W5")
# Statistics: stock Strawberry and PostGraphile cannot answer them (UNANSWERED), so they are not
# asked; jobql's strategies and L0 must agree.
STATS_CASES = ("W7",)


def _missing(message: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def _path_without(tool: str, folder: Path) -> str:
    """A PATH with every command of this one but `tool`: a machine where it was never installed."""
    folder.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            link = folder / entry.name
            if entry.name != tool and not link.exists() and not link.is_symlink():
                link.symlink_to(entry.path)
    return str(folder)


@pytest.mark.postgres
def test_quick_gate_passes_for_every_contender(tmp_path: Path) -> None:
    """On a machine without `wrk` (a fresh one): the gate needs no load generator."""
    if missing := postgraphile_missing():
        _missing(missing)
    env = {**os.environ, "PATH": _path_without("wrk", tmp_path / "bin")}
    done = subprocess.run(
        [
            sys.executable, "-m", "bench", "--gate-only", "--instances", "3000",
            "--postgres-url", PG_ADMIN_URL,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    if "is not reachable" in output or "Connect call failed" in output:
        _missing(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    assert done.returncode == 0, output[-4000:]
    for case in CASES:
        assert f"[gate] {case}: 4 contenders agree" in output or (
            f"[gate] {case}: 5 contenders agree" in output
        ), output[-4000:]
    for case in STATS_CASES:
        not_asked = "(not asked: stock-strawberry, postgraphile)"
        assert f"[gate] {case}: 2 contenders agree {not_asked}" in output or (
            f"[gate] {case}: 3 contenders agree {not_asked}" in output
        ), output[-4000:]
    assert "gate passed" in output
    assert "wrk missing" in output, output[-4000:]


def test_gate_stops_on_a_difference_with_a_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = Contender("jobql-reference", "jobql")
    other = Contender("L0", "l0")
    case = Case("W3", "W3", {})
    answers = {
        "jobql-reference": {"instance": {"id": "SW5zdGFuY2U6MQ==", "status": "FAIL"}},
        "L0": {"instance": {"id": "SW5zdGFuY2U6MQ==", "status": "SUCCESS"}},
    }

    def fetch(contender: Contender, _server: Any, _case: Case) -> Any:
        return answers[contender.name]

    monkeypatch.setattr(run, "_fetch", fetch)
    with pytest.raises(BenchError) as raised:
        run.gate([reference, other], dict.fromkeys(answers), [case])
    message = str(raised.value)
    assert "L0 differs from jobql-reference on W3" in message
    assert '-  "status": "FAIL"' in message
    assert '+  "status": "SUCCESS"' in message

    answers["L0"] = answers["jobql-reference"]
    run.gate([reference, other], dict.fromkeys(answers), [case])


def test_gate_does_not_ask_a_contender_what_it_cannot_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = Contender("jobql-reference", "jobql")
    l0 = Contender("L0", "l0")
    stock = Contender("stock-strawberry", "stock")
    case = Case("W7", "W7", {})
    answer = {"instanceStats": [{"count": 3, "successRate": 1.0}]}
    asked: list[str] = []

    def fetch(contender: Contender, _server: Any, _case: Case) -> Any:
        asked.append(contender.name)
        return answer

    monkeypatch.setattr(run, "_fetch", fetch)
    run.gate(
        [reference, l0, stock], dict.fromkeys(["jobql-reference", "L0", "stock-strawberry"]), [case]
    )
    assert asked == ["jobql-reference", "L0"]
    assert "[gate] W7: 2 contenders agree (not asked: stock-strawberry)" in capsys.readouterr().out


def test_an_answer_without_rows_or_counts_voids_the_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = Contender("jobql-reference", "jobql")
    case = Case("W7", "W7", {})
    nothing = {"instanceStats": [{"count": 0, "successRate": None, "timeline": []}]}
    monkeypatch.setattr(run, "_fetch", lambda *_: nothing)
    with pytest.raises(BenchError, match="jobql returns no rows for W7"):
        run.gate([reference], {"jobql-reference": None}, [case])


def test_normalisation_masks_cursors_and_reformats_times_only() -> None:
    stock = {
        "edges": [
            {
                "cursor": "YXJyYXljb25uZWN0aW9uOjA=",
                "node": {"planTime": "2025-05-31T19:56:17.269000+00:00"},
            }
        ],
        "pageInfo": {"endCursor": "YXJyYXljb25uZWN0aW9uOjA=", "hasNextPage": True},
    }
    assert normalise(stock, times=True, cursors=True) == {
        "edges": [{"cursor": "<cursor>", "node": {"planTime": "2025-05-31T19:56:17.269Z"}}],
        "pageInfo": {"endCursor": "<cursor>", "hasNextPage": True},
    }
    # A wrong time or a missing page still differs after normalisation.
    moved = {"edges": [{"cursor": "x", "node": {"planTime": "2025-05-31T19:56:17.270Z"}}]}
    assert normalise(moved, times=True, cursors=True) != normalise(
        {"edges": [{"cursor": "y", "node": {"planTime": "2025-05-31T19:56:17.269Z"}}]},
        times=False,
        cursors=True,
    )
