"""SQLite: the ledger's unique key on (programme_id, version) is dropped; the events' key holds it.

Every ledger row is written with its event, in one transaction, at the
event's own position (the event's rowid, service/storage/sqlite.py), and
the events' primary key is (originator_id, originator_version): the same
pair, already unique. The ledger's copy of that key cost every recorded
event an insert into one more index keyed by a random id, the costliest
kind: bulk uploads of 1,000 interleaved programmes spent 3-16 % less CPU
per line without it (bench/profile_bulk.py, alternated A/B on this
machine), more as the store grows. The reads that used it now find a
programme's positions in the events' key (its rowids) and read the ledger
by position: `owners`, `entries_of_programme`, `history`, `version_as_of`.
The audit's search of the ledger for where a displaced event belongs
(`ledger_position_of`, run only once verification has found a broken
entry) reads the ledger without an index.

SQLite cannot drop a table's constraint: the table is rebuilt as 0007
rebuilt it, without the key, rows copied as they are (chain hashes do not
cover constraints), its indexes and trigger made again. That is a copy of
the ledger in the migration's transaction: allow for it on a large store
(0.97 s for 200,000 events on this machine).

PostgreSQL keeps its constraint: its reads by programme use it, and there
the bulk ingest bar is met with it.

Revision ID: 0010_sqlite_ledger_programme_key
Revises: 0009_drop_ledger_clinic_index
"""

from __future__ import annotations

from alembic import op

revision = "0010_sqlite_ledger_programme_key"
down_revision = "0009_drop_ledger_clinic_index"
branch_labels = None
depends_on = None

COLUMNS = ("position, programme_id, version, event_id, clinic_id, event_type, recorded_at,"
           " content_digest, saved_version, chain_hash, clinic_position")


def rebuild(programme_key: bool) -> list[str]:
    """The statements that copy the SQLite ledger into a table with or without
    the (programme_id, version) key, then make its indexes and trigger again."""
    return [
        "DROP TRIGGER IF EXISTS event_ledger_clinic_position",
        "CREATE TABLE event_ledger_0010 (position INTEGER PRIMARY KEY,"
        " programme_id TEXT NOT NULL, version INTEGER NOT NULL, event_id TEXT NOT NULL,"
        " clinic_id TEXT NOT NULL, event_type TEXT NOT NULL, recorded_at TEXT NOT NULL,"
        " content_digest TEXT, saved_version INTEGER NOT NULL, chain_hash TEXT NOT NULL,"
        " clinic_position INTEGER" + (", UNIQUE (programme_id, version))" if programme_key
                                      else ")"),
        f"INSERT INTO event_ledger_0010 ({COLUMNS}) SELECT {COLUMNS} FROM event_ledger"
        " ORDER BY position",
        "DROP TABLE event_ledger",
        "ALTER TABLE event_ledger_0010 RENAME TO event_ledger",
        # As 0007 made them (0009 dropped the index on (clinic_id, position)).
        "CREATE UNIQUE INDEX IF NOT EXISTS event_ledger_event_id_clinic_idx"
        " ON event_ledger (event_id, clinic_id)",
        "CREATE UNIQUE INDEX IF NOT EXISTS event_ledger_clinic_position_idx"
        " ON event_ledger (clinic_id, clinic_position)",
        "CREATE TRIGGER IF NOT EXISTS event_ledger_clinic_position AFTER INSERT ON event_ledger"
        " WHEN NEW.clinic_position IS NULL BEGIN"
        " UPDATE event_ledger SET clinic_position = 1 + COALESCE((SELECT MAX(clinic_position)"
        " FROM event_ledger WHERE clinic_id = NEW.clinic_id), 0) WHERE position = NEW.position;"
        " END",
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for statement in rebuild(programme_key=False):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for statement in rebuild(programme_key=True):
            op.execute(statement)
