"""OpenLineage in: job.namespace; instance.run_id (unique per workspace), error_message,
lineage_facets, lineage_state; instance_node.error_message.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs and a CREATE UNIQUE INDEX: no table is rebuilt on SQLite.
    op.add_column("job", sa.Column("namespace", sa.String(length=512), nullable=True))
    op.add_column("instance", sa.Column("run_id", sa.String(length=36), nullable=True))
    op.add_column("instance", sa.Column("error_message", sa.Text(), nullable=True))
    op.add_column("instance", sa.Column("lineage_facets", sa.Text(), nullable=True))
    op.add_column("instance", sa.Column("lineage_state", sa.Text(), nullable=True))
    op.add_column("instance_node", sa.Column("error_message", sa.Text(), nullable=True))
    op.create_index("ix_instance_ws_run_id", "instance", ["workspace_id", "run_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_instance_ws_run_id", table_name="instance")
    with op.batch_alter_table("instance_node") as batch:
        batch.drop_column("error_message")
    with op.batch_alter_table("instance") as batch:
        batch.drop_column("lineage_state")
        batch.drop_column("lineage_facets")
        batch.drop_column("error_message")
        batch.drop_column("run_id")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("namespace")
