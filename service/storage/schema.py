"""Creating tables: one process at a time, before workers start.

Which tables a store has is decided by service/bootstrap.py (the event
store's, the projections', the service's own); this holds the lock that
keeps two processes, or two hosts, from creating them at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager

import psycopg

from service.storage.sqlite import LEDGER_TABLE  # the same name on both stores
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


def is_initialised(store: Store) -> bool:
    """Whether the store exists and has its tables, found without creating anything
    (a missing SQLite file is not made; a PostgreSQL store that cannot be reached
    raises the driver's error)."""
    if store.sqlite_path is not None:
        if not store.sqlite_path.is_file():
            return False
        uri = f"{store.sqlite_path.absolute().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 (LEDGER_TABLE,)).fetchone()
        return found is not None
    with psycopg.connect(store.conninfo(), connect_timeout=5) as conn:
        found = conn.execute("SELECT to_regclass(%s)",
                             (f'"{store.pg_schema}".{LEDGER_TABLE}',)).fetchone()
    return found is not None and found[0] is not None
