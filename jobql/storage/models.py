"""The store: workspace, job, instance, instance_node; and collect_checkpoint, where `jobql collect`
stands in each source.

Every table has an integer surrogate key `id`; it is the tie-breaker of every order. Vendor ids
(`vendor_job_id`, `vendor_instance_id`) are kept as reported: an instance id is unique only within
its job. Enumerations are stored by member name, times through `UtcDateTime`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from jobql.storage.types import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (auto-assigned); BigInteger there
# would be BIGINT and need explicit ids.
Key = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


Ddl = TypeVar("Ddl", Index, UniqueConstraint, ForeignKeyConstraint)


def only(dialect: str, item: Ddl) -> Ddl:
    """A constraint or index that exists on one dialect only (PostgreSQL's partitioned tables
    need the partition key in every unique key and allow no foreign key to them without it; see
    docs/partitioning.md). `create_all` honours it, and so does the migrations' drift check
    (`jobql.storage.partitions.schema_filters`)."""
    item.info["dialect"] = dialect
    return item.ddl_if(dialect=dialect)


class Workspace(Base):
    __tablename__ = "workspace"

    id: Mapped[int] = mapped_column(Key, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)


class Job(Base):
    __tablename__ = "job"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        Index("ix_job_parent_id", "parent_id"),
    )

    id: Mapped[int] = mapped_column(Key, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(512))
    vendor_job_id: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(16), default="BATCH")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    parent_node_name: Mapped[str | None] = mapped_column(String(512))
    # Set by upsertJobs' parentName: such a link is kept; others follow the `<P>_<node>` rule.
    parent_explicit: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # OpenLineage's job.namespace (POST /api/v1/lineage); null for jobs of other sources.
    namespace: Mapped[str | None] = mapped_column(String(512))

    parent: Mapped[Job | None] = relationship(remote_side=[id], lazy="raise")


class Instance(Base):
    __tablename__ = "instance"
    __table_args__ = (
        # PostgreSQL: partitioned by plan_time, PK (id, plan_time); (job_id, vendor_instance_id)
        # stays unique through `instance_key` (ingest) and this index with the partition key.
        only("sqlite", UniqueConstraint("job_id", "vendor_instance_id")),
        only("postgresql", UniqueConstraint("job_id", "vendor_instance_id", "plan_time")),
        # PostgreSQL: no instance without its key row, so that a key ingest creates is a new
        # instance (see InstanceKey).
        only(
            "postgresql",
            ForeignKeyConstraint(
                ["job_id", "vendor_instance_id"],
                ["instance_key.job_id", "instance_key.vendor_instance_id"],
            ),
        ),
        # Keyset windows: (scope, sort key, id) for every InstanceOrderField, per workspace and per
        # job. A nullable sort key pages in two ranges of the same index: values, then nulls.
        Index("ix_instance_ws_plan", "workspace_id", "plan_time", "id"),
        Index("ix_instance_ws_start", "workspace_id", "start_time", "id"),
        Index("ix_instance_ws_end", "workspace_id", "end_time", "id"),
        Index("ix_instance_ws_vendor", "workspace_id", "vendor_instance_id", "id"),
        Index("ix_instance_job_plan", "job_id", "plan_time", "id"),
        Index("ix_instance_job_start", "job_id", "start_time", "id"),
        Index("ix_instance_job_end", "job_id", "end_time", "id"),
        # Filters: status and instance type, newest first.
        Index("ix_instance_ws_status_plan", "workspace_id", "status", "plan_time", "id"),
        Index("ix_instance_ws_type_plan", "workspace_id", "instance_type", "plan_time", "id"),
        # An OpenLineage run id names one instance per workspace; NULLs (other sources) repeat
        # freely on both databases.
        only("sqlite", Index("ix_instance_ws_run_id", "workspace_id", "run_id", unique=True)),
        only(
            "postgresql",
            Index("ix_instance_ws_run_id_plan", "workspace_id", "run_id", "plan_time", unique=True),
        ),
    )

    id: Mapped[int] = mapped_column(Key, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"))
    vendor_instance_id: Mapped[int] = mapped_column(BigInteger)
    job_instance_name: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(24))
    instance_type: Mapped[str] = mapped_column(String(16), default="GENERAL")
    plan_time: Mapped[datetime] = mapped_column(UtcDateTime)
    start_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    submit_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    execute_time: Mapped[float | None] = mapped_column(Float)
    force_success: Mapped[bool] = mapped_column(Boolean, default=False)
    ignore_success: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int | None] = mapped_column(Integer)
    # When the reporting system observed this state; orders concurrent reports (ingestion).
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    # Dispatch facet (SchedulerX). The facet is null when all of these are null.
    dispatch_trigger_type: Mapped[str | None] = mapped_column(String(16))
    dispatch_time_type: Mapped[str | None] = mapped_column(String(16))
    dispatch_worker_address: Mapped[str | None] = mapped_column(String(256))
    dispatch_executor: Mapped[str | None] = mapped_column(String(256))
    dispatch_progress: Mapped[str | None] = mapped_column(Text)
    dispatch_result: Mapped[str | None] = mapped_column(Text)
    dispatch_data_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    dispatch_schedule_time: Mapped[datetime | None] = mapped_column(UtcDateTime)

    # Runtime facet (Realtime Compute / Flink). The facet is null when all of these are null.
    runtime_actual_state: Mapped[str | None] = mapped_column(String(16))
    runtime_expect_state: Mapped[str | None] = mapped_column(String(16))
    runtime_api_type: Mapped[str | None] = mapped_column(String(16))
    runtime_engine_version: Mapped[str | None] = mapped_column(String(128))
    runtime_cluster_id: Mapped[str | None] = mapped_column(String(256))
    runtime_queue_name: Mapped[str | None] = mapped_column(String(256))
    runtime_engine_job_handler: Mapped[str | None] = mapped_column(String(512))
    runtime_code: Mapped[str | None] = mapped_column(Text)
    runtime_properties: Mapped[str | None] = mapped_column(Text)
    runtime_plan_json: Mapped[str | None] = mapped_column(Text)
    # The source's comma-separated text, kept verbatim (REST returns it; GraphQL splits it).
    runtime_packages: Mapped[str | None] = mapped_column(Text)
    runtime_input_delay: Mapped[int | None] = mapped_column(BigInteger)
    runtime_auto_scale_params: Mapped[str | None] = mapped_column(Text)
    runtime_last_error_message: Mapped[str | None] = mapped_column(Text)
    runtime_last_error_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    runtime_last_operator: Mapped[str | None] = mapped_column(String(256))
    runtime_last_operate_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    runtime_starter: Mapped[str | None] = mapped_column(String(256))

    # OpenLineage (POST /api/v1/lineage, jobql/resolvers/lineage.py): the run's UUID as text,
    # the reporter's error message, the run's other facets as JSON text (facet name -> facet,
    # the newest event's per name), and what the mapping needs to be order-free (JSON text: the
    # event times seen, of the run and of its child runs, the nodes).
    run_id: Mapped[str | None] = mapped_column(String(36))
    error_message: Mapped[str | None] = mapped_column(Text)
    lineage_facets: Mapped[str | None] = mapped_column(Text)
    lineage_state: Mapped[str | None] = mapped_column(Text)


class InstanceNode(Base):
    __tablename__ = "instance_node"
    __table_args__ = (
        only("sqlite", UniqueConstraint("instance_id", "name")),
        only("postgresql", UniqueConstraint("instance_id", "name", "instance_plan_time")),
        only(
            "sqlite", Index("ix_instance_node_instance_position", "instance_id", "position", "id")
        ),
        # PostgreSQL: both halves of the node's key, then the order of Instance.nodes, so the
        # node subqueries (`instance_id = ? AND instance_plan_time = ?`) walk it in order.
        only(
            "postgresql",
            Index(
                "ix_instance_node_instance_plan_position",
                "instance_id",
                "instance_plan_time",
                "position",
                "id",
            ),
        ),
        # PostgreSQL: no foreign key to the partitioned instance; prune deletes nodes itself.
        only(
            "sqlite",
            ForeignKeyConstraint(["instance_id"], ["instance.id"], ondelete="CASCADE"),
        ),
    )

    id: Mapped[int] = mapped_column(Key, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(Key)
    # Its instance's plan_time, always (ingest keeps it so): PostgreSQL's partition key of nodes,
    # and what lets a read from an instance to its nodes touch one partition.
    instance_plan_time: Mapped[datetime] = mapped_column(UtcDateTime)
    # The position the source listed the node in; the order of Instance.nodes.
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(512))
    type: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    plan_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    start_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    submit_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    retry_times: Mapped[int | None] = mapped_column(Integer)
    input_row_count: Mapped[int | None] = mapped_column(BigInteger)
    speed: Mapped[float | None] = mapped_column(Float)
    log_path: Mapped[str | None] = mapped_column(Text)
    # The reporter's error message (OpenLineage's errorMessage facet of a child run).
    error_message: Mapped[str | None] = mapped_column(Text)


class CollectCheckpoint(Base):
    """Where `jobql collect` stands in one source (its name in the collector's config) and scope (a
    job, an instance, or "" for the source as a whole): written in the transaction that stores the
    data it covers, so a restart resumes exactly there."""

    __tablename__ = "collect_checkpoint"
    __table_args__ = (UniqueConstraint("source", "scope"),)

    id: Mapped[int] = mapped_column(Key, primary_key=True)
    source: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16))
    # The source's own bookmark as JSON (see jobql/collect/checkpoints.py).
    position: Mapped[str | None] = mapped_column(Text)
    # The data of this scope is complete up to this time (lag = now - high_water).
    high_water: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class InstanceEvent(Base):
    """The instance event log: one row per change to an instance (created, a field or its nodes
    changed), appended by the writing transaction itself and read by cursor after it commits
    (`jobql/storage/events.py`). Its id is the event's position: ids are handed out in commit
    order (see `events.append` and `InstanceEventPending`). A log, not a relation: no foreign
    keys, so that appending locks no row it names and pruning is a plain delete. The filter
    columns (status ... ignore_success) hold the instance as this change left it, so that a
    subscription's filter decides on the change itself, not on whatever the instance became
    later."""

    __tablename__ = "instance_event"
    # AUTOINCREMENT on SQLite: an id is never handed out twice, even after the newest rows are
    # pruned (a plain rowid would reuse them, and an old cursor would name a new event).
    __table_args__ = (Index("ix_instance_event_at", "at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Key, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(Key)
    job_id: Mapped[int] = mapped_column(Key)
    instance_id: Mapped[int] = mapped_column(Key)
    vendor_instance_id: Mapped[int] = mapped_column(BigInteger)
    # CREATED, STATUS_CHANGED or UPDATED (see jobql/storage/enums.py InstanceEventKind).
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    previous_status: Mapped[str | None] = mapped_column(String(24))
    instance_type: Mapped[str] = mapped_column(String(16))
    plan_time: Mapped[datetime] = mapped_column(UtcDateTime)
    force_success: Mapped[bool] = mapped_column(Boolean)
    ignore_success: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class InstanceEventPending(Base):
    """PostgreSQL: one writing transaction's events on their way into the log. The transaction
    inserts one row (its changes as a JSON array, in order); a deferred trigger moves them into
    `instance_event` when it commits, and deletes the row: so ids are handed out at commit, in
    commit order, under a lock held only while committing (see jobql/storage/events.py). The
    table is UNLOGGED on PostgreSQL (a row never outlives its transaction) and unused on SQLite,
    whose writers are serialised anyway."""

    __tablename__ = "instance_event_pending"

    id: Mapped[int] = mapped_column(Key, primary_key=True)
    changes: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class EmitCursor(Base):
    """Where an OpenLineage emitter (`jobql/emit/`) stands in the instance event log: the id of
    the last event whose RunEvents its transport accepted, and the process that holds it now
    (a lease: one emitter per name at a time, whatever the workers and hosts)."""

    __tablename__ = "emit_cursor"

    id: Mapped[int] = mapped_column(Key, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    position: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str | None] = mapped_column(String(256))
    held_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EmitRunState(Base):
    """The last OpenLineage state (START, COMPLETE, FAIL, ABORT) an emitter sent for a run: an
    instance (`node` "") or one of its nodes; written with the emitter's cursor, so that each
    change is sent once per transition, not once per event that mentions the run."""

    __tablename__ = "emit_run_state"
    __table_args__ = (
        UniqueConstraint("instance_id", "emitter", "node"),
        # PostgreSQL: no foreign key to the partitioned instance; prune deletes these itself.
        only(
            "sqlite",
            ForeignKeyConstraint(["instance_id"], ["instance.id"], ondelete="CASCADE"),
        ),
    )

    id: Mapped[int] = mapped_column(Key, primary_key=True)
    emitter: Mapped[str] = mapped_column(String(128))
    instance_id: Mapped[int] = mapped_column(Key)
    node: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16))


class InstanceKey(Base):
    """PostgreSQL's arbiter of (job_id, vendor_instance_id): the partitioned `instance` can only
    keep it unique together with plan_time, so ingest creates this row (ON CONFLICT DO NOTHING)
    and locks it before it writes the instance; two writers of one instance wait here, whatever
    plan times they report. Every instance has its row (a foreign key from `instance`; ingest,
    the bulk load and the conversion write them), so a row ingest has just created is a new
    instance, with nothing to read. `instance_id` and `plan_time` say where its instance is (set
    by ingest with the lock held, by the bulk load and the conversion; NULL before the instance
    is written), so that ingest reads one month's partition instead of probing every month; a
    read that does not find it there reads the table. Prune deletes the rows of what it deletes.
    Unused (empty) on SQLite, whose writes are serialised anyway. See docs/partitioning.md."""

    __tablename__ = "instance_key"

    job_id: Mapped[int] = mapped_column(Key, primary_key=True, autoincrement=False)
    vendor_instance_id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=False
    )
    instance_id: Mapped[int | None] = mapped_column(Key)
    plan_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
