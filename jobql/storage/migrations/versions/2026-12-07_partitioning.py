"""Partitioned history (docs/partitioning.md): instance_node.instance_plan_time and instance_key
on both dialects; on PostgreSQL, instance and instance_node become range-partitioned by plan time,
one partition per UTC month and a DEFAULT one, their rows copied over with progress.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Rows copied per statement; progress is reported after each.
STEP = 50_000
# Months created after the current one.
AHEAD = 3
# Monthly partitions reach at most this far back for the existing data; older rows go to DEFAULT.
BACK_MONTHS = 120

INSTANCE_INDEXES = {
    "ix_instance_ws_plan": "workspace_id, plan_time, id",
    "ix_instance_ws_start": "workspace_id, start_time, id",
    "ix_instance_ws_end": "workspace_id, end_time, id",
    "ix_instance_ws_vendor": "workspace_id, vendor_instance_id, id",
    "ix_instance_job_plan": "job_id, plan_time, id",
    "ix_instance_job_start": "job_id, start_time, id",
    "ix_instance_job_end": "job_id, end_time, id",
    "ix_instance_ws_status_plan": "workspace_id, status, plan_time, id",
    "ix_instance_ws_type_plan": "workspace_id, instance_type, plan_time, id",
}
KEY_FOREIGN_KEY = "fk_instance_job_id_instance_key"
FOREIGN_KEYS = {
    "instance": [
        ("fk_instance_workspace_id_workspace", "workspace_id", "workspace"),
        ("fk_instance_job_id_job", "job_id", "job"),
    ],
    "instance_node": [("fk_instance_node_workspace_id_workspace", "workspace_id", "workspace")],
}


def _progress() -> Callable[[str], None]:
    report = context.config.attributes.get("progress")
    if report is not None:
        return report  # type: ignore[no-any-return]
    return lambda line: print(line, file=sys.stderr, flush=True)


def _month(value: datetime) -> tuple[int, int]:
    return value.year, value.month


def _next(month: tuple[int, int]) -> tuple[int, int]:
    year, number = month
    return (year + 1, 1) if number == 12 else (year, number + 1)


def _bound(month: tuple[int, int]) -> str:
    return f"'{month[0]:04d}-{month[1]:02d}-01 00:00:00+00'"


def _months(first: tuple[int, int], last: tuple[int, int]) -> list[tuple[int, int]]:
    months, month = [], first
    while month <= last:
        months.append(month)
        month = _next(month)
    return months


def _create_partitions(table: str, months: list[tuple[int, int]]) -> None:
    for month in months:
        op.execute(
            f"CREATE TABLE {table}_p{month[0]:04d}_{month[1]:02d} PARTITION OF {table} "
            f"FOR VALUES FROM ({_bound(month)}) TO ({_bound(_next(month))})"
        )
    op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")


def _unique_ids(table: str, months: list[tuple[int, int]]) -> None:
    """Each partition's own unique index of `id` (the table's key holds the plan time too): by
    it the planner knows an id picks one row even in a partition not yet analyzed, so a
    by-id read's generic plan probes it (`jobql.storage.partitions.UNIQUE_ID`)."""
    names = [f"{table}_p{m[0]:04d}_{m[1]:02d}" for m in months] + [f"{table}_default"]
    for name in names:
        op.execute(f"CREATE UNIQUE INDEX {name}_id_key ON {name} (id)")


def _copy(source: str, target: str, select: str, label: str) -> None:
    """INSERT INTO target SELECT ... FROM source in id ranges, with progress."""
    bind = op.get_bind()
    report = _progress()
    low, high, total = bind.execute(
        sa.text(f"SELECT min(id), max(id), count(*) FROM {source}")
    ).one()
    if not total:
        report(f"{label}: 0 rows")
        return
    started, done, start = time.monotonic(), 0, int(low)
    while start <= int(high):
        end = start + STEP
        done += bind.execute(
            sa.text(f"INSERT INTO {target} {select} WHERE s.id >= :start AND s.id < :end"),
            {"start": start, "end": end},
        ).rowcount
        report(f"{label}: {done}/{total} rows ({time.monotonic() - started:.1f} s)")
        start = end


def _drop_keys_and_indexes(table: str) -> None:
    """Frees the names of an old table's constraints and indexes (the table goes at the end)."""
    bind = op.get_bind()
    constraints = bind.execute(
        sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
            "ORDER BY contype = 'p'"
        ),
        {"t": table},
    ).scalars()
    for name in list(constraints):
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    indexes = bind.execute(
        sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :t"), {"t": table}
    ).scalars()
    for name in list(indexes):
        op.execute(f'DROP INDEX "{name}"')


def _data_months(table: str, column: str) -> list[tuple[int, int]]:
    now = datetime.now(UTC)
    current = _month(now)
    oldest = (current[0] - BACK_MONTHS // 12, current[1])
    low = op.get_bind().scalar(sa.text(f"SELECT min({column}) FROM {table}"))
    first, last = current, current
    for _ in range(AHEAD):
        last = _next(last)
    if low is not None:
        first = max(min(first, _month(low)), oldest)
    return _months(first, last)


def _rebuild(table: str, partitioned: bool, fill: str, months: list[tuple[int, int]]) -> None:
    old = f"{table}_unpartitioned" if partitioned else f"{table}_partitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    _drop_keys_and_indexes(old)
    key = "plan_time" if table == "instance" else "instance_plan_time"
    suffix = f" PARTITION BY RANGE ({key})" if partitioned else ""
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS){suffix}")
    op.execute(f"ALTER TABLE {table} ALTER COLUMN {key} SET NOT NULL")
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
    if partitioned:
        _create_partitions(table, months)
    _copy(old, table, fill, f"{table}")
    op.execute(f"DROP TABLE {old}")
    for name, column, target in FOREIGN_KEYS[table]:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
            f"REFERENCES {target}(id) ON DELETE CASCADE"
        )


