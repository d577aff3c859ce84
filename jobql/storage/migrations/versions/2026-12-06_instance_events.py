"""instance_event: the append-only log of changes to instances that subscriptions read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import jobql.storage.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "instance_event",
        sa.Column("id", KEY, nullable=False),
        sa.Column("workspace_id", KEY, nullable=False),
        sa.Column("job_id", KEY, nullable=False),
        sa.Column("instance_id", KEY, nullable=False),
        sa.Column("vendor_instance_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("previous_status", sa.String(length=24), nullable=True),
        sa.Column("instance_type", sa.String(length=16), nullable=False),
        sa.Column("plan_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("force_success", sa.Boolean(), nullable=False),
        sa.Column("ignore_success", sa.Boolean(), nullable=False),
        sa.Column("at", jobql.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_event")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_instance_event_at", "instance_event", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_instance_event_at", table_name="instance_event")
    op.drop_table("instance_event")
