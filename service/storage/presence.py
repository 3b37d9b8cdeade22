"""Whether a store is there: found without creating anything.

Opening a SQLite store creates its file (and the library creates its
directory); a command that only reads must not leave an empty store behind
where the service does not look (service/cli/context.py).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

import psycopg

from service.storage.sqlite import LEDGER_TABLE  # the same name on both stores
from service.storage.stores import Store


def is_initialised(store: Store) -> bool:
    """Whether the store exists and has its tables. A missing SQLite file is not
    made; a PostgreSQL server that cannot be reached raises the driver's error."""
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
