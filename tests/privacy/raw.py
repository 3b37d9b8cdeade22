"""The raw bytes of a store, as someone with a copy of its files or a dump would see them."""

from __future__ import annotations

import sqlite3
import subprocess

from service.storage.stores import parse_database_url


def store_bytes(url: str) -> bytes:
    """Every byte the store holds: the SQLite file after a WAL checkpoint (and any
    WAL left), or a plain `pg_dump` of the store's schema."""
    store = parse_database_url(url)
    if store.is_postgres:
        return subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", f"--schema={store.pg_schema}",
             f"--dbname={store.conninfo()}"],
            check=True, capture_output=True, timeout=120).stdout
    assert store.sqlite_path is not None
    conn = sqlite3.connect(store.sqlite_path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    found = store.sqlite_path.read_bytes()
    for suffix in ("-wal", "-journal"):
        extra = store.sqlite_path.with_name(store.sqlite_path.name + suffix)
        if extra.exists():
            found += extra.read_bytes()
    return found
