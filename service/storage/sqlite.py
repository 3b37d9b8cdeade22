"""The SQLite recorder: the library's, plus the ledger table.

Writers take the file's write lock (service/storage/sqlite_lock.py), so one
transaction at a time numbers its events from the ledger's head: an event's
rowid, the library's notification id, is its gap-free global position, in
commit order.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Mapper, OperationalError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteConnection, SQLiteCursor

from domain.ledger import HistoryEntry, Outcome, RecordedEntry, Save, screen
from service.storage import chain
from service.storage.clinic_positions import COUNT_AT_POSITION
from service.storage.group_commit import GroupCommit
from service.storage.ledger import (
    LEDGER_COLUMNS,
    RecentClinicNumbers,
    alias_rows,
    ledger_rows,
    numbers_in_clinics,
    recorded_entry,
)
from service.storage.sqlite_checkpoints import checkpointer
from service.storage.sqlite_lock import database_file, write_lock
from service.storage.stored import HistoryRow, history_entries

LEDGER_TABLE = "event_ledger"
#: The recorder's `clinic_position_at` (service/storage/clinic_positions.py).
SELECT_COUNT_AT_POSITION = COUNT_AT_POSITION.format(
    ledger=LEDGER_TABLE, clinic=":clinic", position=":position")
#: The ledger rows of a programme (its id's hex the parameter ?1), found by
#: position: its events' rowids, read in the events' primary key. The ledger
#: has no index on (programme_id, version) since migration 0010: that pair is
#: the events' key, and each event is written with its ledger row at its own
#: position (`_insert`; verification checks that they agree). The row's
#: programme is compared too, so a row is found only where both say so.
PROGRAMME_ROWS = ("programme_id = ?1 AND position IN "
                  "(SELECT rowid FROM {events} WHERE originator_id = ?1)")
#: PROGRAMME_ROWS of versions ?2 to ?3 only.
PROGRAMME_VERSION_ROWS = (
    "programme_id = ?1 AND position IN (SELECT rowid FROM {events} "
    "WHERE originator_id = ?1 AND originator_version BETWEEN ?2 AND ?3)")
#: Programmes stored under an alias (domain/programme_aliases.py, migration 0008).
ALIASES_TABLE = "programme_aliases"
#: Programmes per query of `events_after` (SQLite limits a statement's parameters).
EVENTS_AFTER_BATCH = 500
#: The page cache (KiB) of a connection while it writes saves (`write_cache`):
#: room for every page a bulk chunk of 1,000 lines changes, a page of each
#: unique index per row once the store is large (8 MB started spilling again
#: at about 100,000 events of 1,000 interleaved programmes; 16 MB did not at
#: 300,000). Taken only as pages are needed.
WRITE_CACHE_KIB = 16 * 1024
#: From how many events a group's write is given that cache (write_cache).
WRITE_CACHE_FROM = 100


def _to_uuid(value: str) -> UUID:
    return UUID(value)


def _to_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _iso(value: datetime) -> str:
    # Fixed width, so that text order is time order.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _iso_text(stored: str | None) -> str | None:
    """A stored record time as datetime.isoformat() writes it (no zero microseconds)."""
    if stored is not None and stored[19:26] == ".000000":
        return stored[:19] + stored[26:]
    return stored


@contextmanager
def write_cache(conn: SQLiteConnection, events: int) -> Iterator[None]:
    """The connection's page cache at WRITE_CACHE_KIB while it writes a group of
    `events` events, then back to what it was; as it is for a group of fewer
    than WRITE_CACHE_FROM events (the three PRAGMAs cost a single-event post
    more than the spilled pages they would save it).

    A bulk chunk's inserts dirty a page of each unique index per row, more than
    SQLite's default cache (2 MB) holds: SQLite then writes dirty pages to the
    WAL before the commit, which writes them again, and reads them back (a
    chunk of 1,000 lines wrote twice the bytes it does with room for them).
    Only while writing, not for the connection's life: a process pools several
    connections (5, and more at peaks), each of which would keep its cache
    full; under the write lock, one at a time holds the larger one."""
    if events < WRITE_CACHE_FROM:
        yield
        return
    with conn.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        before = int(cursor.fetchone()[0])
        cursor.execute(f"PRAGMA cache_size = -{WRITE_CACHE_KIB}")
    try:
        yield
    finally:
        # Shrinking it frees the pages above the default. Never an error after a
        # commit (the saves are recorded): should it fail, the connection merely
        # keeps the larger cache.
        with contextlib.suppress(sqlite3.Error), conn.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {before}")


def entries_by_event_id_query(clinic_id: str | None, event_ids: Sequence[UUID]
                              ) -> tuple[str, list[str]]:
    """The WHERE clause and parameters of `entries_by_event_id`."""
    marks = ",".join("?" * len(event_ids))
    if clinic_id is None:
        return f"event_id IN ({marks})", [e.hex for e in event_ids]
    # `+clinic_id`: not an index term. Otherwise SQLite may read a clinic's index,
    # (clinic_id, clinic_position) (or (clinic_id, position) before migration 0009),
    # and scan all of the clinic's entries (a hundred milliseconds at 60,000)
    # instead of looking up each event id in (event_id, clinic_id).
    return (f"event_id IN ({marks}) AND +clinic_id = ?",
            [*(e.hex for e in event_ids), clinic_id])


def clinic_positions_query(clinic_id: str, positions: Sequence[int]) -> tuple[str, list[Any]]:
    """The statement and parameters of `clinic_positions` for one batch of positions."""
    # Each position looked up in the primary key, then its clinic compared:
    # `+clinic_id` is not an index term, or SQLite reads all of the clinic's
    # entries in (clinic_id, clinic_position) and keeps the positions asked for
    # (the ledger has no (clinic_id, position) index since migration 0009).
    return (f"SELECT position, clinic_position FROM {LEDGER_TABLE} "
            f"WHERE position IN ({','.join('?' * len(positions))}) AND +clinic_id = ?",
            [*positions, clinic_id])


class LedgerSQLiteRecorder(GroupCommit, SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The clinic positions of the events this process recorded last.
        self.clinic_numbers = RecentClinicNumbers()
        self._select_events_statements: dict[tuple[bool, bool, bool, bool], str] = {}
        self._programme_rows = PROGRAMME_ROWS.format(events=self.events_table_name)
        self._programme_versions = PROGRAMME_VERSION_ROWS.format(events=self.events_table_name)
        # `events_since`: one row at least (its first column says whether the id
        # is recorded), then one per event after the version.
        self._select_events_since = (
            f"SELECT r.recorded, e.originator_version, e.topic, e.state FROM (SELECT EXISTS "
            f"(SELECT 1 FROM {LEDGER_TABLE} WHERE event_id = ? AND clinic_id = ?) AS recorded) "
            f"r LEFT JOIN {self.events_table_name} e ON e.originator_id = ? "
            "AND e.originator_version > ? ORDER BY e.originator_version")
        # The file whose WAL is checkpointed in a thread of this process rather than in
        # a commit (service/storage/sqlite_checkpoints.py); none in memory.
        path = database_file(self.datastore.pool.db_name)
        self._database_file = path.resolve() if path is not None else None

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ("
            "position INTEGER PRIMARY KEY, "
            "programme_id TEXT NOT NULL, "
            "version INTEGER NOT NULL, "
            "event_id TEXT NOT NULL, "
            "clinic_id TEXT NOT NULL, "
            "event_type TEXT NOT NULL, "
            "recorded_at TEXT NOT NULL, "
            "content_digest TEXT, "
            "saved_version INTEGER NOT NULL, "
            "chain_hash TEXT NOT NULL, "
            "UNIQUE (event_id, clinic_id))",
            f"CREATE TABLE IF NOT EXISTS {ALIASES_TABLE} (stored_id TEXT PRIMARY KEY, "
            "clinic_id TEXT NOT NULL, programme_id TEXT NOT NULL, "
            "UNIQUE (clinic_id, programme_id))",
        ]

    def record_saves(self, saves: Sequence[Save]) -> list[Outcome]:
        """One transaction under the file's write lock: the saves screened for
        the ones that would break a unique key or a programme's run of versions
        (domain.ledger.screen), then the others' events,
        numbered from the ledger's head, and their ledger rows. Anything raised
        rolls it all back."""
        numbered: list[tuple[int, str, int]] = []
        with write_lock(self.datastore.pool.db_name).held(), \
                self.datastore.get_connection(commit=True) as conn, \
                write_cache(conn, sum(len(save.stored_events) for save in saves)), \
                conn.transaction(commit=True) as c:
            refused = self._screen(c, saves)
            accepted = [save for index, save in enumerate(saves) if index not in refused]
            if accepted:
                numbered = self._insert(c, accepted)
        if self._database_file is not None and numbered:
            # This process's (after a fork too).
            checkpointer(self._database_file).committed(len(numbered))
        # Committed: what each event is numbered in its clinic stays true.
        self.clinic_numbers.keep(numbered)
        first = numbered[0][0] if numbered else 0
        outcomes: list[Outcome] = []
        for index, save in enumerate(saves):
            if index in refused:
                outcomes.append(refused[index])
            else:
                outcomes.append(list(range(first, first + len(save.stored_events))))
                first += len(save.stored_events)
        return outcomes

    def _insert(self, c: SQLiteCursor, saves: Sequence[Save]) -> list[tuple[int, str, int]]:
        """Insert the saves' events and ledger rows, numbered from the ledger's head;
        (position, clinic, clinic position) of each row, in order."""
        stored = [event for save in saves for event in save.stored_events]
        clinics = list({clinic_id for save in saves for clinic_id, _ in save.event_keys})
        # The head, and each clinic's last number (one index lookup each, as the
        # trigger of migration 0006 would make for every row).
        c.execute("SELECT position, chain_hash, recorded_at, "
                  + ", ".join([f"(SELECT MAX(clinic_position) FROM {LEDGER_TABLE} "
                               "WHERE clinic_id = ?)"] * len(clinics))
                  + f" FROM {LEDGER_TABLE} ORDER BY position DESC LIMIT 1", clinics)
        head = c.fetchone()
        rows = ledger_rows(
            saves,
            first_position=(head["position"] if head else 0) + 1,
            previous_hash=head["chain_hash"] if head else chain.GENESIS,
            previous_recorded_at=_to_datetime(head["recorded_at"]) if head else None,
        )
        # The event's rowid is its position (the library's notification id):
        # numbered here, from the ledger's head, exactly as the ledger is.
        c.executemany(
            f"INSERT INTO {self.events_table_name} "
            "(rowid, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)",
            [(row.position, row.programme_hex, row.version, event.topic, event.state)
             for row, event in zip(rows, stored, strict=True)],
        )
        # Numbered in each clinic here, under the write lock, rather than by the
        # trigger (which numbers only rows inserted without a number): the
        # receipt needs the numbers, and this saves the trigger's update.
        numbers = numbers_in_clinics(rows, {
            clinic_id: (head[3 + index] or 0) if head else 0
            for index, clinic_id in enumerate(clinics)})
        recorded_at = _iso(rows[0].recorded_at)
        c.executemany(
            f"INSERT INTO {LEDGER_TABLE} ({', '.join(LEDGER_COLUMNS)}, clinic_position) "
            f"VALUES ({', '.join('?' * (len(LEDGER_COLUMNS) + 1))})",
            [(row.position, row.programme_hex, row.version, row.event_hex, row.clinic_id,
              row.event_type, recorded_at, row.content_digest, row.saved_version,
              row.chain_hash, number) for row, number in zip(rows, numbers, strict=True)],
        )
        aliases = alias_rows(saves)
        if aliases:
            c.executemany(f"INSERT INTO {ALIASES_TABLE} (stored_id, clinic_id, programme_id) "
                          "VALUES (?, ?, ?) ON CONFLICT DO NOTHING", aliases)
        return [(row.position, row.clinic_id, number)
                for row, number in zip(rows, numbers, strict=True)]

    def _screen(self, c: SQLiteCursor, saves: Sequence[Save]) -> dict[int, IntegrityError]:
        """`domain.ledger.screen` on what the store holds of the saves' programmes
        (their last versions, and which of the saves' event ids are recorded), read
        with one statement."""
        # Keyed by the ids' hex, as the rows carry them (Save: worked out once).
        programmes = {programme for save in saves for programme in save.versions}
        event_ids = [event_hex for save in saves for _, event_hex in save.event_keys]
        # Each programme's last version by a lookup of its last key in the events'
        # primary key (a MAX ... GROUP BY reads all of its events); NULL if it has
        # none. The recorded event ids' rows are the ones with a clinic.
        c.execute(
            f"WITH k(id) AS (VALUES {', '.join(['(?)'] * len(programmes))}) "
            f"SELECT id, (SELECT MAX(originator_version) FROM {self.events_table_name} "
            "WHERE originator_id = k.id), NULL FROM k "
            f"UNION ALL SELECT event_id, NULL, clinic_id FROM {LEDGER_TABLE} "
            f"WHERE event_id IN ({', '.join('?' * len(event_ids))})",
            [*programmes, *event_ids],
        )
        last: dict[str, int] = {}
        recorded: list[tuple[str, str]] = []
        for key, version, clinic_id in c.fetchall():
            if clinic_id is not None:
                recorded.append((clinic_id, key))
            elif version is not None:
                last[key] = version
        return screen(saves, last, recorded)

    def select_events(self, originator_id: UUID | str, *, gt: int | None = None,
                      lte: int | None = None, desc: bool = False, limit: int | None = None
                      ) -> Sequence[StoredEvent]:
        """The library's, with its statements built once, and without the BEGIN and
        ROLLBACK it puts around the one SELECT (alone, a statement reads one
        snapshot anyway): a programme's events are read on every command (the
        cache is fast-forwarded)."""
        shape = (gt is not None, lte is not None, desc, limit is not None)
        statement = self._select_events_statements.get(shape)
        if statement is None:
            text = self.select_events_statement
            text += "AND originator_version>? " if shape[0] else ""
            text += "AND originator_version<=? " if shape[1] else ""
            text += "ORDER BY originator_version " + ("DESC " if desc else "ASC ")
            text += "LIMIT ? " if shape[3] else ""
            statement = self._select_events_statements.setdefault(shape, text)
        params = [originator_id.hex if isinstance(originator_id, UUID) else originator_id,
                  *(value for value in (gt, lte, limit) if value is not None)]
        rows = self._read_rows(statement, params)
        return [StoredEvent(originator_id=self.convert_originator_id(row["originator_id"]),
                            originator_version=row["originator_version"], topic=row["topic"],
                            state=row["state"]) for row in rows]

    def events_since(self, programme_id: UUID, version: int, clinic_id: str,
                     event_id: UUID) -> tuple[list[StoredEvent], bool]:
        rows = self._read_rows(self._select_events_since,
                               [event_id.hex, clinic_id, programme_id.hex, version])
        return [StoredEvent(originator_id=programme_id, originator_version=row[1],
                            topic=row[2], state=row[3])
                for row in rows if row[1] is not None], bool(rows[0][0])

    # ---- the Ledger port of domain.ledger ----------------------------------

    def _select_entries(self, where: str, params: Sequence[Any]) -> list[RecordedEntry]:
        rows = self._read_rows(f"SELECT * FROM {LEDGER_TABLE} WHERE {where} ORDER BY position",
                               params)
        return [recorded_entry(row, to_uuid=_to_uuid, to_datetime=_to_datetime)
                for row in rows]

    def _read_rows(self, statement: str, params: Sequence[Any]) -> list[Any]:
        """The rows of one SELECT, without the BEGIN and ROLLBACK the library puts
        around its reads (alone, a statement reads one snapshot anyway): the hot
        reads (a programme's new events, a bulk chunk's event ids) run it often."""
        with self.datastore.get_connection(commit=False) as conn, conn.cursor() as c:
            try:
                c.execute(statement, params)
                return c.fetchall()
            except sqlite3.OperationalError as error:  # as the library's own reads say it
                raise OperationalError(error) from error

    def entries_by_event_id(self, clinic_id: str | None, event_ids: Sequence[UUID]
                            ) -> list[RecordedEntry]:
        if not event_ids:
            return []
        return self._select_entries(*entries_by_event_id_query(clinic_id, event_ids))

    def entries_of_programme(self, programme_id: UUID,
                             versions: tuple[int, int] | None = None) -> list[RecordedEntry]:
        if versions is None:
            return self._select_entries(self._programme_rows, [programme_id.hex])
        return self._select_entries(self._programme_versions, [programme_id.hex, *versions])

    # ---- positions counted per clinic (service/storage/clinic_positions.py) ----

    def clinic_positions(self, clinic_id: str, positions: Collection[int]) -> dict[int, int]:
        if not positions:
            return {}
        found: dict[int, int] = {}
        wanted = sorted(set(positions))
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(wanted), EVENTS_AFTER_BATCH):
                c.execute(*clinic_positions_query(clinic_id,
                                                  wanted[start:start + EVENTS_AFTER_BATCH]))
                found.update((row[0], row[1]) for row in c.fetchall())
        return found

    def clinic_position_at(self, clinic_id: str, position: int) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(SELECT_COUNT_AT_POSITION, {"clinic": clinic_id, "position": position})
            return int(c.fetchone()[0])

    def position_of(self, clinic_id: str, clinic_position: int) -> int | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position FROM {LEDGER_TABLE} WHERE clinic_id = ? "
                      "AND clinic_position = ?", [clinic_id, clinic_position])
            row = c.fetchone()
            return row[0] if row else None

    def aliases(self, stored_ids: Collection[UUID]) -> dict[UUID, UUID]:
        ids = [str(stored_id) for stored_id in stored_ids]
        found: dict[UUID, UUID] = {}
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), EVENTS_AFTER_BATCH):
                batch = ids[start:start + EVENTS_AFTER_BATCH]
                c.execute(f"SELECT stored_id, programme_id FROM {ALIASES_TABLE} "
                          f"WHERE stored_id IN ({','.join('?' * len(batch))})", batch)
                found.update((UUID(row[0]), UUID(row[1])) for row in c.fetchall())
        return found

    def owners(self, programme_ids: Collection[UUID]) -> dict[UUID, str]:
        if not programme_ids:
            return {}
        ids = [programme_id.hex for programme_id in programme_ids]
        found: dict[UUID, str] = {}
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), EVENTS_AFTER_BATCH):
                batch = ids[start:start + EVENTS_AFTER_BATCH]
                # Each programme's first event found in the events' key, its
                # ledger row by position (as PROGRAMME_ROWS).
                c.execute("SELECT l.programme_id, l.clinic_id "
                          f"FROM {self.events_table_name} e JOIN {LEDGER_TABLE} l "
                          "ON l.position = e.rowid AND l.programme_id = e.originator_id "
                          "AND l.version = 1 WHERE e.originator_version = 1 "
                          f"AND e.originator_id IN ({','.join('?' * len(batch))})",
                          batch)
                found.update((_to_uuid(row["programme_id"]), row["clinic_id"])
                             for row in c.fetchall())
        return found

    def events_after(self, versions: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        """Each programme's stored events after the version given for it, in order."""
        found: dict[UUID, list[StoredEvent]] = {}
        items = list(versions.items())
        with self.datastore.transaction(commit=False) as c:
            for first in range(0, len(items), EVENTS_AFTER_BATCH):
                batch = items[first:first + EVENTS_AFTER_BATCH]
                c.execute(
                    f"WITH k(id, version) AS (VALUES {', '.join(['(?, ?)'] * len(batch))}) "
                    "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                    f"FROM k JOIN {self.events_table_name} e ON e.originator_id = k.id "
                    "AND e.originator_version > k.version "
                    "ORDER BY e.originator_id, e.originator_version",
                    [value for programme_id, version in batch
                     for value in (programme_id.hex, version)],
                )
                for row in c.fetchall():
                    programme_id = _to_uuid(row[0])
                    found.setdefault(programme_id, []).append(StoredEvent(
                        originator_id=programme_id, originator_version=row[1], topic=row[2],
                        state=row[3]))
        return found

    def log_rows(self, after: int, limit: int) -> list[tuple[int, int, int, str, bytes]]:
        """(position, programme id as an int, version, topic, state) after `after`, in
        order: the notification log without the library's objects, for bulk reads."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {self.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                [after, limit],
            )
            # The library stores the id as its 32 hex digits.
            return [(row[0], int(row[1], 16), row[2], row[3], row[4]) for row in c.fetchall()]

    def history(self, programme_id: UUID, mapper: Mapper[UUID]) -> list[HistoryEntry]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT e.originator_version, e.topic, e.state, l.position, l.recorded_at, "
                f"l.clinic_id, l.clinic_position FROM {self.events_table_name} e "
                # Its ledger row by position (as PROGRAMME_ROWS).
                f"LEFT JOIN {LEDGER_TABLE} l ON l.position = e.rowid "
                "AND l.programme_id = e.originator_id AND l.version = e.originator_version "
                "WHERE e.originator_id = ? ORDER BY e.originator_version",
                [programme_id.hex],
            )
            rows = [HistoryRow(row[0], row[1], row[2], row[3], _iso_text(row[4]), row[5], row[6])
                    for row in c.fetchall()]
        return history_entries(mapper, rows)

    def version_as_of(self, programme_id: UUID, as_of: datetime) -> int | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT MAX(version) FROM {LEDGER_TABLE} "
                f"WHERE {self._programme_rows} AND recorded_at <= ?",
                [programme_id.hex, _iso(as_of)],
            )
            return c.fetchone()[0]

    # ---- read-only queries for the audit (service/audit) -----------------

    def chain_extent(self) -> int:
        """The largest position held by either the ledger or the events table (0 if empty)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT MAX((SELECT COALESCE(MAX(position), 0) FROM {LEDGER_TABLE}), "
                f"(SELECT COALESCE(MAX(rowid), 0) FROM {self.events_table_name}))"
            )
            return int(c.fetchone()[0])

    def ledger_window(self, first: int, last: int) -> list[dict[str, Any]]:
        """The ledger entries at positions first..last, with their chain hashes."""
        with self.datastore.transaction(commit=False) as c:
            return self._ledger_window(c, first, last)

    def chain_window(
        self, first: int, last: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The ledger entries and the stored events at positions first..last, each
        in position order, read in one transaction (one snapshot)."""
        with self.datastore.transaction(commit=False) as c:
            ledger = self._ledger_window(c, first, last)
            c.execute(
                "SELECT rowid AS position, originator_id, originator_version, topic, state "
                f"FROM {self.events_table_name} WHERE rowid BETWEEN ? AND ? ORDER BY rowid",
                [first, last],
            )
            events = [
                {
                    "position": row["position"],
                    "originator_id": _to_uuid(row["originator_id"]),
                    "originator_version": row["originator_version"],
                    "topic": row["topic"],
                    "state": bytes(row["state"]),
                }
                for row in c.fetchall()
            ]
        return ledger, events

    def ledger_position_of(self, programme_id: UUID, version: int) -> int | None:
        """Where the ledger records this version of this programme, if anywhere.

        Read from the ledger alone, not through the events' key: the audit asks
        where an event that is not at its ledger position belongs. No index has
        the pair (migration 0010): a pass over the ledger, run only once
        verification has found a broken entry."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT position FROM {LEDGER_TABLE} WHERE programme_id = ? AND version = ?",
                [programme_id.hex, version],
            )
            row = c.fetchone()
            return row["position"] if row else None

    @staticmethod
    def _ledger_window(c: SQLiteCursor, first: int, last: int) -> list[dict[str, Any]]:
        c.execute(
            "SELECT position, programme_id, version, event_id, clinic_id, event_type, "
            f"recorded_at, chain_hash FROM {LEDGER_TABLE} "
            "WHERE position BETWEEN ? AND ? ORDER BY position",
            [first, last],
        )
        return [
            {
                "position": row["position"],
                "programme_id": _to_uuid(row["programme_id"]),
                "version": row["version"],
                "event_id": _to_uuid(row["event_id"]),
                "clinic_id": row["clinic_id"],
                "event_type": row["event_type"],
                "recorded_at": _to_datetime(row["recorded_at"]),
                "chain_hash": row["chain_hash"],
            }
            for row in c.fetchall()
        ]
