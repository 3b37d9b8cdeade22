"""Alembic's environment: run the migrations on the connection `migrations.migrate` opened.

Each migration runs in its own transaction (PostgreSQL and SQLite both
take DDL in a transaction), so a failing step leaves nothing half-applied.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    transaction_per_migration=True,
    transactional_ddl=True,
    version_table_schema=context.config.attributes.get("schema"),
)
with context.begin_transaction():
    context.run_migrations()
