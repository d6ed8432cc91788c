"""Alembic environment: the connection is handed in by ``federator.storage.upgrade``."""

from alembic import context

from federator.storage import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
