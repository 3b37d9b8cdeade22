"""The PostgreSQL recorder: the library's, plus the ledger table and gap-free positions.

The library numbers events from a sequence, which skips a value whenever an
insert fails (a version conflict, say). Under the library's exclusive table
lock we instead number each save's events from the ledger's head, so
positions run 1, 2, 3, ... in commit order with none skipped, and they are
also the notification ids that the library's readers and projections follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    InterfaceError,
    Mapper,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from domain.ledger import HistoryEntry, RecordedEntry
from service.storage import chain
from service.storage.group_commit import ConflictingSaves, GroupCommit
from service.storage.ledger import LEDGER_COLUMNS, ledger_rows, recorded_entry
from service.storage.stored import HistoryRow, history_entries
from service.storage.stores import RECONNECT_TIMEOUT

LEDGER_TABLE = "event_ledger"


#: Our reads retry as the library's own do: PRE_PING is off, so a pooled
#: connection that died with a database restart fails once, and the next
#: attempt gets a fresh one (an outage is answered 503 by service/availability).
retry_read = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)


def _sql(text: str, schema: str, events_table: str) -> Composed:
    return SQL(text).format(schema=Identifier(schema), events=Identifier(events_table),
                            ledger=Identifier(LEDGER_TABLE))


class ReadQueries:
    """The read-only queries of the log that a streaming replica can answer as well
    as the primary (service/storage/replica.py), written once for both."""

    def __init__(self, schema: str, events_table: str) -> None:
        self.history = _sql(
            "SELECT e.originator_version, e.topic, e.state, l.position, l.recorded_at, "
            "l.clinic_id "
            "FROM {schema}.{events} e LEFT JOIN {schema}.{ledger} l "
            "ON l.programme_id = e.originator_id AND l.version = e.originator_version "
            "WHERE e.originator_id = %s ORDER BY e.originator_version", schema, events_table)
        self.log_rows = _sql(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{events} WHERE notification_id > %s "
            "ORDER BY notification_id LIMIT %s", schema, events_table)
        self.ledger_window = _sql(
            "SELECT position, programme_id, version, event_id, clinic_id, event_type, "
            "recorded_at, chain_hash FROM {schema}.{ledger} "
            "WHERE position BETWEEN %s AND %s ORDER BY position", schema, events_table)
        self.ledger_head = _sql(
            "SELECT position, chain_hash, recorded_at FROM {schema}.{ledger} "
            "ORDER BY position DESC LIMIT 1", schema, events_table)
        self.programme_head = _sql(
            "SELECT version, clinic_id FROM {schema}.{ledger} WHERE programme_id = %s "
            "ORDER BY version DESC LIMIT 1", schema, events_table)

    def history_rows(self, curs: Cursor[DictRow], programme_id: UUID) -> list[HistoryRow]:
        curs.execute(self.history, [programme_id])
        return [
            HistoryRow(row["originator_version"], row["topic"], row["state"], row["position"],
                       None if row["recorded_at"] is None
                       else row["recorded_at"].astimezone(UTC).isoformat(),
                       row["clinic_id"])
            for row in curs.fetchall()
        ]

    def ledger_window_rows(self, curs: Cursor[DictRow], first: int, last: int
                           ) -> list[dict[str, Any]]:
        curs.execute(self.ledger_window, [first, last])
        return [dict(row) for row in curs.fetchall()]

    def notifications(self, curs: Cursor[DictRow], start: int, limit: int
                      ) -> list[Notification]:
        """The library's notifications from position `start` on (as its
        select_notifications gives them)."""
        curs.execute(self.log_rows, [start - 1, limit])
        return [Notification(id=row["notification_id"], originator_id=row["originator_id"],
                             originator_version=row["originator_version"],
                             topic=row["topic"], state=bytes(row["state"]))
                for row in curs.fetchall()]

    def head(self, curs: Cursor[DictRow]) -> dict[str, Any] | None:
        """The ledger's last entry (position, chain hash, record time), None if empty."""
        curs.execute(self.ledger_head, prepare=False)
        return curs.fetchone()


