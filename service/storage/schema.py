"""Creating tables: one process at a time, before workers start.

Which tables a store has is decided by service/bootstrap.py (the event
store's, the projections', the service's own); this holds the lock that
keeps two processes, or two hosts, from creating them at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from service.storage.stores import Store

#: Held while creating tables on PostgreSQL, so two processes never race.
SCHEMA_LOCK_KEY = 0x7472_6163  # "trac"


@contextmanager
def schema_lock(store: Store) -> Iterator[None]:
    """Hold the store's schema lock (PostgreSQL; on SQLite one writer is the rule anyway)."""
    if not store.is_postgres:
        yield
        return
    with psycopg.connect(store.conninfo(), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{store.pg_schema}"')
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
