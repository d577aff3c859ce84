"""Alembic environment: runs on the connection `jobql.storage.migrate` hands over."""

from __future__ import annotations

from alembic import context

from jobql.storage.models import Base
from jobql.storage.partitions import schema_filters

connection = context.config.attributes["connection"]
filters = schema_filters(connection.dialect.name)
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=filters["include_name"],
    include_object=filters["include_object"],
)
with context.begin_transaction():
    context.run_migrations()
