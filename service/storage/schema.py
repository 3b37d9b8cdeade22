"""Creating the store's tables: once, by one process, before workers start."""

from __future__ import annotations

import psycopg

from domain.application import Programmes
from projections.store import create_projection_tables
from service.audit.checkpoints import Checkpoints
from service.storage.database import Database
from service.storage.directory import Directory
from service.storage.settings import Store, eventsourcing_env

#: Held while creating tables on PostgreSQL, so two processes never race.
SCHEMA_LOCK_KEY = 0x7472_6163  # "trac"


def create_tables(store: Store) -> None:
    """Create every table the event store needs (idempotent)."""
    if not store.is_postgres:
        _create(store)
        return
    with psycopg.connect(store.conninfo(), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{store.pg_schema}"')
            _create(store)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))


def _create(store: Store) -> None:
    Programmes(env=eventsourcing_env(store, create_tables=True)).close()
    create_projection_tables(store)
    database = Database(store)
    try:
        Directory(database).create_tables()
        Checkpoints(database).create_table()
    finally:
        database.close()
