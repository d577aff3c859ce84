"""collect_checkpoint: where `jobql collect` stands in each source and scope.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import jobql.storage.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collect_checkpoint",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Text(), nullable=True),
        sa.Column("high_water", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", jobql.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collect_checkpoint")),
        sa.UniqueConstraint("source", "scope", name=op.f("uq_collect_checkpoint_source_scope")),
    )


def downgrade() -> None:
    op.drop_table("collect_checkpoint")
