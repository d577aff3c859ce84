"""Relay object identification: global ids -> rows of the caller's workspace."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Row

from jobql.errors import BadUserInput
from jobql.resolvers.context import RequestContext
from jobql.storage.identifiers import InvalidIdentifier, decode_global_id, encode_global_id

MAX_IDS = 1000


def global_id(type_name: str, key: int) -> str:
    return encode_global_id(type_name, key)


def parse_global_id(text: str) -> tuple[str, int | None]:
    try:
        return decode_global_id(text)
    except InvalidIdentifier as exc:
        raise BadUserInput(f"{text!r} is not a global object id.") from exc


async def get_object(ctx: RequestContext, text: str) -> tuple[str, Row[Any]] | None:
    """The object a global id names, or None when it names nothing in this workspace."""
    type_name, key = parse_global_id(text)
    if key is None:
        return None
    loader: Any
    if type_name == "Job":
        loader = ctx.loaders.job_by_id
    elif type_name == "Instance":
        loader = ctx.loaders.instance_by_id
    elif type_name == "InstanceNode":
        loader = ctx.loaders.node_by_id
    else:
        return None
    row = await loader.load(key)
    return None if row is None else (type_name, row)


async def get_objects(ctx: RequestContext, texts: list[str]) -> list[tuple[str, Row[Any]] | None]:
    if len(texts) > MAX_IDS:
        raise BadUserInput(f"`ids` takes at most {MAX_IDS} ids, got {len(texts)}.")
    # Validate every id before loading any, so one bad id fails the field without SQL.
    for text in texts:
        parse_global_id(text)
    return list(await asyncio.gather(*(get_object(ctx, text) for text in texts)))
