"""What one compiled statement can carry on each database, known before it runs.

A compiled read nests a correlated subquery per nested connection or link, so a deep selection
makes a deeply nested statement. SQLite 3.40 parses with a fixed stack of 100 entries (newer
releases grow it) and fails such a statement with "parser stack overflow" when it runs; it also
caps expression depth and columns. Rather than a guessed depth limit, SQLite's own compiler is
asked: the statement is prepared (`EXPLAIN`, nothing is read) against an empty in-memory copy of
jobql's tables, in the same SQLite library the engine uses, once per statement shape. A refusal
there is the measured budget of that library: the planner serves that root field the reference
way, before any SQL reaches the database.

PostgreSQL has no such limit within reach: it prepares the compiled statements of every
selection up to depth 40 (tested), which is where Python's recursion limit ends the planning
first (the planner then serves the root field the reference way).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import ClauseElement
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.compiler import SQLCompiler

from jobql.storage.models import Base
from jobql.storage.sqlite_functions import register_sqlite_functions

# Verdicts kept per statement shape (SQLAlchemy's cache key: the SQL text without the values).
VERDICT_CACHE_SIZE = 1024
_SQLITE = SQLiteDialect_pysqlite()


class NotExpressible(ValueError):
    """A plan that one statement cannot carry on this database: serve it another way."""


class Refused(NotExpressible):
    """The database's own compiler refuses the statement (SQLite: parser stack, expression
    depth, too many columns)."""


class _SQLiteCompiler:
    """An empty in-memory database with jobql's tables and functions (used under `_lock`)."""

    def __init__(self) -> None:
        self.connection = sqlite3.connect(":memory:", check_same_thread=False)
        register_sqlite_functions(self.connection)
        for table in Base.metadata.sorted_tables:
            self.connection.execute(str(CreateTable(table).compile(dialect=_SQLITE)))

    def refusal(self, statement: ClauseElement) -> str | None:
        compiled = statement.compile(dialect=_SQLITE, compile_kwargs={"render_postcompile": True})
        assert isinstance(compiled, SQLCompiler)
        values = [None] * len(compiled.positiontup or ())
        try:
            self.connection.execute("EXPLAIN " + str(compiled), values).close()
        except sqlite3.Error as exc:
            return str(exc)
        return None


_compiler: _SQLiteCompiler | None = None
_verdicts: OrderedDict[Any, str | None] = OrderedDict()
_lock = threading.Lock()


def check(statement: ClauseElement, dialect: str) -> None:
    """Raise `Refused` when `dialect`'s database would refuse `statement` before running it."""
    if dialect != "sqlite":
        return
    global _compiler
    cache_key = statement._generate_cache_key()
    shape = cache_key.key if cache_key is not None else None
    with _lock:
        if shape is not None and shape in _verdicts:
            _verdicts.move_to_end(shape)
            verdict = _verdicts[shape]
        else:
            if _compiler is None:
                _compiler = _SQLiteCompiler()
            verdict = _compiler.refusal(statement)
            if shape is not None:
                _verdicts[shape] = verdict
                if len(_verdicts) > VERDICT_CACHE_SIZE:
                    _verdicts.popitem(last=False)
    if verdict is not None:
        raise Refused(f"SQLite {sqlite3.sqlite_version} refuses the statement: {verdict}")


__all__ = ["NotExpressible", "Refused", "check"]
