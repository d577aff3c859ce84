"""`jobql bench` delegates to the benchmark, and says so clearly when it is not there."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

import pytest

from jobql.cli import main


def test_jobql_bench_hands_its_options_to_the_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[list[str]] = []
    fake = ModuleType("bench.run")
    fake.main = lambda argv: received.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.run", fake)

    assert main(["bench", "--quick", "--only", "W1,W3"]) == 0
    assert received == [["--quick", "--only", "W1,W3"]]


def test_jobql_bench_without_the_benchmark_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.import_module

    def without_bench(name: str, *args: Any) -> Any:
        if name.split(".")[0] == "bench":
            raise ModuleNotFoundError(f"No module named {name!r}", name="bench")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_bench)
    assert main(["bench", "--quick"]) == 1
    error = capsys.readouterr().err
    assert "benchmark suite (package `bench`) is not installed" in error
    assert "Traceback" not in error


def test_other_commands_still_refuse_unknown_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["migrate", "--quick"])
    assert raised.value.code == 2
    assert "unrecognized arguments: --quick" in capsys.readouterr().err
