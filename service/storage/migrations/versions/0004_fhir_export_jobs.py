"""FHIR Bulk Data export jobs: one row per `$export` request of a clinic.

A job is `accepted`, then `running` (its `heartbeat_at` renewed while it
works), then `completed` (its files listed in `output`), `failed` (`error`
says why) or `cancelled`. At most one job per clinic is accepted or running
(the partial unique index). The NDJSON files themselves are on disk
(TRACTION_FHIR_EXPORT_DIR), not in the store.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE IF NOT EXISTS fhir_export_jobs (job_id TEXT PRIMARY KEY,"
        " clinic_id TEXT NOT NULL, status TEXT NOT NULL, request_url TEXT NOT NULL,"
        " types TEXT NOT NULL, since TEXT, transaction_time TEXT NOT NULL,"
        " created_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL,"
        " programmes_done INTEGER NOT NULL DEFAULT 0,"
        " programmes_total INTEGER NOT NULL DEFAULT 0, output TEXT, error TEXT)"
    )
    op.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS fhir_export_jobs_one_per_clinic"
        " ON fhir_export_jobs (clinic_id) WHERE status IN ('accepted', 'running')"
    )
