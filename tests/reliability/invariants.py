"""What must hold of the stored log after any amount of crashing and racing,
read from the store directly (not through the service under test):

- positions run 1..N with no gap, in the ledger and in the events table alike,
  and both name the same (programme, version) at each position;
- every programme's versions run 1..k with no gap;
- every event_id is stored once;
- every clinic's own count of its events (the positions its tokens are
  shown) runs 1..n with no gap, in log order;
- every receipt a client was given (201, or 200 for a replay) is in the
  store exactly as the receipt says: same programme, version and position
  (the clinic's count: receipts go to writers, whose tokens are one clinic's);
- nothing is stored that no client sent.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from tests.stores import programmes_at, settings_for


@dataclass(frozen=True)
class StoredEvent:
    position: int
    programme_id: str
    version: int
    event_id: str
    event_type: str
    clinic_id: str = ""
    clinic_position: int = 0


@dataclass
class StoredLog:
    ledger: list[StoredEvent]
    #: (position, programme_id, version) from the library's events table.
    events: list[tuple[int, str, int]]

    def by_event_id(self) -> dict[str, StoredEvent]:
        return {e.event_id: e for e in self.ledger}


def _canonical(value: Any) -> str:
    return str(UUID(str(value)))


def read_stored_log(database_url: str) -> StoredLog:
    """The ledger and the events table, whole, in position order, read in one
    snapshot (a writer may commit between the two reads)."""
    store = settings_for(database_url).store
    app = programmes_at(database_url)
    try:
        events_table = app.recorder.events_table_name  # type: ignore[attr-defined]
    finally:
        app.close()
    ledger_sql = ("SELECT position, programme_id, version, event_id, event_type, clinic_id, "
                  "clinic_position FROM event_ledger ORDER BY position")
    if store.is_postgres:
        with psycopg.connect(store.conninfo(), autocommit=True,
                             options=f"-c search_path={store.pg_schema}") as conn, \
                conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            ledger_rows = conn.execute(ledger_sql).fetchall()
            event_rows = conn.execute(
                f"SELECT notification_id, originator_id, originator_version FROM {events_table} "
                "ORDER BY notification_id").fetchall()
    else:
        assert store.sqlite_path is not None
        conn = sqlite3.connect(store.sqlite_path, isolation_level=None)
        try:
            conn.execute("BEGIN")  # one read transaction: one snapshot
            ledger_rows = conn.execute(ledger_sql).fetchall()
            event_rows = conn.execute(
                f"SELECT rowid, originator_id, originator_version FROM {events_table} "
                "ORDER BY rowid").fetchall()
            conn.execute("COMMIT")
        finally:
            conn.close()
    return StoredLog(
        ledger=[StoredEvent(int(p), _canonical(pid), int(v), _canonical(eid), str(t), str(c),
                            int(n))
                for p, pid, v, eid, t, c, n in ledger_rows],
        events=[(int(p), _canonical(pid), int(v)) for p, pid, v in event_rows],
    )


def check_log_shape(log: StoredLog) -> None:
    """Gap-free positions, contiguous versions, each event_id once."""
    positions = [e.position for e in log.ledger]
    assert positions == list(range(1, len(positions) + 1)), (
        f"ledger positions are not 1..{len(positions)}: first gap near "
        f"{next((i + 1 for i, p in enumerate(positions) if p != i + 1), None)}")
    assert [p for p, _, _ in log.events] == positions, (
        "the events table's positions differ from the ledger's")
    mismatched = [
        (e.position, (e.programme_id, e.version), (pid, v))
        for e, (_, pid, v) in zip(log.ledger, log.events, strict=True)
        if (e.programme_id, e.version) != (pid, v)
    ]
    assert not mismatched, f"ledger and events table disagree at {mismatched[:5]}"
    doubled = [eid for eid, n in Counter(e.event_id for e in log.ledger).items() if n > 1]
    assert not doubled, f"event ids stored more than once: {doubled[:5]}"
    versions: dict[str, list[int]] = defaultdict(list)
    for e in log.ledger:
        versions[e.programme_id].append(e.version)
    broken = {pid: vs for pid, vs in versions.items() if vs != list(range(1, len(vs) + 1))}
    assert not broken, f"programmes whose versions are not 1..k in log order: {broken}"
    counts: dict[str, list[int]] = defaultdict(list)
    for e in log.ledger:
        counts[e.clinic_id].append(e.clinic_position)
    uneven = {c: ns[:10] for c, ns in counts.items() if ns != list(range(1, len(ns) + 1))}
    assert not uneven, f"clinics whose own counts are not 1..n in log order: {uneven}"


def check_receipts(log: StoredLog, receipts: Iterable[dict[str, Any]]) -> int:
    """Every receipt matches the store; returns how many events they acknowledged."""
    stored = log.by_event_id()
    acknowledged = 0
    for receipt in receipts:
        for item in receipt["recorded"]:
            found = stored.get(_canonical(item["event_id"]))
            assert found is not None, f"acknowledged but not stored: {item}"
            assert (found.programme_id, found.version, found.clinic_position) == (
                _canonical(receipt["programme_id"]), item["version"], item["position"]
            ), f"receipt {item} does not match the store's {found}"
            acknowledged += 1
    return acknowledged


def check_nothing_unsent(log: StoredLog, sent_event_ids: Iterable[str],
                         derived_types: tuple[str, ...] = ("ProgrammePaused",)) -> None:
    """Every stored event was sent by a client (or derived by the aggregate)."""
    sent = {_canonical(e) for e in sent_event_ids}
    phantoms = [e for e in log.ledger
                if e.event_id not in sent and e.event_type not in derived_types]
    assert not phantoms, f"stored events nobody sent: {phantoms[:5]}"