class LedgerPostgresRecorder(GroupCommit, PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        # The library makes the pool and offers no setting for this (settings.py says why).
        datastore.pool.reconnect_timeout = RECONNECT_TIMEOUT
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
        self.reads = ReadQueries(self.datastore.schema, self.events_table_name)
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
        self.select_current_versions = SQL(
            "SELECT originator_id, MAX(originator_version) AS version FROM {schema}.{events} "
            "WHERE originator_id = ANY(%s) GROUP BY originator_id"
        ).format(**ids)
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
        self._refuse_overtaken_saves(curs, stored_events, kwargs.get("group_sizes"))
        head = self.reads.head(curs)
        rows = ledger_rows(
            stored_events,
            kwargs.get("ledger"),
            first_position=(head["position"] if head else 0) + 1,
            previous_hash=head["chain_hash"] if head else chain.GENESIS,
            previous_recorded_at=head["recorded_at"] if head else None,
        )
        columns = [[row[name] for row in rows] for name in LEDGER_COLUMNS]
        # prepare=False on both inserts: in pipeline mode, a statement after a
        # failed one is skipped by the server, and psycopg would wrongly
        # believe an automatically prepared statement exists.
        with curs.connection.cursor() as ledger_cursor:
            ledger_cursor.execute(self.insert_ledger_rows, columns, prepare=False)
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
            prepare=False,
        )

    def _refuse_overtaken_saves(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                                sizes: Sequence[int] | None) -> None:
        """In a group commit, find the saves another writer has overtaken
        before writing: one of them would otherwise fail the whole group."""
        if not sizes or len(sizes) < 2:
            return
        firsts, offset = [], 0
        for size in sizes:
            firsts.append(stored_events[offset])
            offset += size
        curs.execute(
            self.select_current_versions, [list({e.originator_id for e in firsts})],
            prepare=False,
        )
        current = {row["originator_id"]: row["version"] for row in curs.fetchall()}
        overtaken = [
            index for index, first in enumerate(firsts)
            if first.originator_version != current.get(first.originator_id, 0) + 1
        ]
        if overtaken:
            raise ConflictingSaves(overtaken, "another writer saved to this programme first")

    # ---- the Ledger port of domain.ledger ----------------------------------

    @retry_read
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

    @retry_read
    def log_rows(self, after: int, limit: int) -> list[tuple[int, int, int, str, bytes]]:
        """(position, programme id as an int, version, topic, state) after `after`, in
        order: the notification log without the library's objects, for bulk reads."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.reads.log_rows, [after, limit])
            return [(row["notification_id"], row["originator_id"].int,
                     row["originator_version"], row["topic"], row["state"])
                    for row in curs.fetchall()]

    def history(self, programme_id: UUID, mapper: Mapper[UUID]) -> list[HistoryEntry]:
        return history_entries(mapper, self._history_rows(programme_id))

    @retry_read
    def _history_rows(self, programme_id: UUID) -> list[HistoryRow]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self.reads.history_rows(curs, programme_id)

    @retry_read
    def programme_head(self, programme_id: UUID) -> tuple[int, str] | None:
        """(latest version, clinic) of a programme from its ledger entries; None if
        it has none. One index lookup: what a read from a replica is checked against."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.reads.programme_head, [programme_id])
            row = curs.fetchone()
            return (row["version"], row["clinic_id"]) if row else None

    @retry_read
    def version_as_of(self, programme_id: UUID, as_of: datetime) -> int | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_version_as_of, [programme_id, as_of])
            row = curs.fetchone()
            return row["version"] if row else None

    # ---- read-only queries for the audit (service/audit) -----------------

    def _audit_sql(self, text: str) -> Any:
        return SQL(text).format(
            schema=Identifier(self.datastore.schema),
            events=Identifier(self.events_table_name),
            ledger=Identifier(LEDGER_TABLE),
        )

    @retry_read
    def chain_extent(self) -> int:
        """The largest position held by either the ledger or the events table (0 if empty)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._audit_sql(
                "SELECT GREATEST((SELECT COALESCE(MAX(position), 0) FROM {schema}.{ledger}), "
                "(SELECT COALESCE(MAX(notification_id), 0) FROM {schema}.{events})) AS head"
            ))
            row = curs.fetchone()
            return int(row["head"]) if row else 0

    @retry_read
    def ledger_window(self, first: int, last: int) -> list[dict[str, Any]]:
        """The ledger entries at positions first..last, with their chain hashes."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self._ledger_window(curs, first, last)

    @retry_read
    def chain_window(
        self, first: int, last: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The ledger entries and the stored events at positions first..last, each
        in position order, read in one repeatable-read transaction (one snapshot)."""
        with self.datastore.get_connection() as conn, conn.transaction(force_rollback=True):
            with conn.cursor() as curs:
                curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                ledger = self._ledger_window(curs, first, last)
                curs.execute(
                    self._audit_sql(
                        "SELECT notification_id AS position, originator_id, "
                        "originator_version, topic, state FROM {schema}.{events} "
                        "WHERE notification_id BETWEEN %s AND %s ORDER BY notification_id"
                    ),
                    [first, last],
                )
                events = [
                    {
                        "position": row["position"],
                        "originator_id": row["originator_id"],
                        "originator_version": row["originator_version"],
                        "topic": row["topic"],
                        "state": bytes(row["state"]),
                    }
                    for row in curs.fetchall()
                ]
        return ledger, events

    @retry_read
    def ledger_position_of(self, programme_id: UUID, version: int) -> int | None:
        """Where the ledger records this version of this programme, if anywhere."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                self._audit_sql(
                    "SELECT position FROM {schema}.{ledger} "
                    "WHERE programme_id = %s AND version = %s"
                ),
                [programme_id, version],
            )
            row = curs.fetchone()
            return row["position"] if row else None

    def _ledger_window(self, curs: Cursor[DictRow], first: int, last: int
                       ) -> list[dict[str, Any]]:
        return self.reads.ledger_window_rows(curs, first, last)
