"""SQLite reads a programme's ledger rows by position, found in the events' key.

Since migration 0010 the SQLite ledger has no index on (programme_id,
version): that pair is the events' primary key, and each event's rowid is its
ledger position. Read any other way, a programme's rows would be a pass over
the whole ledger: these check each read's plan, as SQLite runs the very
statements the recorder sends, and what the reads answer.
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta

from tests import builders as b
from tests.stores import initialise, programmes_at


def plan(path: str, statement: str) -> str:
    with closing(sqlite3.connect(path)) as conn:
        return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement))


def test_a_programme_s_reads_find_its_rows_by_position_never_by_a_pass_over_the_ledger(
        sqlite_url, sqlite_statements):
    initialise(sqlite_url)
    app = programmes_at(sqlite_url)
    try:
        recorder = app.recorder
        programmes = [uuid.uuid4() for _ in range(4)]
        for days in (0, 1, 2):  # interleaved: a programme's positions are not a run
            for index, programme_id in enumerate(programmes):
                app.record_events("clinic-a" if index % 2 else "clinic-b", programme_id,
                                  b.event_envelopes(b.started() if days == 0
                                                    else b.session(days)))
        one = programmes[1]
        sqlite_statements.clear()
        entries = recorder.entries_of_programme(one)
        owners = recorder.owners([one, programmes[2], uuid.uuid4()])
        later = datetime.now(UTC) + timedelta(days=1)
        as_of = recorder.version_as_of(one, later)
        before = recorder.version_as_of(one, later - timedelta(days=2))
        history = recorder.history(one, app.mapper)
    finally:
        app.close()

    assert [(e.programme_id, e.version, e.position) for e in entries] == [
        (one, 1, 2), (one, 2, 6), (one, 3, 10)]
    assert owners == {one: "clinic-a", programmes[2]: "clinic-b"}
    assert (as_of, before) == (3, None)
    assert [(h.version, h.position) for h in history] == [(1, 2), (2, 6), (3, 10)]

    path = sqlite_url.removeprefix("sqlite:///")
    reads = [s for s in sqlite_statements if s.lstrip().upper().startswith("SELECT")
             and "event_ledger" in s]
    assert len(reads) == 5, sqlite_statements
    for statement in reads:
        found = plan(path, statement)
        assert "SCAN" not in found, (statement, found)
        assert "USING INTEGER PRIMARY KEY" in found, (statement, found)
        assert "sqlite_autoindex_stored_events_1" in found, (statement, found)
