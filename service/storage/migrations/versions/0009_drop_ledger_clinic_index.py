"""The ledger's index on (clinic_id, position) is dropped: every insert paid for it.

Release 0.1.0 made `event_ledger_clinic_idx` for a clinic's reads of the
ledger in log order. Since migration 0006 the unique index on (clinic_id,
clinic_position) holds each clinic's entries in the same order (a clinic's
numbers increase with the global position), and the reads that used the
older index now use it or the primary key (service/storage/sqlite.py and
postgres.py, `clinic_positions` and `clinic_position_at`). Keeping both cost
every recorded event an entry in an index no read needs: on SQLite, inserting
ledger rows in chunks of 1,000, about 0.5-1.6 µs of user and 0.8-1.2 µs of
system CPU per row (profiles of bulk uploads put it at 1-1.5 and 1.5-3).

The same statement on both stores; so is the downgrade, which makes the
index again as 0.1.0 did (a build over the whole ledger).

Revision ID: 0009_drop_ledger_clinic_index
Revises: 0008_programme_aliases
"""

from __future__ import annotations

from alembic import op

revision = "0009_drop_ledger_clinic_index"
down_revision = "0008_programme_aliases"
branch_labels = None
depends_on = None

INDEX = "event_ledger_clinic_idx"


def upgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")


def downgrade() -> None:
    op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON event_ledger (clinic_id, position)")
