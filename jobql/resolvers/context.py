"""What every use case needs for one request: its workspace, its connection, its loaders."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.storage.engine import Reader
from jobql.storage.identifiers import CursorCodec
from jobql.storage.loaders import Loaders

DEFAULT_WORKSPACE = "default"


@dataclass(slots=True)
class RequestContext:
    workspace: str
    reader: Reader
    loaders: Loaders
    cursors: CursorCodec

    @classmethod
    def open(
        cls, engine: AsyncEngine, cursors: CursorCodec, workspace: str | None
    ) -> RequestContext:
        name = workspace if workspace else DEFAULT_WORKSPACE
        reader = Reader(engine)
        return cls(
            workspace=name,
            reader=reader,
            loaders=Loaders.create(reader, name),
            cursors=cursors,
        )

    async def close(self) -> None:
        await self.reader.close()
