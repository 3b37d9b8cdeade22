"""The PostgreSQL recorder: the library's, plus the ledger table and gap-free positions.

The library numbers events from a sequence, which skips a value whenever an
insert fails (a version conflict, say). Under the library's exclusive table
lock we instead number each save's events from the ledger's head, so
positions run 1, 2, 3, ... in commit order with none skipped, and they are
also the notification ids that the library's readers and projections follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from domain.application import RecordedEntry
from service.storage import chain
from service.storage.ledger import LEDGER_COLUMNS, ledger_rows, recorded_entry

LEDGER_TABLE = "event_ledger"


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        ids = {
            "schema": Identifier(self.datastore.schema),
            "events": Identifier(self.events_table_name),
            "ledger": Identifier(LEDGER_TABLE),
            "event_type": Identifier(self.stored_event_type_name),
        }
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{ledger} ("
                "position bigint PRIMARY KEY, "
                "programme_id uuid NOT NULL, "
                "version bigint NOT NULL, "
                "event_id uuid NOT NULL UNIQUE, "
                "clinic_id text NOT NULL, "
                "event_type text NOT NULL, "
                "recorded_at timestamptz NOT NULL, "
                "content_digest text, "
                "saved_version bigint NOT NULL, "
                "chain_hash text NOT NULL, "
                "UNIQUE (programme_id, version))"
            ).format(**ids)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE INDEX IF NOT EXISTS event_ledger_clinic_idx "
                "ON {schema}.{ledger} (clinic_id, position)"
            ).format(**ids)
        )
        self.select_ledger_head = SQL(
            "SELECT position, chain_hash, recorded_at FROM {schema}.{ledger} "
            "ORDER BY position DESC LIMIT 1"
        ).format(**ids)
        # Events numbered explicitly from the ledger's head, not the sequence.
        self.insert_numbered_events = SQL(
            "INSERT INTO {schema}.{events} "
            "(originator_id, originator_version, topic, state, notification_id) "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state, %s + e.n "
            "FROM unnest(%s::{schema}.{event_type}[]) WITH ORDINALITY "
            "AS e(originator_id, originator_version, topic, state, n) "
            "ORDER BY e.n RETURNING notification_id"
        ).format(**ids)
        self.insert_ledger_rows = SQL(
            "INSERT INTO {schema}.{ledger} (" + ", ".join(LEDGER_COLUMNS) + ") "
            "SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::bigint[], %s::uuid[], "
            "%s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::bigint[], %s::text[])"
        ).format(**ids)
        self.select_entries = SQL("SELECT * FROM {schema}.{ledger} WHERE ").format(**ids)
        self.select_version_as_of = SQL(
            "SELECT MAX(version) AS version FROM {schema}.{ledger} "
            "WHERE programme_id = %s AND recorded_at <= %s"
        ).format(**ids)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        # Under the lock: nobody else can number events until we commit.
        curs.execute(self.select_ledger_head, prepare=True)
        head = curs.fetchone()
        rows = ledger_rows(
            stored_events,
            kwargs.get("ledger"),
            first_position=(head["position"] if head else 0) + 1,
            previous_hash=head["chain_hash"] if head else chain.GENESIS,
            previous_recorded_at=head["recorded_at"] if head else None,
        )
        columns = [[row[name] for row in rows] for name in LEDGER_COLUMNS]
        with curs.connection.cursor() as ledger_cursor:
            ledger_cursor.execute(self.insert_ledger_rows, columns, prepare=True)
        pg_stored_events = [
            self.construct_pg_stored_event(
                s.originator_id, s.originator_version, s.topic, s.state
            )
            for s in stored_events
        ]
        # Last, so that the library fetches the positions from this cursor.
        curs.execute(
            self.insert_numbered_events,
            ((head["position"] if head else 0), pg_stored_events),
        )

    # ---- the Ledger protocol of domain.application ----------------------

    def _select(self, where: str, params: Sequence[Any]) -> list[RecordedEntry]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_entries + SQL(where + " ORDER BY position"), params)
            return [
                recorded_entry(row, to_uuid=lambda v: v, to_datetime=lambda v: v)
                for row in curs.fetchall()
            ]

    def entries_by_event_id(self, event_ids: Sequence[UUID]) -> list[RecordedEntry]:
        if not event_ids:
            return []
        return self._select("event_id = ANY(%s)", [list(event_ids)])

    def entries_of_programme(self, programme_id: UUID) -> list[RecordedEntry]:
        return self._select("programme_id = %s", [programme_id])

    def version_as_of(self, programme_id: UUID, as_of: datetime) -> int | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_version_as_of, [programme_id, as_of])
            row = curs.fetchone()
            return row["version"] if row else None
