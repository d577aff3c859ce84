"""emit_cursor and emit_run_state: where each OpenLineage emitter stands in the event log, and
the last state it sent per run.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import jobql.storage.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "emit_cursor",
        sa.Column("id", KEY, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=True),
        sa.Column("held_until", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", jobql.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emit_cursor")),
        sa.UniqueConstraint("name", name=op.f("uq_emit_cursor_name")),
    )
    op.create_table(
        "emit_run_state",
        sa.Column("id", KEY, nullable=False),
        sa.Column("emitter", sa.String(length=128), nullable=False),
        sa.Column("instance_id", KEY, nullable=False),
        sa.Column("node", sa.String(length=512), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance.id"],
            name=op.f("fk_emit_run_state_instance_id_instance"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emit_run_state")),
        sa.UniqueConstraint(
            "instance_id",
            "emitter",
            "node",
            name=op.f("uq_emit_run_state_instance_id_emitter_node"),
        ),
    )


def downgrade() -> None:
    op.drop_table("emit_run_state")
    op.drop_table("emit_cursor")
