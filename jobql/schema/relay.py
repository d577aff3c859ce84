"""Relay global object identification."""

from __future__ import annotations

import strawberry


@strawberry.interface(
    description=(
        "An object with a global id, refetchable with `node(id:)`. Ids are opaque; they stay valid "
        "as long as the object exists and resolve only in the object's workspace."
    )
)
class Node:
    @strawberry.field(description="Global id of the object (opaque).")
    def id(self) -> strawberry.ID:
        raise NotImplementedError
