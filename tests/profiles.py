"""Hypothesis profiles of the generated-document tests (`test_fuzz.py`, `test_differential.py`):
`ci`, a fixed (derandomized) sample, and `full`, a larger random one, chosen per test module
with an environment variable. Registered as `jobql-<name>-<profile>` and applied to those tests
only: Hypothesis loads a profile of its own named `ci` on CI machines, which registering one of
that name here would replace for every Hypothesis test."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "print_blob": False,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
}


def profile(name: str, variable: str, *, ci: int, full: int) -> settings:
    """The profile `variable` (an environment variable, `ci` by default) names."""
    settings.register_profile(f"jobql-{name}-ci", max_examples=ci, derandomize=True, **_COMMON)
    settings.register_profile(f"jobql-{name}-full", max_examples=full, **_COMMON)
    chosen = os.environ.get(variable, "ci")
    if chosen not in ("ci", "full"):
        raise pytest.UsageError(f"{variable}={chosen!r}: use ci or full")
    return settings.get_profile(f"jobql-{name}-{chosen}")
