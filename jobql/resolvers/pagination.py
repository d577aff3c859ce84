"""Page arguments -> keyset windows, and pages -> connections with cursors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from jobql.errors import BadUserInput
from jobql.storage.identifiers import CursorCodec, CursorContext, InvalidIdentifier, ValueKind
from jobql.storage.paging import KeysetWindow, Page, Position

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageArgs:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None


@dataclass(slots=True)
class Connection(Generic[T]):
    """One page of a connection; `count` runs only when a client selects totalCount."""

    items: list[T]
    cursors: list[str]
    has_next: bool
    has_previous: bool
    count: Callable[[], Awaitable[int]] = field(repr=False)

    @property
    def start_cursor(self) -> str | None:
        return self.cursors[0] if self.cursors else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def keyset_window(
    args: PageArgs, codec: CursorCodec, context: CursorContext, kind: ValueKind
) -> KeysetWindow:
    if args.first is not None and args.last is not None:
        raise BadUserInput("Pass either `first` or `last`, not both.")
    for name in ("first", "last"):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= MAX_PAGE_SIZE:
            raise BadUserInput(f"`{name}` must be between 1 and {MAX_PAGE_SIZE}, got {value}.")
    after = _position(args.after, "after", codec, context, kind)
    before = _position(args.before, "before", codec, context, kind)
    if args.last is not None:
        return KeysetWindow(limit=args.last, after=after, before=before, from_end=True)
    return KeysetWindow(limit=args.first or DEFAULT_PAGE_SIZE, after=after, before=before)


def _position(
    cursor: str | None, name: str, codec: CursorCodec, context: CursorContext, kind: ValueKind
) -> Position | None:
    if cursor is None:
        return None
    try:
        return codec.decode(context, cursor, kind=kind)
    except InvalidIdentifier as exc:
        raise BadUserInput(
            f"`{name}` is not a valid cursor for this connection, workspace and order."
        ) from exc


def to_connection(
    page: Page[T],
    codec: CursorCodec,
    context: CursorContext,
    position_of: Callable[[T], Position],
    count: Callable[[], Awaitable[int]],
) -> Connection[T]:
    return Connection(
        items=page.rows,
        cursors=[codec.encode(context, position_of(row)) for row in page.rows],
        has_next=page.has_next,
        has_previous=page.has_previous,
        count=count,
    )
