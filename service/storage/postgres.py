"""The PostgreSQL recorder: the library's, plus the ledger table and gap-free positions.

The library numbers events from a sequence, which skips a value whenever an
insert fails (a version conflict, say). Under the library's exclusive table
lock we instead number each save's events from the ledger's head, so
positions run 1, 2, 3, ... in commit order with none skipped, and they are
also the notification ids that the library's readers and projections follow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Mapper,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.pq import Escaping, TransactionStatus
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Placeholder

from domain.ledger import (
    EVENT_ID_RECORDED,
    OVERTAKEN,
    HistoryEntry,
    Outcome,
    RecordedEntry,
    Save,
    screen,
)
from service.storage import chain
from service.storage import postgres_direct as direct
from service.storage.clinic_positions import COUNT_AT_POSITION
from service.storage.errors import retry_write
from service.storage.group_commit import GroupCommit
from service.storage.ledger import (
    LEDGER_COLUMNS,
    NewRow,
    RecentClinicNumbers,
    alias_rows,
    ledger_rows,
    numbers_in_clinics,
    recorded_entry,
)
from service.storage.stored import HistoryRow, history_entries
from service.storage.stores import RECONNECT_TIMEOUT

LEDGER_TABLE = "event_ledger"
#: Programmes stored under an alias (domain/programme_aliases.py, migration 0008).
ALIASES_TABLE = "programme_aliases"


#: Our reads retry as the library's own do: PRE_PING is off, so a pooled
#: connection that died with a database restart fails once, and the next
#: attempt gets a fresh one (an outage is answered 503 by service/availability).
retry_read = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)


def _sql(text: str, schema: str, events_table: str) -> Composed:
    return SQL(text).format(schema=Identifier(schema), events=Identifier(events_table),
                            ledger=Identifier(LEDGER_TABLE))


#: The events table `event_ledger_save_event` (migration 0011) writes: the
#: Programmes application's, which the migrations make (0001).
SERVER_SAVE_EVENTS_TABLE = "programmes_events"
#: The most saves of a group written by the server's function. Per save, the
#: function path costs the worker less CPU at every size (2026-12-06, one
#: process: 87 against 195 µs for one save, 8 against 12 at 256) but the
#: server more, one call at a time: from about a hundred saves its wall time
#: per save passes the two round trips' (69 against 56 µs at 256), and bulk
#: chunks of a thousand were slower (P10 quick: 8,513 against 11,432 events/s).
#: A group commit holds at most a worker's request threads (8 by default).
SAVES_IN_SERVER_AT_MOST = 64
#: `event_ledger_save_event`'s reasons for refusing a save, as domain.ledger.screen words them.
REFUSALS = {"event_id recorded": EVENT_ID_RECORDED, "overtaken": OVERTAKEN}


def _one_event_of_text(save: Save) -> bool:
    """Whether the server's save function takes this save: one event, not the start
    of a programme under an alias, its clinic, type and topic text (anything else
    is refused by the chain in Python, as it always was)."""
    if len(save.stored_events) != 1 or save.has_alias:
        return False
    entry = save.ledger[0]
    return (type(entry.clinic_id) is str and type(entry.event_type) is str
            and type(save.stored_events[0].topic) is str)


def _text(escaping: Escaping, value: str | None) -> bytes:
    """A text literal for this connection (escaped by libpq), or NULL."""
    if value is None:
        return b"NULL"
    return b"'" + escaping.escape_string(value.encode()) + b"'"


class ReadQueries:
    """The read-only queries of the log that a streaming replica can answer as well
    as the primary (service/storage/replica.py), written once for both."""

    def __init__(self, schema: str, events_table: str) -> None:
        self.history = _sql(
            "SELECT e.originator_version, e.topic, e.state, l.position, l.recorded_at, "
            "l.clinic_id, l.clinic_position "
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
                       row["clinic_id"], row["clinic_position"])
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
        #: The clinic positions of the events this process recorded last.
        self.clinic_numbers = RecentClinicNumbers()
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
                "event_id uuid NOT NULL, "
                "clinic_id text NOT NULL, "
                "event_type text NOT NULL, "
                "recorded_at timestamptz NOT NULL, "
                "content_digest text, "
                "saved_version bigint NOT NULL, "
                "chain_hash text NOT NULL, "
                "UNIQUE (programme_id, version), "
                "UNIQUE (event_id, clinic_id))"
            ).format(**ids)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{aliases} (stored_id TEXT PRIMARY KEY, "
                "clinic_id TEXT NOT NULL, programme_id TEXT NOT NULL, "
                "UNIQUE (clinic_id, programme_id))"
            ).format(**ids, aliases=Identifier(ALIASES_TABLE))
        )
        # The write path's fixed text, rendered once (composing SQL per save
        # cost more than the values it carries). See `_record_saves`.
        lock_and_notify = b"; ".join(
            [statement.as_bytes(None) for statement in self.lock_table_statements]
            + [SQL("NOTIFY {channel}").format(channel=Identifier(self.channel_name))
               .as_bytes(None)])
        self.sql_begin_lock_notify = b"BEGIN; " + lock_and_notify
        #: The results before the first save's in `_record_in_one_round_trip`:
        #: BEGIN's, the lock's statements', NOTIFY's.
        self.results_before_saves = len(self.lock_table_statements) + 2
        #: Migration 0011's function writes the service's own events table; a
        #: recorder of another (the library's test applications) saves in two.
        self.saves_in_server = self.events_table_name == SERVER_SAVE_EVENTS_TABLE
        self.sql_save_event = b"SELECT * FROM " + SQL(
            "{schema}.event_ledger_save_event").format(**ids).as_bytes(None) + b"('"
        self.sql_begin_and_read_head = self.sql_begin_lock_notify + b"; " + SQL(
            "SELECT position, chain_hash, recorded_at FROM {schema}.{ledger} "
            "ORDER BY position DESC LIMIT 1"
        ).format(**ids).as_bytes(None)
        # Each programme's last version by its own lookup of the last key in the
        # events' primary key (none if it has no events). A MAX ... GROUP BY over
        # `originator_id IN (...)` reads every event of the programmes, and its
        # plan follows the planner's row estimates: a bulk chunk's screen took a
        # parallel scan (34 ms for 1,000 programmes of a 2-million-event store,
        # against 9 ms), and without statistics a single post's was JIT-compiled
        # (4.3 ms against 0.4), all of it under the table lock.
        # (LATERAL: a scalar subquery in the select list is planned once for the
        # list and again for a filter on it.)
        self.sql_screen = SQL(
            "SELECT k.id AS key, v.version, NULL::text AS clinic_id "
            "FROM (VALUES {{programmes}}) AS k(id) CROSS JOIN LATERAL "
            "(SELECT MAX(e.originator_version) AS version FROM {schema}.{events} e "
            "WHERE e.originator_id = k.id) AS v WHERE v.version IS NOT NULL "
            "UNION ALL SELECT event_id, NULL, clinic_id FROM {schema}.{ledger} "
            "WHERE event_id IN ({{event_ids}})"
        ).format(**ids).as_bytes(None)
        self.sql_insert_ledger = SQL(
            "INSERT INTO {schema}.{ledger} (" + ", ".join(LEDGER_COLUMNS)
            + ", clinic_position) VALUES "
        ).format(**ids).as_bytes(None)
        # Each clinic's last number, read under the table lock: the new rows are
        # numbered in Python, which spares the trigger of migration 0006 a MAX
        # lookup per row (most of the server's time for a bulk chunk's insert).
        self.sql_clinics_last = SQL(
            "SELECT c.clinic_id, (SELECT MAX(clinic_position) FROM {schema}.{ledger} l "
            "WHERE l.clinic_id = c.clinic_id) AS last FROM (VALUES {{clinics}}) AS c(clinic_id)"
        ).format(**ids).as_bytes(None)
        self.sql_insert_events = SQL(
            "INSERT INTO {schema}.{events} "
            "(originator_id, originator_version, topic, state, notification_id) VALUES "
        ).format(**ids).as_bytes(None)
        self.select_stored_events = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{events} "
            "WHERE originator_id = %s"
        ).format(**ids).as_bytes(None)
        self._select_events_statements: dict[tuple[bool, bool, bool, bool], bytes] = {}
        self.select_events_after = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%s::uuid[], %s::bigint[]) AS k(id, version) "
            "JOIN {schema}.{events} e ON e.originator_id = k.id "
            "AND e.originator_version > k.version "
            "ORDER BY e.originator_id, e.originator_version"
        ).format(**ids).as_bytes(None)
        # `events_since`: one row at least (`recorded`: whether the clinic has
        # recorded the event id), then one per event after the version. One id,
        # not a list: a list's generic plan is costed above the custom ones, so
        # the server would plan the statement again on every post.
        self.select_events_since = direct.Statement(SQL(
            "SELECT r.recorded, e.originator_version, e.topic, e.state FROM (SELECT EXISTS "
            "(SELECT 1 FROM {schema}.{ledger} WHERE event_id = $1 AND clinic_id = $2) "
            "AS recorded) r LEFT JOIN {schema}.{events} e ON e.originator_id = $3 "
            "AND e.originator_version > $4 ORDER BY e.originator_version"
        ).format(**ids).as_bytes(None))
        self.reads = ReadQueries(self.datastore.schema, self.events_table_name)
        self.select_entries = SQL("SELECT * FROM {schema}.{ledger} WHERE ").format(**ids)
        self.select_owners = SQL(
            "SELECT programme_id, clinic_id FROM {schema}.{ledger} "
            "WHERE version = 1 AND programme_id = ANY(%s)"
        ).format(**ids)
        # Each position found by the primary key, its clinic then compared (the
        # ledger has no index on (clinic_id, position) since migration 0009).
        self.select_clinic_positions = SQL(
            "SELECT position, clinic_position FROM {schema}.{ledger} "
            "WHERE position = ANY(%s) AND clinic_id = %s"
        ).format(**ids)
        self.select_clinic_position_at = SQL(COUNT_AT_POSITION).format(
            ledger=SQL("{schema}.{ledger}").format(**ids),
            clinic=Placeholder("clinic"), position=Placeholder("position"))
        self.select_position_of = SQL(
            "SELECT position FROM {schema}.{ledger} WHERE clinic_id = %s "
            "AND clinic_position = %s"
        ).format(**ids)
        self.sql_insert_aliases = SQL(
            "INSERT INTO {schema}.{aliases} (stored_id, clinic_id, programme_id) VALUES "
        ).format(**ids, aliases=Identifier(ALIASES_TABLE)).as_bytes(None)
        self.select_aliases = SQL(
            "SELECT stored_id, programme_id FROM {schema}.{aliases} WHERE stored_id = ANY(%s)"
        ).format(**ids, aliases=Identifier(ALIASES_TABLE))
        self.select_version_as_of = SQL(
            "SELECT MAX(version) AS version FROM {schema}.{ledger} "
            "WHERE programme_id = %s AND recorded_at <= %s"
        ).format(**ids)

    @retry_write
    def record_saves(self, saves: Sequence[Save]) -> list[Outcome]:
        """The saves in one transaction, under the library's table lock (so
        positions are assigned in commit order), with NOTIFY for the followers of
        the log. A group of saves of one event each (single-event posts, alone
        or gathered by the group commit), up to SAVES_IN_SERVER_AT_MOST of them,
        is written by the server in one round trip; any other in two
        (`_record_in_two_round_trips`).

        A save that would break a unique key or a programme's run of versions
        is refused before anything of it is written (domain.ledger.screen, or
        its twin in the server): it fails with IntegrityError at once, the rest
        are written, and the database logs no error. Anything raised rolls the
        transaction back, so a ledger row is never committed without its event.
        (The values are written into the statements as literals, escaped by
        libpq for this connection: binding parameters cost more CPU than the
        rest of a save, and the simple protocol lets one round trip carry
        several statements.)
        """
        with self.datastore.get_connection() as conn:
            escaping = Escaping(conn.pgconn)
            try:
                if (self.saves_in_server and len(saves) <= SAVES_IN_SERVER_AT_MOST
                        and all(_one_event_of_text(save) for save in saves)):
                    return self._record_in_one_round_trip(conn, escaping, saves)
                return self._record_in_two_round_trips(conn, escaping, saves)
            except BaseException:
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    with contextlib.suppress(Exception):  # a broken connection is discarded
                        direct.results(conn, b"ROLLBACK")
                raise

    def _record_in_one_round_trip(self, conn: Any, escaping: Escaping,
                                  saves: Sequence[Save]) -> list[Outcome]:
        """Saves of one event each: begin, lock, NOTIFY, then each save screened,
        numbered, chained and written by `event_ledger_save_event` (migration
        0011) after the ones before it, then commit; all in one round trip. The
        server's round trip and the Python between two of them were a tenth of
        a single-event post's CPU (BENCHMARKS.md, P12)."""
        now = b"'%s'::timestamptz" % datetime.now(UTC).isoformat().encode()
        calls = []
        for save in saves:
            event, entry = save.stored_events[0], save.ledger[0]
            calls.append(self.sql_save_event + b"%s'::uuid, %d, '%s'::uuid, %s, %s, %s, %s, %d, "
                         b"%s, '%s'::bytea)" % (
                             save.programme_hexes[0].encode(), event.originator_version,
                             save.event_keys[0][1].encode(), _text(escaping, entry.clinic_id),
                             _text(escaping, entry.event_type), now,
                             _text(escaping, entry.content_digest), event.originator_version,
                             _text(escaping, event.topic), escaping.escape_bytea(event.state)))
        found = direct.results(conn, self.sql_begin_lock_notify + b"; " + b"; ".join(calls)
                               + b"; COMMIT")
        outcomes: list[Outcome] = []
        numbered = []
        for save, result in zip(saves, found[self.results_before_saves:-1], strict=True):
            position, number, refused = direct.rows(conn, result)[0]
            if refused is None:
                outcomes.append([position])
                numbered.append((position, save.ledger[0].clinic_id, number))
            else:
                outcomes.append(IntegrityError(REFUSALS[refused]))
        # Committed: what each event is numbered in its clinic stays true.
        self.clinic_numbers.keep(numbered)
        return outcomes

    def _record_in_two_round_trips(self, conn: Any, escaping: Escaping,
                                   saves: Sequence[Save]) -> list[Outcome]:
        """Any saves, in two round trips:

        1. begin; the table lock; NOTIFY; the ledger's head; the saves'
           programmes' last versions and which of their event_ids are recorded
           already; their clinics' last numbers;
        2. the ledger rows and the events of the saves that break no unique key
           (numbered, in the log and in each clinic, and chained from the head,
           in Python), then commit.
        """
        # A clinic that is no text is not asked for: the chain refuses it, in
        # the transaction, as it always has.
        clinics = b", ".join(b"(%s)" % _text(escaping, clinic_id) for clinic_id in
                             dict.fromkeys(entry.clinic_id for save in saves
                                           for entry in save.ledger)
                             if isinstance(clinic_id, str))
        found = direct.results(
            conn, self.sql_begin_and_read_head + b"; " + self._screen_query(saves)
            + b"; " + self.sql_clinics_last.replace(b"{clinics}", clinics or b"(NULL::text)"))
        heads = direct.rows(conn, found[-3])
        head = heads[0] if heads else None  # (position, chain_hash, recorded_at)
        held = direct.rows(conn, found[-2])  # (key, version, clinic_id)
        last = {clinic_id: number or 0 for clinic_id, number in direct.rows(conn, found[-1])}
        # The rows' uuids keyed by their hex, as the saves are (Save).
        refused = screen(saves, {key.hex: version for key, version, _ in held
                                 if version is not None},
                         [(clinic_id, key.hex) for key, version, clinic_id in held
                          if version is None])
        accepted = [save for index, save in enumerate(saves) if index not in refused]
        if not accepted:
            direct.results(conn, b"COMMIT")  # nothing was written
            return [refused[index] for index in range(len(saves))]
        first = (head[0] if head else 0) + 1
        rows = ledger_rows(accepted, first_position=first,
                           previous_hash=head[1] if head else chain.GENESIS,
                           previous_recorded_at=head[2] if head else None)
        numbers = numbers_in_clinics(rows, last)
        direct.results(conn, self._insert_statements(escaping, rows, numbers, accepted)
                       + b"; COMMIT")
        # Committed: what each event is numbered in its clinic stays true.
        self.clinic_numbers.keep((row.position, row.clinic_id, number)
                                 for row, number in zip(rows, numbers, strict=True))
        outcomes: list[Outcome] = []
        position = first
        for index, save in enumerate(saves):
            if index in refused:
                outcomes.append(refused[index])
            else:
                outcomes.append(list(range(position, position + len(save.stored_events))))
                position += len(save.stored_events)
        return outcomes

    def _screen_query(self, saves: Sequence[Save]) -> bytes:
        # Every save has events, so neither list is empty; joined as text, encoded once.
        # A uuid's input may be its 32 hex digits (Save: worked out once).
        programmes = "'::uuid), ('".join({p for save in saves for p in save.versions})
        event_ids = "'::uuid, '".join(e for save in saves for _, e in save.event_keys)
        return self.sql_screen.replace(b"{programmes}", b"('%s'::uuid)" % programmes.encode()
                                       ).replace(b"{event_ids}", b"'%s'::uuid" % event_ids.encode())

    def _insert_statements(self, escaping: Escaping, rows: Sequence[NewRow],
                           numbers: Sequence[int], saves: Sequence[Save]) -> bytes:
        def text(value: str | None) -> bytes:
            return _text(escaping, value)

        recorded_at = b"'%s'::timestamptz" % rows[0].recorded_at.isoformat().encode()
        # A uuid's input may be its 32 hex digits (worked out once, by ledger_rows).
        ledger = b", ".join(
            b"(%d, '%s'::uuid, %d, '%s'::uuid, %s, %s, %s, %s, %d, '%s', %d)" % (
                row.position, row.programme_hex.encode(), row.version,
                row.event_hex.encode(), text(row.clinic_id), text(row.event_type),
                recorded_at, text(row.content_digest), row.saved_version,
                row.chain_hash.encode(), number)
            for row, number in zip(rows, numbers, strict=True))
        stored = [event for save in saves for event in save.stored_events]
        events = b", ".join(
            b"('%s'::uuid, %d, %s, '%s'::bytea, %d)" % (
                row.programme_hex.encode(), row.version, text(event.topic),
                escaping.escape_bytea(event.state), row.position)
            for row, event in zip(rows, stored, strict=True))
        statements = self.sql_insert_ledger + ledger + b"; " + self.sql_insert_events + events
        aliases = alias_rows(saves)
        if aliases:
            statements += b"; " + self.sql_insert_aliases + b", ".join(
                b"(%s, %s, %s)" % tuple(text(value) for value in alias) for alias in aliases
            ) + b" ON CONFLICT DO NOTHING"
        return statements

    @retry_read
    def select_events(self, originator_id: UUID | str, *, gt: int | None = None,
                      lte: int | None = None, desc: bool = False, limit: int | None = None
                      ) -> Sequence[StoredEvent]:
        """The library's, with its statements rendered once: a programme's events
        are read on every command (the cache is fast-forwarded), and composing
        the statement each time cost as much as reading the rows."""
        shape = (gt is not None, lte is not None, desc, limit is not None)
        statement = self._select_events_statements.get(shape)
        if statement is None:
            text = self.select_stored_events + (b" AND originator_version > %s" if shape[0]
                                                else b"")
            text += b" AND originator_version <= %s" if shape[1] else b""
            text += b" ORDER BY originator_version" + (b" DESC" if desc else b" ASC")
            text += b" LIMIT %s" if shape[3] else b""
            statement = self._select_events_statements.setdefault(shape, text)
        params = [originator_id, *(value for value in (gt, lte, limit) if value is not None)]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params, prepare=True)
            return [StoredEvent(originator_id=row["originator_id"],
                                originator_version=row["originator_version"],
                                topic=row["topic"], state=bytes(row["state"]))
                    for row in curs.fetchall()]

    # ---- the Ledger port of domain.ledger ----------------------------------

    @retry_read
    def _select(self, where: str, params: Sequence[Any]) -> list[RecordedEntry]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_entries + SQL(where + " ORDER BY position"), params)
            return [
                recorded_entry(row, to_uuid=lambda v: v, to_datetime=lambda v: v)
                for row in curs.fetchall()
            ]

    def entries_by_event_id(self, clinic_id: str | None, event_ids: Sequence[UUID]
                            ) -> list[RecordedEntry]:
        if not event_ids:
            return []
        if clinic_id is None:
            return self._select("event_id = ANY(%s)", [list(event_ids)])
        return self._select("event_id = ANY(%s) AND clinic_id = %s",
                            [list(event_ids), clinic_id])

    def entries_of_programme(self, programme_id: UUID,
                             versions: tuple[int, int] | None = None) -> list[RecordedEntry]:
        if versions is None:
            return self._select("programme_id = %s", [programme_id])
        return self._select("programme_id = %s AND version BETWEEN %s AND %s",
                            [programme_id, *versions])

    # ---- positions counted per clinic (service/storage/clinic_positions.py) ----

    @retry_read
    def clinic_positions(self, clinic_id: str, positions: Collection[int]) -> dict[int, int]:
        if not positions:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_clinic_positions, [sorted(set(positions)), clinic_id],
                         prepare=True)
            return {row["position"]: row["clinic_position"] for row in curs.fetchall()}

    @retry_read
    def clinic_position_at(self, clinic_id: str, position: int) -> int:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_clinic_position_at,
                         {"clinic": clinic_id, "position": position}, prepare=True)
            row = curs.fetchone()
            return int(row["clinic_position"]) if row else 0

    @retry_read
    def position_of(self, clinic_id: str, clinic_position: int) -> int | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_position_of, [clinic_id, clinic_position], prepare=True)
            row = curs.fetchone()
            return row["position"] if row else None

    @retry_read
    def aliases(self, stored_ids: Collection[UUID]) -> dict[UUID, UUID]:
        if not stored_ids:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_aliases, [[str(stored_id) for stored_id in stored_ids]])
            return {UUID(row["stored_id"]): UUID(row["programme_id"]) for row in curs.fetchall()}

    @retry_read
    def owners(self, programme_ids: Collection[UUID]) -> dict[UUID, str]:
        if not programme_ids:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_owners, [list(programme_ids)], prepare=True)
            return {row["programme_id"]: row["clinic_id"] for row in curs.fetchall()}

    @retry_read
    def events_since(self, programme_id: UUID, version: int, clinic_id: str,
                     event_id: UUID) -> tuple[list[StoredEvent], bool]:
        with self.datastore.get_connection() as conn:
            found = direct.rows(conn, direct.prepared(
                conn, self.select_events_since,
                [event_id.hex.encode(), clinic_id.encode(), programme_id.hex.encode(),
                 b"%d" % version]))
        # (recorded, originator_version, topic, state) of each row
        return [StoredEvent(originator_id=programme_id, originator_version=row[1],
                            topic=row[2], state=row[3])
                for row in found if row[1] is not None], found[0][0]

    @retry_read
    def events_after(self, versions: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        """Each programme's stored events after the version given for it, in order."""
        found: dict[UUID, list[StoredEvent]] = {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_events_after, [list(versions), list(versions.values())])
            for row in curs.fetchall():
                found.setdefault(row["originator_id"], []).append(StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"], topic=row["topic"],
                    state=bytes(row["state"])))
        return found

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
