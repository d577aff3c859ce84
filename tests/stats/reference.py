"""Statistics computed in plain Python, to check the databases against (no numpy)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile_cont(values: Sequence[float | int | None], fraction: float) -> float | None:
    """PostgreSQL's definition: sort the non-null values, take the ones at 0-based ranks
    floor(f * (n - 1)) and ceil(f * (n - 1)), interpolate linearly between them
    (`lo + (position - floor) * (hi - lo)`, in doubles, as its float8_lerp)."""
    ordered = sorted(float(v) for v in values if v is not None)
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def mean(values: Sequence[int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
