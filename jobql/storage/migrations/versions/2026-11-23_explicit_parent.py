"""Remember which sub-job links were set explicitly (upsertJobs parentName).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Plain ALTER TABLE on both databases (SQLite adds and drops columns in place): batch mode would
# copy the table, and dropping the old `job` would cascade to every instance.


def upgrade() -> None:
    op.add_column(
        "job",
        sa.Column("parent_explicit", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("job", "parent_explicit")
