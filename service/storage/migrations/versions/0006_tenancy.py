"""Positions counted per clinic; tokens that expire; clinics that can be deactivated.

- `event_ledger.clinic_position`: the event's number among its clinic's events
  (1, 2, 3, ...), which is what a clinic's token is shown instead of the
  global position, so that no clinic learns how much the others record.
  Existing rows are numbered in position order; a trigger numbers every new
  row in the same statement, under the store's write lock (writes are one at
  a time), and a unique index keeps each clinic's numbers distinct.
- `api_tokens.expires_at`: when a token stops working (none: it never does).
- `clinics.deactivated_at`: when a clinic was deactivated (its tokens stop
  working; its records stay, for auditors).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SQLITE = [
    "ALTER TABLE event_ledger ADD COLUMN clinic_position INTEGER",
    "UPDATE event_ledger SET clinic_position = numbered.n FROM (SELECT position AS p,"
    " ROW_NUMBER() OVER (PARTITION BY clinic_id ORDER BY position) AS n FROM event_ledger)"
    " AS numbered WHERE event_ledger.position = numbered.p",
    "CREATE UNIQUE INDEX IF NOT EXISTS event_ledger_clinic_position_idx"
    " ON event_ledger (clinic_id, clinic_position)",
    "CREATE TRIGGER IF NOT EXISTS event_ledger_clinic_position AFTER INSERT ON event_ledger"
    " WHEN NEW.clinic_position IS NULL BEGIN"
    " UPDATE event_ledger SET clinic_position = 1 + COALESCE((SELECT MAX(clinic_position)"
    " FROM event_ledger WHERE clinic_id = NEW.clinic_id), 0) WHERE position = NEW.position;"
    " END",
    "ALTER TABLE api_tokens ADD COLUMN expires_at TEXT",
    "ALTER TABLE clinics ADD COLUMN deactivated_at TEXT",
]

POSTGRES = [
    "ALTER TABLE event_ledger ADD COLUMN IF NOT EXISTS clinic_position bigint",
    "UPDATE event_ledger SET clinic_position = numbered.n FROM (SELECT position AS p,"
    " ROW_NUMBER() OVER (PARTITION BY clinic_id ORDER BY position) AS n FROM event_ledger)"
    " AS numbered WHERE event_ledger.position = numbered.p",
    "CREATE UNIQUE INDEX IF NOT EXISTS event_ledger_clinic_position_idx"
    " ON event_ledger (clinic_id, clinic_position)",
    # The store's schema is fixed into the function: the service names its tables
    # with their schema and sets no search_path of its own.
    "CREATE OR REPLACE FUNCTION event_ledger_number_in_clinic() RETURNS trigger"
    " LANGUAGE plpgsql SET search_path FROM CURRENT AS $$ BEGIN"
    " IF NEW.clinic_position IS NULL THEN"
    " NEW.clinic_position := 1 + COALESCE((SELECT MAX(clinic_position) FROM event_ledger"
    " WHERE clinic_id = NEW.clinic_id), 0);"
    " END IF; RETURN NEW; END $$",
    "DROP TRIGGER IF EXISTS event_ledger_clinic_position ON event_ledger",
    "CREATE TRIGGER event_ledger_clinic_position BEFORE INSERT ON event_ledger"
    " FOR EACH ROW EXECUTE FUNCTION event_ledger_number_in_clinic()",
    "ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS expires_at TEXT",
    "ALTER TABLE clinics ADD COLUMN IF NOT EXISTS deactivated_at TEXT",
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES if postgres else SQLITE:
        op.execute(statement)
