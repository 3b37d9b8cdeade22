"""PostgreSQL: a server function saves one event; a single-event post commits in one round trip.

A save on PostgreSQL took two round trips under the events table's lock:
one to read the ledger's head, the programme's last version, whether the
event_id is recorded and the clinic's last number; then, once Python had
screened the save, chained it and numbered it, one to insert and commit.
`event_ledger_save_event` does the same for one event in the server, so the
write path sends its whole transaction at once (BEGIN, the lock, NOTIFY,
one call per save of a group, COMMIT): measured on this kind of machine,
the worker's CPU per single-event POST fell by about 0.1 ms in one process
and by about an eighth under P1's load (BENCHMARKS.md, P12).

It screens as `domain.ledger.screen` does, one save after the other, each
seeing the ones before it in the transaction: an event_id its clinic has
recorded refuses the save (`event_id recorded`); otherwise a version that
does not follow the programme's last one refuses it (`overtaken`); a
programme with no events takes any first version. A refused save writes
nothing and raises nothing (the database logs no error): the caller turns
its reason into the same IntegrityError the screen gives. An accepted one
gets the next position, its clinic's next number, the record time (the
caller's clock, never before the head's), and the chain hash of
`service.storage.chain.entry_hashes`, computed over the same text and bytes
(tests/storage/test_save_function.py holds the two to each other).

Saves of several events, or that start a programme under an alias, and bulk
chunks keep the two round trips (service/storage/postgres.py). SQLite has
nothing to do here: its saves are in process.

Revision ID: 0011_postgres_save_one_event
Revises: 0010_sqlite_ledger_programme_key
"""

from __future__ import annotations

from alembic import op

revision = "0011_postgres_save_one_event"
down_revision = "0010_sqlite_ledger_programme_key"
branch_labels = None
depends_on = None

#: The store's schema is fixed into the function, as 0006 fixes it into its trigger's.
CREATE = r"""
CREATE OR REPLACE FUNCTION event_ledger_save_event(
    p_programme_id uuid, p_version bigint, p_event_id uuid, p_clinic_id text,
    p_event_type text, p_now timestamptz, p_content_digest text, p_saved_version bigint,
    p_topic text, p_state bytea,
    OUT o_position bigint, OUT o_clinic_position bigint, OUT o_refused text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    head_position bigint;
    head_hash text;
    head_recorded_at timestamptz;
    last_version bigint;
    recorded timestamptz;
    recorded_text text;
BEGIN
    IF EXISTS (SELECT 1 FROM event_ledger l
               WHERE l.event_id = p_event_id AND l.clinic_id = p_clinic_id) THEN
        o_refused := 'event_id recorded';
        RETURN;
    END IF;
    SELECT MAX(e.originator_version) INTO last_version FROM programmes_events e
        WHERE e.originator_id = p_programme_id;
    IF last_version IS NOT NULL AND p_version <> last_version + 1 THEN
        o_refused := 'overtaken';
        RETURN;
    END IF;
    SELECT l.position, l.chain_hash, l.recorded_at
        INTO head_position, head_hash, head_recorded_at
        FROM event_ledger l ORDER BY l.position DESC LIMIT 1;
    IF NOT FOUND THEN
        head_position := 0;
        head_hash := repeat('0', 64);  -- chain.GENESIS
    END IF;
    SELECT MAX(l.clinic_position) INTO o_clinic_position FROM event_ledger l
        WHERE l.clinic_id = p_clinic_id;
    o_clinic_position := COALESCE(o_clinic_position, 0) + 1;
    o_position := head_position + 1;
    -- Record times never go backwards along the log (GREATEST skips a NULL head).
    recorded := GREATEST(p_now, head_recorded_at);
    -- Python's datetime.isoformat() of the UTC time: no fraction when it is whole.
    recorded_text := to_char(recorded AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc('second', recorded) = recorded THEN ''
                ELSE to_char(recorded AT TIME ZONE 'UTC', '.US') END
        || '+00:00';
    INSERT INTO event_ledger (position, programme_id, version, event_id, clinic_id,
                              event_type, recorded_at, content_digest, saved_version,
                              chain_hash, clinic_position)
    VALUES (o_position, p_programme_id, p_version, p_event_id, p_clinic_id, p_event_type,
            recorded, p_content_digest, p_saved_version,
            -- chain.entry_hashes: sha256 of the fields joined by US, then RS and the state.
            encode(sha256(convert_to(concat_ws(E'\x1f', head_hash, o_position::text,
                                               replace(p_programme_id::text, '-', ''),
                                               p_version::text, p_topic,
                                               replace(p_event_id::text, '-', ''),
                                               p_clinic_id, recorded_text), 'UTF8')
                          || '\x1e'::bytea || p_state), 'hex'),
            o_clinic_position);
    INSERT INTO programmes_events (originator_id, originator_version, topic, state,
                                   notification_id)
    VALUES (p_programme_id, p_version, p_topic, p_state, o_position);
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS event_ledger_save_event(uuid, bigint, uuid, text,"
                   " text, timestamptz, text, bigint, text, bytea)")
