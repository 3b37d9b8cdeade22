"""Event ids are unique per clinic: each clinic's idempotency keys are its own.

Until now the ledger's `event_id` was unique across all clinics, so a clinic
posting an id another clinic had used was refused (`409 event-id-conflict`),
which told it the id was in use somewhere in the network. Now the key is
(event_id, clinic_id): another clinic's ids are never looked at, and a post
reusing one is recorded as new. The index leads with event_id, so a lookup by
event_id alone (an erasure's event) still uses it.

- PostgreSQL: the column's UNIQUE constraint (named `event_ledger_event_id_key`
  by PostgreSQL, as 0.1.0 created it) is dropped and a unique index on
  (event_id, clinic_id) is created.
- SQLite cannot drop a column's UNIQUE constraint: the table is rebuilt with
  the same columns in the same order, rows copied as they are (chain hashes
  do not cover constraints), and its indexes and trigger (0001, 0006) made again.

Revision ID: 0007_event_ids_per_clinic
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007_event_ids_per_clinic"
down_revision = "0006"
branch_labels = None
depends_on = None

UNIQUE_PER_CLINIC = ("CREATE UNIQUE INDEX IF NOT EXISTS event_ledger_event_id_clinic_idx"
                     " ON event_ledger (event_id, clinic_id)")

COLUMNS = ("position, programme_id, version, event_id, clinic_id, event_type, recorded_at,"
           " content_digest, saved_version, chain_hash, clinic_position")

SQLITE = [
    "DROP TRIGGER IF EXISTS event_ledger_clinic_position",
    "CREATE TABLE event_ledger_0007 (position INTEGER PRIMARY KEY,"
    " programme_id TEXT NOT NULL, version INTEGER NOT NULL, event_id TEXT NOT NULL,"
    " clinic_id TEXT NOT NULL, event_type TEXT NOT NULL, recorded_at TEXT NOT NULL,"
    " content_digest TEXT, saved_version INTEGER NOT NULL, chain_hash TEXT NOT NULL,"
    " clinic_position INTEGER, UNIQUE (programme_id, version))",
    f"INSERT INTO event_ledger_0007 ({COLUMNS}) SELECT {COLUMNS} FROM event_ledger"
    " ORDER BY position",
    "DROP TABLE event_ledger",
    "ALTER TABLE event_ledger_0007 RENAME TO event_ledger",
    UNIQUE_PER_CLINIC,
    "CREATE INDEX IF NOT EXISTS event_ledger_clinic_idx ON event_ledger (clinic_id, position)",
    "CREATE UNIQUE INDEX IF NOT EXISTS event_ledger_clinic_position_idx"
    " ON event_ledger (clinic_id, clinic_position)",
    # As 0006 made it.
    "CREATE TRIGGER IF NOT EXISTS event_ledger_clinic_position AFTER INSERT ON event_ledger"
    " WHEN NEW.clinic_position IS NULL BEGIN"
    " UPDATE event_ledger SET clinic_position = 1 + COALESCE((SELECT MAX(clinic_position)"
    " FROM event_ledger WHERE clinic_id = NEW.clinic_id), 0) WHERE position = NEW.position;"
    " END",
]

POSTGRES = [
    UNIQUE_PER_CLINIC,
    "ALTER TABLE event_ledger DROP CONSTRAINT IF EXISTS event_ledger_event_id_key",
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES if postgres else SQLITE:
        op.execute(statement)