def _instance_keys(partitioned: bool) -> None:
    extra = ", plan_time" if partitioned else ""
    op.execute(f"ALTER TABLE instance ADD CONSTRAINT pk_instance PRIMARY KEY (id{extra})")
    name = "uq_instance_job_id_vendor_instance_id" + ("_plan_time" if partitioned else "")
    op.execute(
        f"ALTER TABLE instance ADD CONSTRAINT {name} UNIQUE (job_id, vendor_instance_id{extra})"
    )
    for index, columns in INSTANCE_INDEXES.items():
        op.execute(f"CREATE INDEX {index} ON instance ({columns})")
    run = "ix_instance_ws_run_id" + ("_plan" if partitioned else "")
    op.execute(f"CREATE UNIQUE INDEX {run} ON instance (workspace_id, run_id{extra})")


def _node_keys(partitioned: bool) -> None:
    extra = ", instance_plan_time" if partitioned else ""
    op.execute(f"ALTER TABLE instance_node ADD CONSTRAINT pk_instance_node PRIMARY KEY (id{extra})")
    name = "uq_instance_node_instance_id_name" + ("_instance_plan_time" if partitioned else "")
    op.execute(f"ALTER TABLE instance_node ADD CONSTRAINT {name} UNIQUE (instance_id, name{extra})")
    if partitioned:
        # Both halves of the node's key and the nodes' order: see models.InstanceNode.
        op.execute(
            "CREATE INDEX ix_instance_node_instance_plan_position "
            'ON instance_node (instance_id, instance_plan_time, "position", id)'
        )
    else:
        op.execute(
            "CREATE INDEX ix_instance_node_instance_position "
            'ON instance_node (instance_id, "position", id)'
        )


def upgrade() -> None:
    op.create_table(
        "instance_key",
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vendor_instance_id", sa.BigInteger(), nullable=False),
        sa.Column("instance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        sa.Column("plan_time", _utc()),
        sa.PrimaryKeyConstraint("job_id", "vendor_instance_id", name=op.f("pk_instance_key")),
    )
    if op.get_bind().dialect.name != "postgresql":
        _upgrade_sqlite()
        return
    started = time.monotonic()
    op.execute("ALTER TABLE instance_node DROP CONSTRAINT fk_instance_node_instance_id_instance")
    op.execute("ALTER TABLE emit_run_state DROP CONSTRAINT fk_emit_run_state_instance_id_instance")
    op.execute("ALTER TABLE instance_node ADD COLUMN instance_plan_time TIMESTAMP WITH TIME ZONE")
    months = _data_months("instance", "plan_time")
    # Nodes first, while the old instance table (and its primary key) is there to fill from.
    _rebuild(
        "instance_node",
        True,
        "SELECT s.id, s.workspace_id, s.instance_id, s.position, s.name, s.type, s.status, "
        "s.plan_time, s.start_time, s.end_time, s.submit_time, s.retry_times, s.input_row_count, "
        "s.speed, s.log_path, s.error_message, i.plan_time FROM instance_node_unpartitioned s "
        "JOIN instance i ON i.id = s.instance_id",
        months,
    )
    _rebuild("instance", True, "SELECT s.* FROM instance_unpartitioned s", months)
    _instance_keys(partitioned=True)
    _node_keys(partitioned=True)
    _unique_ids("instance", months)
    _unique_ids("instance_node", months)
    op.execute(
        "INSERT INTO instance_key (job_id, vendor_instance_id, instance_id, plan_time) "
        "SELECT job_id, vendor_instance_id, id, plan_time FROM instance"
    )
    op.execute(
        f"ALTER TABLE instance ADD CONSTRAINT {KEY_FOREIGN_KEY} FOREIGN KEY "
        "(job_id, vendor_instance_id) REFERENCES instance_key (job_id, vendor_instance_id)"
    )
    _progress()(
        f"partitioned: {len(months)} months {months[0][0]:04d}-{months[0][1]:02d} .. "
        f"{months[-1][0]:04d}-{months[-1][1]:02d} and DEFAULT "
        f"({time.monotonic() - started:.1f} s)"
    )


def _upgrade_sqlite() -> None:
    op.add_column("instance_node", sa.Column("instance_plan_time", _utc(), nullable=True))
    op.execute(
        "UPDATE instance_node SET instance_plan_time = "
        "(SELECT plan_time FROM instance WHERE instance.id = instance_node.instance_id)"
    )
    with op.batch_alter_table("instance_node") as batch:
        batch.alter_column("instance_plan_time", existing_type=_utc(), nullable=False)


def _utc() -> Any:
    from jobql.storage.types import UtcDateTime

    return UtcDateTime()


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("instance_node") as batch:
            batch.drop_column("instance_plan_time")
        op.drop_table("instance_key")
        return
    op.execute(f"ALTER TABLE instance DROP CONSTRAINT {KEY_FOREIGN_KEY}")
    _rebuild("instance", False, "SELECT s.* FROM instance_partitioned s", [])
    _instance_keys(partitioned=False)
    _rebuild(
        "instance_node",
        False,
        "SELECT s.* FROM instance_node_partitioned s",
        [],
    )
    _node_keys(partitioned=False)
    op.execute("ALTER TABLE instance_node DROP COLUMN instance_plan_time")
    for table in ("instance_node", "emit_run_state"):
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_instance_id_instance "
            "FOREIGN KEY (instance_id) REFERENCES instance(id) ON DELETE CASCADE"
        )
    op.drop_table("instance_key")
