"""The SQLite recorder: the library's, plus the ledger table.

SQLite serializes writers, and a rowid is one more than the largest before
it, so the library's notification id (the rowid) is already gap-free and in
commit order: it is the event's global position.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from domain.ledger import HistoryEntry, RecordedEntry
from service.storage import chain
from service.storage.group_commit import GroupCommit
from service.storage.ledger import LEDGER_COLUMNS, ledger_rows, recorded_entry
from service.storage.sqlite_lock import write_lock
from service.storage.stored import HistoryRow, history_entries

LEDGER_TABLE = "event_ledger"


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


class SerializedWrites:
    """Take the file's write lock around each transaction that inserts events."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        with write_lock(self.datastore.pool.db_name).held():  # type: ignore[attr-defined]
            return super().insert_events(stored_events, **kwargs)  # type: ignore[misc]


class LedgerSQLiteRecorder(GroupCommit, SerializedWrites, SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ("
            "position INTEGER PRIMARY KEY, "
            "programme_id TEXT NOT NULL, "
            "version INTEGER NOT NULL, "
            "event_id TEXT NOT NULL UNIQUE, "
            "clinic_id TEXT NOT NULL, "
            "event_type TEXT NOT NULL, "
            "recorded_at TEXT NOT NULL, "
            "content_digest TEXT, "
            "saved_version INTEGER NOT NULL, "
            "chain_hash TEXT NOT NULL, "
            "UNIQUE (programme_id, version))",
            f"CREATE INDEX IF NOT EXISTS {LEDGER_TABLE}_clinic_idx "
            f"ON {LEDGER_TABLE} (clinic_id, position)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # The first INSERT takes SQLite's write lock, so the ledger head read
        # below cannot change until this transaction ends.
        positions = super()._insert_events(c, stored_events, **kwargs)
        if not stored_events:
            return positions
        assert positions is not None
        c.execute(
            f"SELECT chain_hash, recorded_at FROM {LEDGER_TABLE} "
            "ORDER BY position DESC LIMIT 1"
        )
        head = c.fetchone()
        rows = ledger_rows(
            stored_events,
            kwargs.get("ledger"),
            first_position=positions[0],
            previous_hash=head["chain_hash"] if head else chain.GENESIS,
            previous_recorded_at=_to_datetime(head["recorded_at"]) if head else None,
        )
        if [r["position"] for r in rows] != list(positions):
            raise AssertionError("SQLite rowids are not contiguous")
        c.executemany(
            f"INSERT INTO {LEDGER_TABLE} ({', '.join(LEDGER_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(LEDGER_COLUMNS))})",
            [
                (
                    r["position"], r["programme_id"].hex, r["version"], r["event_id"].hex,
                    r["clinic_id"], r["event_type"], _iso(r["recorded_at"]),
                    r["content_digest"], r["saved_version"], r["chain_hash"],
                )
                for r in rows
            ],
        )
        return positions

    # ---- the Ledger port of domain.ledger ----------------------------------

    def _select_entries(self, where: str, params: Sequence[Any]) -> list[RecordedEntry]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM {LEDGER_TABLE} WHERE {where} ORDER BY position", params)
            return [
                recorded_entry(row, to_uuid=_to_uuid, to_datetime=_to_datetime)
                for row in c.fetchall()
            ]

    def entries_by_event_id(self, event_ids: Sequence[UUID]) -> list[RecordedEntry]:
        if not event_ids:
            return []
        marks = ",".join("?" * len(event_ids))
        return self._select_entries(f"event_id IN ({marks})", [e.hex for e in event_ids])

    def entries_of_programme(self, programme_id: UUID) -> list[RecordedEntry]:
        return self._select_entries("programme_id = ?", [programme_id.hex])

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
                f"l.clinic_id FROM {self.events_table_name} e LEFT JOIN {LEDGER_TABLE} l "
                "ON l.programme_id = e.originator_id AND l.version = e.originator_version "
                "WHERE e.originator_id = ? ORDER BY e.originator_version",
                [programme_id.hex],
            )
            rows = [HistoryRow(row[0], row[1], row[2], row[3], _iso_text(row[4]), row[5])
                    for row in c.fetchall()]
        return history_entries(mapper, rows)

    def version_as_of(self, programme_id: UUID, as_of: datetime) -> int | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT MAX(version) FROM {LEDGER_TABLE} "
                "WHERE programme_id = ? AND recorded_at <= ?",
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
        """Where the ledger records this version of this programme, if anywhere."""
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
