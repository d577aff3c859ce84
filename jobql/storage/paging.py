"""Windows over ordered rows: keyset windows for GraphQL, offset windows for the source REST APIs.

An order is a sort key plus the surrogate id as tie-breaker, both in the same direction. Rows whose
sort key is null come after all others in both directions, so a nullable key pages in two ranges:
the values, then the nulls ordered by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, and_, func, literal, or_, select, tuple_
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import UnaryExpression

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
    column: ColumnElement[Any]
    id: ColumnElement[int]
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

    def after(self, position: Position) -> ColumnElement[bool]:
        """Rows strictly after `position` in this order."""
        if position.value is None:
            return and_(self.column.is_(None), self._id_beyond(position.id))
        beyond = self._beyond(position)
        return or_(beyond, self.column.is_(None)) if self.nullable else beyond

    def before(self, position: Position) -> ColumnElement[bool]:
        """Rows strictly before `position` in this order."""
        if position.value is None:
            return or_(
                self.column.is_not(None),
                and_(self.column.is_(None), self._id_short_of(position.id)),
            )
        key = tuple_(self.column, self.id)
        bound = tuple_(_bind_like(self.column, position.value), position.id)
        return key > bound if self.descending else key < bound

    def _beyond(self, position: Position) -> ColumnElement[bool]:
        key = tuple_(self.column, self.id)
        bound = tuple_(_bind_like(self.column, position.value), position.id)
        return key < bound if self.descending else key > bound

    def _id_beyond(self, id_: int) -> ColumnElement[bool]:
        return self.id < id_ if self.descending else self.id > id_

    def _id_short_of(self, id_: int) -> ColumnElement[bool]:
        return self.id > id_ if self.descending else self.id < id_


def _bind_like(column: ColumnElement[Any], value: Any) -> ColumnElement[Any]:
    return literal(value, type_=column.type)


def window_conditions(key: SortKey, window: KeysetWindow) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if window.after is not None:
        conditions.append(key.after(window.after))
    if window.before is not None:
        conditions.append(key.before(window.before))
    return conditions


def apply_window(statement: Select[Any], key: SortKey, window: Window) -> Select[Any]:
    """Order and limit one statement; a keyset window fetches one extra row to see beyond it."""
    if isinstance(window, OffsetWindow):
        return statement.order_by(*key.order_by()).limit(window.limit).offset(window.offset)
    statement = statement.where(*window_conditions(key, window))
    return statement.order_by(*key.order_by(reverse=window.from_end)).limit(window.limit + 1)


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
    inner = statement.add_columns(rank).where(*window_conditions(key, window)).subquery()
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
