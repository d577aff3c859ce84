"""Windows over ordered rows: keyset windows for GraphQL, offset windows for the source REST APIs.

An order is a sort key plus the surrogate id as tie-breaker, both in the same direction. Rows whose
sort key is null come after all others in both directions, so a nullable key pages in two ranges:
the values, then the nulls ordered by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    and_,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import KeyedColumnElement, UnaryExpression

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Position:
    """Where a row sits in an order: its sort key value (None when null) and its id."""

    value: Any
    id: int


@dataclass(frozen=True, slots=True)
class KeysetWindow:
    """`limit` rows after `after` and before `before`; the last ones when `from_end`."""

    limit: int
    after: Position | None = None
    before: Position | None = None
    from_end: bool = False


@dataclass(frozen=True, slots=True)
class OffsetWindow:
    limit: int
    offset: int = 0


Window = KeysetWindow | OffsetWindow


@dataclass(slots=True)
class Page(Generic[T]):
    rows: list[T] = field(default_factory=list)
    has_next: bool = False
    has_previous: bool = False


@dataclass(frozen=True, slots=True)
class SortKey:
    column: KeyedColumnElement[Any]
    id: KeyedColumnElement[Any]
    descending: bool
    nullable: bool

    def order_by(self, *, reverse: bool = False) -> list[UnaryExpression[Any]]:
        descending = self.descending != reverse
        column = self.column.desc() if descending else self.column.asc()
        tie = self.id.desc() if descending else self.id.asc()
        if self.nullable:
            # Nulls last in the order itself; reading it backwards puts them first.
            column = column.nulls_first() if reverse else column.nulls_last()
        return [column, tie]

    def value_range(self, window: KeysetWindow) -> list[ColumnElement[bool]] | None:
        """Conditions on the rows with a sort value inside the window; None when there are none."""
        conditions: list[ColumnElement[bool]] = [self.column.is_not(None)] if self.nullable else []
        if window.after is not None:
            if window.after.value is None:
                return None  # past the values, among the nulls
            conditions.append(self._beyond(window.after))
        if window.before is not None and window.before.value is not None:
            conditions.append(self._short_of(window.before))
        return conditions

    def null_range(self, window: KeysetWindow) -> list[ColumnElement[bool]] | None:
        """Conditions on the rows without a sort value inside the window; None if there are none."""
        if not self.nullable:
            return None
        conditions: list[ColumnElement[bool]] = [self.column.is_(None)]
        if window.after is not None and window.after.value is None:
            conditions.append(self._id_beyond(window.after.id))
        if window.before is not None:
            if window.before.value is not None:
                return None  # before a value: the nulls all come later
            conditions.append(self._id_short_of(window.before.id))
        return conditions

    def _beyond(self, position: Position) -> ColumnElement[bool]:
        # A row value comparison: the (scope, key, id) index can seek to it.
        key = tuple_(self.column, self.id)
        bound = tuple_(literal(position.value, type_=self.column.type), position.id)
        return key < bound if self.descending else key > bound

    def _short_of(self, position: Position) -> ColumnElement[bool]:
        key = tuple_(self.column, self.id)
        bound = tuple_(literal(position.value, type_=self.column.type), position.id)
        return key > bound if self.descending else key < bound

    def _id_beyond(self, id_: int) -> ColumnElement[bool]:
        return self.id < id_ if self.descending else self.id > id_

    def _id_short_of(self, id_: int) -> ColumnElement[bool]:
        return self.id > id_ if self.descending else self.id < id_


def window_condition(key: SortKey, window: KeysetWindow) -> ColumnElement[bool]:
    """The window as one condition (for per-parent windows, which rank rather than seek)."""
    ranges = [r for r in (key.value_range(window), key.null_range(window)) if r is not None]
    if not ranges:
        return false()
    return or_(*(and_(true(), *conditions) for conditions in ranges))


def apply_window(
    statement: Select[Any],
    key: SortKey,
    window: Window,
    *,
    numbered: bool = False,
    peek: bool = True,
    inline_limit: bool = False,
) -> Select[Any]:
    """Order and limit one statement; a keyset window fetches one extra row to see beyond it
    (`peek`: a reader that does not ask whether there is more passes False).

    `numbered` adds `_n`, the row's place in the fetch order (1, 2, ...), for statements that
    aggregate the page (the compiled strategy). `inline_limit` writes the LIMIT into the SQL
    text instead of binding it (see `json_sql`).

    With a nullable sort key the window is read as two index-bounded ranges (values, then nulls;
    the other way round when reading from the end) joined by UNION ALL, so that neither range
    costs more than a page, however deep the cursor.
    """
    if isinstance(window, OffsetWindow):
        return statement.order_by(*key.order_by()).limit(window.limit).offset(window.offset)
    count = window.limit + 1 if peek else window.limit
    limit: int | ColumnElement[Any] = literal_column(str(count), Integer) if inline_limit else count
    reverse = window.from_end
    descending = key.descending != reverse
    values = key.value_range(window)
    if not key.nullable:
        bounded = statement.where(*values) if values is not None else statement.where(false())
        limited = bounded.order_by(*key.order_by(reverse=reverse)).limit(limit)
        return _numbered(limited, key, descending, part=False) if numbered else limited
    nulls = key.null_range(window)
    parts = []
    for part, conditions, order in (
        (0, values, [_directed(key.column, descending), _directed(key.id, descending)]),
        (1, nulls, [_directed(key.id, descending)]),
    ):
        if conditions is None:
            continue
        ranked = statement.add_columns(literal(part if not reverse else 1 - part).label("_part"))
        parts.append(select(ranked.where(*conditions).order_by(*order).limit(limit).subquery()))
    if not parts:
        empty = statement.where(false()).limit(limit)
        return _numbered(empty, key, descending, part=False) if numbered else empty
    both = union_all(*parts).subquery()
    limited = (
        select(both)
        .order_by(
            both.c._part,
            _directed(both.c[key.column.key], descending),
            _directed(both.c[key.id.key], descending),
        )
        .limit(limit)
    )
    return _numbered(limited, key, descending, part=True) if numbered else limited


def merge_pages(
    pages: Sequence[Select[Any]], key: SortKey, window: KeysetWindow, *, peek: bool
) -> Select[Any]:
    """One page out of pages of the same window over disjoint sets of rows (`apply_window`'s,
    not numbered): their rows in the window's order, as many as one page fetches. Each part
    stops at a page's end, so the whole reads at most a page per part."""
    both = union_all(*pages).subquery()
    descending = key.descending != window.from_end
    count = window.limit + 1 if peek else window.limit
    return (
        select(both)
        .order_by(
            _directed(both.c[key.column.key], descending),
            _directed(both.c[key.id.key], descending),
        )
        .limit(literal_column(str(count), Integer))
    )


