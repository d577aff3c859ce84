"""Functions SQLite lacks, registered on every SQLite connection (see `engine`).

The statistics (`stats`) need PostgreSQL's `percentile_cont`; SQLite gets `jobql_percentiles`,
the same definition computed the same way, over the values its own `json_group_array` collects (a
scalar function: SQLAlchemy's aiosqlite adapter registers functions, not aggregates).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """The percentiles SQLite lacks, as a deterministic function of the connection."""
    dbapi_connection.create_function("jobql_percentiles", 2, percentiles, deterministic=True)


def percentile_cont(ordered: Sequence[float], fraction: float) -> float:
    """PostgreSQL's `percentile_cont` of sorted values: linear interpolation between the values
    at ranks floor and ceil of `fraction * (n - 1)`, with the same floating-point operations as
    its `float8_lerp`, so that both databases give the very same double."""
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return float(ordered[low])
    below = float(ordered[low])
    return below + (position - low) * (float(ordered[high]) - below)


def percentiles(values: str | None, fractions: str) -> str | None:
    """`jobql_percentiles(json_group_array(x), '0.5,0.95')`: the `percentile_cont` of the
    non-null values at each fraction, as a JSON array of numbers in the order given; NULL without
    values (as PostgreSQL's `percentile_cont(ARRAY[...]) WITHIN GROUP (ORDER BY x)`)."""
    if values is None:
        return None
    ordered = sorted(float(v) for v in json.loads(values) if v is not None)
    if not ordered:
        return None
    return json.dumps([percentile_cont(ordered, float(f)) for f in fractions.split(",")])
