"""The access log's integrity chain: each entry's hash covers its content and
the hash of the entry before it, so changing, deleting, inserting or
reordering an entry breaks every hash after it.

It is a chain of its own (not the events' chain): access-log entries are
written by every request an all-clinic reader makes, and must not wait on
the events' write lock. Entries are chained in the transaction that writes
them, one writer at a time (`link`), so no two entries follow the same one.
Entries written before the chain existed (release 0.2 and earlier) have no
hash; the chain starts at the first entry that has one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from service.storage.database import Cursor

GENESIS = "0" * 64
#: The columns each hash covers, in this order.
HASHED = ("at", "action", "token_id", "token_label", "role", "method", "route", "clinic_id",
          "programme_id", "remote_addr", "detail")


def entry_hash(previous: str, entry: Mapping[str, Any]) -> str:
    """The chain hash of one entry (its columns as stored, None as JSON null)."""
    content = json.dumps([entry.get(column) for column in HASHED], separators=(",", ":"),
                         ensure_ascii=True)
    return hashlib.sha256(f"{previous}\n{content}".encode()).hexdigest()


def link(cursor: Cursor, values: Sequence[Any]) -> None:
    """Insert one entry (values in HASHED order), chained to the latest one.

    On PostgreSQL the table is locked for the rest of the transaction (one
    writer at a time); SQLite's writing transaction holds the file's lock."""
    if cursor.postgres:
        cursor.execute("LOCK TABLE access_log IN SHARE ROW EXCLUSIVE MODE")
    latest = cursor.execute("SELECT chain_hash FROM access_log WHERE chain_hash IS NOT NULL "
                            "ORDER BY entry_id DESC LIMIT 1").fetchone()
    previous = latest["chain_hash"] if latest else GENESIS
    chain_hash = entry_hash(previous, dict(zip(HASHED, values, strict=True)))
    cursor.execute(
        f"INSERT INTO access_log ({', '.join(HASHED)}, chain_hash)"
        f" VALUES ({', '.join(['%s'] * (len(HASHED) + 1))})",
        [*values, chain_hash],
    )
