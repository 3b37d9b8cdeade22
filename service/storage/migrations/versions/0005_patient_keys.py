"""Per-programme data keys, wrapped by the operator's key (KEK), in tables of their own.

`data_keys` holds one row per programme: its AES-256 data key wrapped
(AES-GCM) by the key-encryption key, and a keyed hash of its patient_ref at
its clinic (for erasure of every programme of one patient). Erasure deletes
the row: what the key sealed can never be read again. `key_settings` holds
what the store knows of its keys: a check value of the KEK (a wrong key is
refused before anything is written), the wrapped key of the patient hashes,
and, on a store created for development only, the development KEK itself.
`chain_rewrites` records each time `traction migrate` sealed events an older
release had stored in the clear (which changes their bytes, so their chain
hashes): the old and new chain heads, signed; `traction audit verify` shows them.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE IF NOT EXISTS data_keys (programme_id TEXT PRIMARY KEY,"
        " clinic_id TEXT NOT NULL, patient_hash TEXT, wrapped_key TEXT NOT NULL,"
        " created_at TEXT NOT NULL)"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS data_keys_by_patient ON data_keys (clinic_id, patient_hash)"
    )
    op.execute(
        "CREATE TABLE IF NOT EXISTS key_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
    )
    op.execute(
        "CREATE TABLE IF NOT EXISTS chain_rewrites (rewritten_at TEXT PRIMARY KEY,"
        " first_position BIGINT NOT NULL, head_position BIGINT NOT NULL,"
        " old_head_hash TEXT NOT NULL, new_head_hash TEXT NOT NULL,"
        " events_sealed BIGINT NOT NULL, superseded_checkpoints TEXT NOT NULL,"
        " reason TEXT NOT NULL, signature TEXT)"
    )
