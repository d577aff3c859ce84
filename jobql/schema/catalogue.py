"""The resolvers whose output the compiled strategy reproduces in SQL.

The type modules mark such a resolver with `@known_resolver`; `execution.compilable_fields`
compiles only fields whose resolver is in `KNOWN_RESOLVERS` (or that have none). Kept apart from
`execution` so that the type modules need not import the executor, which imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

KNOWN_RESOLVERS: set[Callable[..., Any]] = set()


def known_resolver(function: Callable[..., Any]) -> Callable[..., Any]:
    KNOWN_RESOLVERS.add(function)
    return function


__all__ = ["KNOWN_RESOLVERS", "known_resolver"]
