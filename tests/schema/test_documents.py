"""A document is parsed once; one that does not parse is refused each time as before."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry.schema.schema as strawberry_schema
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.schema import create_schema
from jobql.schema.limits import Limits
from tests.factories import error_codes, execute

JOBS = "query($first: Int) { jobs(first: $first) { nodes { name } } }"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The documents Strawberry parses."""
    seen: list[str] = []
    parse = strawberry_schema.parse

    def counting(source: str, **options: Any) -> Any:
        seen.append(source)
        return parse(source, **options)

    monkeypatch.setattr(strawberry_schema, "parse", counting)
    return seen


async def test_a_document_is_parsed_once(engine: AsyncEngine, parses: list[str]) -> None:
    schema = create_schema(fast_path=False)  # the fast path would not parse either
    for first in (1, 2, 3):
        result = await execute(engine, JOBS, {"first": first}, using=schema)
        assert result.errors is None
    assert parses == [JOBS]
    # Another schema (other limits) parses for itself.
    other = create_schema(Limits(max_tokens=100), fast_path=False)
    await execute(engine, JOBS, {"first": 1}, using=other)
    assert parses == [JOBS, JOBS]


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("{ jobs(first: 1) { nodes { name } }", "GRAPHQL_PARSE_FAILED"),
        ("{ " + "__typename " * 30 + "}", "QUERY_TOO_COMPLEX"),
    ],
)
async def test_a_refused_document_is_parsed_and_refused_each_time(
    engine: AsyncEngine, parses: list[str], document: str, code: str
) -> None:
    schema = create_schema(Limits(max_tokens=20))
    for _ in range(2):
        result = await execute(engine, document, using=schema)
        assert result.data is None
        assert error_codes(result) == [code]
    assert parses == [document, document]