def _numbered(limited: Select[Any], key: SortKey, descending: bool, *, part: bool) -> Select[Any]:
    # Numbered outside the LIMIT, so that numbering never reads more than the page.
    page = limited.subquery()
    order: list[ColumnElement[Any]] = [
        _directed(page.c[key.column.key], descending),
        _directed(page.c[key.id.key], descending),
    ]
    if part:
        order.insert(0, page.c._part)
    return select(page, func.row_number().over(order_by=order).label("_n"))


def _directed(column: ColumnElement[Any], descending: bool) -> UnaryExpression[Any]:
    return column.desc() if descending else column.asc()


def page_from_rows(rows: Sequence[T], window: Window, *, total: int | None = None) -> Page[T]:
    if isinstance(window, OffsetWindow):
        fetched = list(rows)
        more = total is not None and window.offset + len(fetched) < total
        return Page(fetched, has_next=more, has_previous=window.offset > 0)
    more = len(rows) > window.limit
    page = list(rows[: window.limit])
    if window.from_end:
        page.reverse()
        return Page(page, has_next=window.before is not None, has_previous=more)
    return Page(page, has_next=more, has_previous=window.after is not None)


def per_parent_window(
    statement: Select[Any],
    parent: ColumnElement[int],
    parent_name: str,
    key: SortKey,
    window: KeysetWindow,
) -> Select[Any]:
    """The same window for every parent at once: row_number() per parent, not one global LIMIT."""
    rank = (
        func.row_number()
        .over(partition_by=parent, order_by=key.order_by(reverse=window.from_end))
        .label("_rank")
    )
    inner = statement.add_columns(rank).where(window_condition(key, window)).subquery()
    return (
        select(inner)
        .where(inner.c._rank <= window.limit + 1)
        .order_by(inner.c[parent_name], inner.c._rank)
    )


def group_pages(
    rows: Sequence[Row[Any]], parent_ids: Sequence[int], parent_attr: str, window: KeysetWindow
) -> dict[int, Page[Row[Any]]]:
    grouped: dict[int, list[Row[Any]]] = {parent_id: [] for parent_id in parent_ids}
    for row in rows:
        grouped[getattr(row, parent_attr)].append(row)
    return {parent_id: page_from_rows(found, window) for parent_id, found in grouped.items()}
