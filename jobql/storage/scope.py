"""Workspace confinement: the one place that adds the workspace condition to a base query."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from jobql.storage.models import Workspace


def workspace_key(workspace: str) -> ColumnElement[Any]:
    """The workspace's surrogate id as a scalar subquery (no extra statement per request)."""
    return select(Workspace.id).where(Workspace.name == workspace).scalar_subquery()


def in_workspace(column: ColumnElement[int], workspace: str) -> ColumnElement[bool]:
    return column == workspace_key(workspace)
