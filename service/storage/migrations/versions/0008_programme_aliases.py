"""Programme ids are the clinic's own: the aliases of programmes stored under another id.

Two clinics may use the same programme_id. A programme is stored under its
programme_id unless another clinic already held that id; then under an id
derived from the clinic and the programme_id (domain/programme_aliases.py),
and this table records which (stored id -> clinic, the clinic's programme_id),
so that what the service shows the clinic carries its own id. A row is
written with the programme's first event, in the same transaction, and never
changes. Existing stores have no aliases: every programme of theirs is stored
under its own id.

Revision ID: 0008_programme_aliases
Revises: 0007_event_ids_per_clinic
"""

from __future__ import annotations

from alembic import op

revision = "0008_programme_aliases"
down_revision = "0007_event_ids_per_clinic"
branch_labels = None
depends_on = None

STATEMENTS = [
    "CREATE TABLE IF NOT EXISTS programme_aliases (stored_id TEXT PRIMARY KEY,"
    " clinic_id TEXT NOT NULL, programme_id TEXT NOT NULL, UNIQUE (clinic_id, programme_id))",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
