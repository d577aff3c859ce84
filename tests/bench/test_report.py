"""The benchmark's tables: what a reader of bench/results sees."""

from __future__ import annotations

from typing import Any

from bench.report import _table, aggregate


def _result(round_: int, p99: float) -> dict[str, Any]:
    return {
        "case": "W6",
        "connections": 64,
        "workers": 2,
        "contender": "jobql-compiled",
        "round": round_,
        "req_s": 400.0 + round_,
        "wrk_p99_ms": p99,
        "rss_mb": 250,
        "wrk_failures": 0,
        "wrk_socket_errors": 0,
    }


def test_the_p99_under_load_is_in_the_table_where_no_sequential_p99_is() -> None:
    rows = aggregate([_result(1, 120.0), _result(2, 480.0), _result(3, 300.0)])
    header, rule, row = _table(rows, {"jobql-compiled"})[2:]
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert len(columns) == len(cells) == rule.count("|") - 1
    shown = dict(zip(columns, cells, strict=True))
    assert shown["p99 ms"] == "–"  # W6 makes no sequential run
    assert shown["p99 ms under load"] == "300.00"  # the median over the rounds


def test_a_contender_that_cannot_answer_has_a_row_that_says_why() -> None:
    rows = aggregate([{**_result(1, 120.0), "case": "W7", "connections": 16, "workers": 1}])
    lines = _table(rows, {"jobql-compiled"}, {"postgraphile": "no percentiles"})
    header, row = lines[2], lines[-1]
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    shown = dict(zip(columns, cells, strict=True))
    assert shown["contender"] == "postgraphile"
    assert shown["req/s"] == "not run"
    assert shown["req/s per round"] == "no percentiles"


def test_every_row_shows_the_database_bound_ceiling() -> None:
    """1000 / db CPU ms per request: what one database core serves were it the only limit."""
    result = {**_result(1, 120.0), "case": "W1", "connections": 16, "workers": 1}
    rows = aggregate([{**result, "cpu_db_ms": 2.5}, {**result, "round": 2, "cpu_db_ms": 1.5}])
    header, _, row = _table(rows, {"jobql-compiled"})[2:]
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    shown = dict(zip(columns, [cell.strip() for cell in row.strip("|").split("|")], strict=True))
    assert shown["CPU ms/req db"] == "2.00"  # the median over the rounds
    assert shown["db-bound req/s per db core"] == "500"
    without = aggregate([result])  # no database CPU measured (a server without /proc access)
    cells = _table(without, {"jobql-compiled"})[-1].strip("|").split("|")
    assert cells[columns.index("db-bound req/s per db core")].strip() == "–"
