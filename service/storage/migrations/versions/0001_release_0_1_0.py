"""The tables of release 0.1.0, as it created them.

Every store starts here. A store written by 0.1.0 already has all of them
(every statement is "if not exists", so this step changes nothing there);
an empty store gets them. The statements are frozen copies: the event
store's and the tracking tables as eventsourcing 9.5 creates them, and the
service's own tables as 0.1.0 did, so later releases build a new store the
way its older stores were built, and migrate both alike.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: The library's autovacuum settings for its append-only tables.
AUTOVACUUM = (
    " WITH (autovacuum_enabled = true, autovacuum_vacuum_threshold = 100000000,"
    " autovacuum_vacuum_scale_factor = 0.5, autovacuum_analyze_threshold = 1000,"
    " autovacuum_analyze_scale_factor = 0.01)"
)

SQLITE = [
    # eventsourcing 9.5's SQLite application recorder and tracking table.
    "CREATE TABLE IF NOT EXISTS stored_events (originator_id TEXT, originator_version INTEGER,"
    " topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))",
    "CREATE TABLE IF NOT EXISTS tracking (application_name TEXT, notification_id INTEGER,"
    " PRIMARY KEY (application_name)) WITHOUT ROWID",
    # The ledger beside the events.
    "CREATE TABLE IF NOT EXISTS event_ledger (position INTEGER PRIMARY KEY,"
    " programme_id TEXT NOT NULL, version INTEGER NOT NULL, event_id TEXT NOT NULL UNIQUE,"
    " clinic_id TEXT NOT NULL, event_type TEXT NOT NULL, recorded_at TEXT NOT NULL,"
    " content_digest TEXT, saved_version INTEGER NOT NULL, chain_hash TEXT NOT NULL,"
    " UNIQUE (programme_id, version))",
    "CREATE INDEX IF NOT EXISTS event_ledger_clinic_idx ON event_ledger (clinic_id, position)",
    # The service's own tables.
    "CREATE TABLE IF NOT EXISTS clinics (clinic_id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " registered_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS api_tokens (token_id TEXT PRIMARY KEY,"
    " secret_sha256 TEXT NOT NULL, role TEXT NOT NULL, clinic_id TEXT, label TEXT NOT NULL,"
    " issued_at TEXT NOT NULL, revoked_at TEXT)",
    "CREATE TABLE IF NOT EXISTS directory_version (id INTEGER PRIMARY KEY,"
    " version BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS access_log (entry_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at TEXT NOT NULL, action TEXT NOT NULL, token_id TEXT, token_label TEXT, role TEXT,"
    " method TEXT, route TEXT, clinic_id TEXT, programme_id TEXT, remote_addr TEXT,"
    " detail TEXT)",
    "CREATE TABLE IF NOT EXISTS chain_checkpoints (position BIGINT PRIMARY KEY,"
    " chain_hash TEXT NOT NULL, signed_at TEXT NOT NULL, signature TEXT NOT NULL)",
]

POSTGRES = [
    # eventsourcing 9.5's PostgreSQL application recorder (events table named after
    # the application) and the projections' tracking table.
    "CREATE TABLE IF NOT EXISTS programmes_events (originator_id uuid NOT NULL,"
    " originator_version bigint NOT NULL, topic text, state bytea,"
    " notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
    + AUTOVACUUM,
    "CREATE UNIQUE INDEX IF NOT EXISTS programmes_events_notification_id_idx"
    " ON programmes_events (notification_id ASC)",
    "DO $$ BEGIN"
    " CREATE TYPE stored_event_uuid AS (originator_id uuid, originator_version bigint,"
    " topic text, state bytea);"
    " EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    "CREATE TABLE IF NOT EXISTS projection_tracking (application_name text,"
    " notification_id bigint, PRIMARY KEY (application_name))" + AUTOVACUUM,
    # The ledger beside the events.
    "CREATE TABLE IF NOT EXISTS event_ledger (position bigint PRIMARY KEY,"
    " programme_id uuid NOT NULL, version bigint NOT NULL, event_id uuid NOT NULL UNIQUE,"
    " clinic_id text NOT NULL, event_type text NOT NULL, recorded_at timestamptz NOT NULL,"
    " content_digest text, saved_version bigint NOT NULL, chain_hash text NOT NULL,"
    " UNIQUE (programme_id, version))",
    "CREATE INDEX IF NOT EXISTS event_ledger_clinic_idx ON event_ledger (clinic_id, position)",
    # The service's own tables.
    "CREATE TABLE IF NOT EXISTS clinics (clinic_id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " registered_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS api_tokens (token_id TEXT PRIMARY KEY,"
    " secret_sha256 TEXT NOT NULL, role TEXT NOT NULL, clinic_id TEXT, label TEXT NOT NULL,"
    " issued_at TEXT NOT NULL, revoked_at TEXT)",
    "CREATE TABLE IF NOT EXISTS directory_version (id INTEGER PRIMARY KEY,"
    " version BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS access_log (entry_id BIGSERIAL PRIMARY KEY,"
    " at TEXT NOT NULL, action TEXT NOT NULL, token_id TEXT, token_label TEXT, role TEXT,"
    " method TEXT, route TEXT, clinic_id TEXT, programme_id TEXT, remote_addr TEXT,"
    " detail TEXT)",
    "CREATE TABLE IF NOT EXISTS chain_checkpoints (position BIGINT PRIMARY KEY,"
    " chain_hash TEXT NOT NULL, signed_at TEXT NOT NULL, signature TEXT NOT NULL)",
]

#: The projections' tables, the same on both stores, with the live version 1 of
#: the one projection 0.1.0 had ("dashboards").
PROJECTIONS = [
    "CREATE TABLE IF NOT EXISTS projection_versions (projection TEXT PRIMARY KEY,"
    " live_version INTEGER NOT NULL, building_version INTEGER, swapped_at TEXT)",
    "CREATE TABLE IF NOT EXISTS projection_parked (projection TEXT NOT NULL,"
    " version INTEGER NOT NULL, position BIGINT NOT NULL, programme_id TEXT NOT NULL,"
    " event_type TEXT NOT NULL, kind TEXT NOT NULL, error TEXT, parked_at TEXT NOT NULL,"
    " request TEXT, PRIMARY KEY (projection, version, position))",
    "INSERT INTO projection_versions (projection, live_version) VALUES ('dashboards', 1)"
    " ON CONFLICT (projection) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS programme_summaries_v1 (programme_id TEXT PRIMARY KEY,"
    " clinic_id TEXT NOT NULL, status TEXT NOT NULL, started_us BIGINT NOT NULL,"
    " position BIGINT NOT NULL, summary TEXT NOT NULL, state TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS clinic_dashboards_v1 (clinic_id TEXT PRIMARY KEY,"
    " totals TEXT NOT NULL, dashboard TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS network_view_v1 (row_id INTEGER PRIMARY KEY,"
    " totals TEXT NOT NULL, dashboard TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS programme_summaries_v1_clinic"
    " ON programme_summaries_v1 (clinic_id, started_us, programme_id)",
    "CREATE INDEX IF NOT EXISTS programme_summaries_v1_status"
    " ON programme_summaries_v1 (clinic_id, status, started_us, programme_id)",
]

#: The directory's version counter starts at 0 (workers reload when it moves).
DIRECTORY_VERSION = (
    "INSERT INTO directory_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in [*(POSTGRES if postgres else SQLITE), *PROJECTIONS, DIRECTORY_VERSION]:
        op.execute(statement)
