"""Checkpoints chain to each other, the access log is chained, verification runs as a job.

- `chain_checkpoints.previous_signature`: each checkpoint signs the one before
  it, so a checkpoint row deleted from the middle breaks the next one's link.
  Rows of earlier releases have none (they are not linked).
- `access_log.chain_hash`: each access-log entry's hash covers its content and
  the hash of the entry before it (service/storage/access_chain.py). Entries
  of earlier releases have none; the chain starts at the first entry that has one.
- `audit_verifications`: verifications started over the API, run off the
  request thread, their progress and result (service/audit/jobs.py).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE chain_checkpoints ADD COLUMN previous_signature TEXT")
    op.execute("ALTER TABLE access_log ADD COLUMN chain_hash TEXT")
    op.execute(
        "CREATE TABLE IF NOT EXISTS audit_verifications (verification_id TEXT PRIMARY KEY,"
        " state TEXT NOT NULL, requested_at TEXT NOT NULL, requested_by TEXT,"
        " checkpoints INTEGER NOT NULL, started_at TEXT, heartbeat_at TEXT,"
        " finished_at TEXT, events_total BIGINT, events_checked BIGINT NOT NULL DEFAULT 0,"
        " report TEXT, error TEXT)"
    )
