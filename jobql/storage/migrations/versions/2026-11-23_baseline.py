"""baseline

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import jobql.storage.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "workspace",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace")),
        sa.UniqueConstraint("name", name=op.f("uq_workspace_name")),
    )
    op.create_table(
        "job",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("vendor_job_id", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("parent_node_name", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["job.id"], name=op.f("fk_job_parent_id_job"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_job_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_job_workspace_id_name")),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index("ix_job_parent_id", ["parent_id"], unique=False)

    op.create_table(
        "instance",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vendor_instance_id", sa.BigInteger(), nullable=False),
        sa.Column("job_instance_name", sa.String(length=512), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("instance_type", sa.String(length=16), nullable=False),
        sa.Column("plan_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("start_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("end_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("submit_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("execute_time", sa.Float(), nullable=True),
        sa.Column("force_success", sa.Boolean(), nullable=False),
        sa.Column("ignore_success", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("reported_at", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("dispatch_trigger_type", sa.String(length=16), nullable=True),
        sa.Column("dispatch_time_type", sa.String(length=16), nullable=True),
        sa.Column("dispatch_worker_address", sa.String(length=256), nullable=True),
        sa.Column("dispatch_executor", sa.String(length=256), nullable=True),
        sa.Column("dispatch_progress", sa.Text(), nullable=True),
        sa.Column("dispatch_result", sa.Text(), nullable=True),
        sa.Column(
            "dispatch_data_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "dispatch_schedule_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("runtime_actual_state", sa.String(length=16), nullable=True),
        sa.Column("runtime_expect_state", sa.String(length=16), nullable=True),
        sa.Column("runtime_api_type", sa.String(length=16), nullable=True),
        sa.Column("runtime_engine_version", sa.String(length=128), nullable=True),
        sa.Column("runtime_cluster_id", sa.String(length=256), nullable=True),
        sa.Column("runtime_queue_name", sa.String(length=256), nullable=True),
        sa.Column("runtime_engine_job_handler", sa.String(length=512), nullable=True),
        sa.Column("runtime_code", sa.Text(), nullable=True),
        sa.Column("runtime_properties", sa.Text(), nullable=True),
        sa.Column("runtime_plan_json", sa.Text(), nullable=True),
        sa.Column("runtime_packages", sa.Text(), nullable=True),
        sa.Column("runtime_input_delay", sa.BigInteger(), nullable=True),
        sa.Column("runtime_auto_scale_params", sa.Text(), nullable=True),
        sa.Column("runtime_last_error_message", sa.Text(), nullable=True),
        sa.Column(
            "runtime_last_error_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("runtime_last_operator", sa.String(length=256), nullable=True),
        sa.Column(
            "runtime_last_operate_time",
            jobql.storage.types.UtcDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("runtime_starter", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_instance_job_id_job"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_instance_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance")),
        sa.UniqueConstraint(
            "job_id", "vendor_instance_id", name=op.f("uq_instance_job_id_vendor_instance_id")
        ),
    )
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.create_index("ix_instance_job_end", ["job_id", "end_time", "id"], unique=False)
        batch_op.create_index("ix_instance_job_plan", ["job_id", "plan_time", "id"], unique=False)
        batch_op.create_index("ix_instance_job_start", ["job_id", "start_time", "id"], unique=False)
        batch_op.create_index(
            "ix_instance_ws_end", ["workspace_id", "end_time", "id"], unique=False
        )
        batch_op.create_index(
            "ix_instance_ws_plan", ["workspace_id", "plan_time", "id"], unique=False
        )
        batch_op.create_index(
            "ix_instance_ws_start", ["workspace_id", "start_time", "id"], unique=False
        )
        batch_op.create_index(
            "ix_instance_ws_status_plan",
            ["workspace_id", "status", "plan_time", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_instance_ws_type_plan",
            ["workspace_id", "instance_type", "plan_time", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_instance_ws_vendor", ["workspace_id", "vendor_instance_id", "id"], unique=False
        )

    op.create_table(
        "instance_node",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "instance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("plan_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("start_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("end_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("submit_time", jobql.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("retry_times", sa.Integer(), nullable=True),
        sa.Column("input_row_count", sa.BigInteger(), nullable=True),
        sa.Column("speed", sa.Float(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance.id"],
            name=op.f("fk_instance_node_instance_id_instance"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_instance_node_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_node")),
        sa.UniqueConstraint("instance_id", "name", name=op.f("uq_instance_node_instance_id_name")),
    )
    with op.batch_alter_table("instance_node", schema=None) as batch_op:
        batch_op.create_index(
            "ix_instance_node_instance_position", ["instance_id", "position", "id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("instance_node", schema=None) as batch_op:
        batch_op.drop_index("ix_instance_node_instance_position")

    op.drop_table("instance_node")
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_index("ix_instance_ws_vendor")
        batch_op.drop_index("ix_instance_ws_type_plan")
        batch_op.drop_index("ix_instance_ws_status_plan")
        batch_op.drop_index("ix_instance_ws_start")
        batch_op.drop_index("ix_instance_ws_plan")
        batch_op.drop_index("ix_instance_ws_end")
        batch_op.drop_index("ix_instance_job_start")
        batch_op.drop_index("ix_instance_job_plan")
        batch_op.drop_index("ix_instance_job_end")

    op.drop_table("instance")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_parent_id")

    op.drop_table("job")
    op.drop_table("workspace")
