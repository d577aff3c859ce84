"""instance_event_pending: on PostgreSQL, event ids are handed out when the writing transaction
commits (a deferred trigger), so that the lock keeping them in commit order is held only while
committing, not from the append to the client's COMMIT.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import jobql.storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# pg_advisory_xact_lock's key for "appending to the event log" (b"jobqlev" as a number) and the
# channel readers LISTEN on: the values of jobql/storage/events.py when this was written.
APPEND_LOCK = 29958816131736950
CHANNEL = "jobql_instance_event"

FUNCTION = f"""
CREATE FUNCTION jobql_append_instance_events() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  last_id bigint;
BEGIN
  -- At COMMIT: every later committer waits here until this transaction's commit is visible,
  -- so ids are handed out in commit order and a reader that sees id N sees every id below N.
  PERFORM pg_advisory_xact_lock({APPEND_LOCK});
  WITH appended AS (
    INSERT INTO instance_event (workspace_id, job_id, instance_id, vendor_instance_id, kind,
      status, previous_status, instance_type, plan_time, force_success, ignore_success, at)
    SELECT c.workspace_id, c.job_id, c.instance_id, c.vendor_instance_id, c.kind, c.status,
      c.previous_status, c.instance_type, c.plan_time, c.force_success, c.ignore_success,
      NEW.at
    FROM ROWS FROM (
        json_to_recordset(NEW.changes::json) AS (workspace_id bigint, job_id bigint,
          instance_id bigint, vendor_instance_id bigint, kind text, status text,
          previous_status text, instance_type text, plan_time timestamptz,
          force_success boolean, ignore_success boolean)
      ) WITH ORDINALITY AS c(workspace_id, job_id, instance_id, vendor_instance_id, kind,
        status, previous_status, instance_type, plan_time, force_success, ignore_success, n)
    ORDER BY c.n
    RETURNING id
  )
  SELECT max(id) INTO last_id FROM appended;
  DELETE FROM instance_event_pending WHERE id = NEW.id;
  IF last_id IS NOT NULL THEN
    PERFORM pg_notify('{CHANNEL}', last_id::text);
  END IF;
  RETURN NULL;
END
$fn$
"""

TRIGGER = """
CREATE CONSTRAINT TRIGGER instance_event_pending_at_commit
AFTER INSERT ON instance_event_pending
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION jobql_append_instance_events()
"""


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "instance_event_pending",
        sa.Column("id", KEY, nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("at", jobql.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_event_pending")),
        # A row lives only inside its transaction: nothing to write to the WAL or replicate.
        prefixes=["UNLOGGED"] if postgresql else [],
    )
    if postgresql:
        op.execute(FUNCTION)
        op.execute(TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP TRIGGER IF EXISTS instance_event_pending_at_commit ON instance_event_pending"
        )
        op.execute("DROP FUNCTION IF EXISTS jobql_append_instance_events()")
    op.drop_table("instance_event_pending")
