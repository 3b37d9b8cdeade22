"""Reads of the stores where we step around the library: they answer as the
library's own would."""

from __future__ import annotations

import itertools
import uuid
from contextlib import closing

from eventsourcing.persistence import StoredEvent

from domain.ledger import LedgerEntry
from tests.stores import initialise, programmes_at


def test_a_programme_s_events_are_selected_as_the_library_selects_them(store_url):
    app = programmes_at(store_url)
    try:
        recorder = app.recorder
        library = next(cls for cls in type(recorder).__mro__
                       if cls.__module__.startswith("eventsourcing.")
                       and "select_events" in vars(cls))
        programme_id = uuid.uuid4()
        events = [StoredEvent(originator_id=programme_id, originator_version=version,
                              topic="tests:Event", state=b'{"v": %d}' % version)
                  for version in range(1, 8)]
        recorder.insert_events(events, ledger=[
            LedgerEntry(uuid.uuid4(), "clinic-a", "Event", None) for _ in events])
        for gt, lte, desc, limit in itertools.product((None, 0, 3), (None, 5, 7), (False, True),
                                                      (None, 1, 4)):
            ours = recorder.select_events(programme_id, gt=gt, lte=lte, desc=desc, limit=limit)
            theirs = library.select_events(recorder, programme_id, gt=gt, lte=lte, desc=desc,
                                           limit=limit)
            assert ours == theirs, (gt, lte, desc, limit)
        assert recorder.select_events(uuid.uuid4()) == []
    finally:
        app.close()


def test_entries_are_found_by_event_id_in_their_clinic_only(store_url):
    app = programmes_at(store_url)
    try:
        recorder = app.recorder
        ids = [uuid.uuid4() for _ in range(6)]
        for index, event_id in enumerate(ids):
            recorder.insert_events(
                [StoredEvent(originator_id=uuid.uuid4(), originator_version=1,
                             topic="tests:Event", state=b"{}")],
                ledger=[LedgerEntry(event_id, "clinic-a" if index % 2 else "clinic-b",
                                    "Event", None)])
        asked = [*reversed(ids), uuid.uuid4()]
        found = recorder.entries_by_event_id("clinic-a", asked)
        assert [entry.event_id for entry in found] == ids[1::2]  # in position order
        assert [entry.position for entry in found] == sorted(e.position for e in found)
        assert {entry.event_id for entry in recorder.entries_by_event_id(None, asked)} == set(ids)
        assert recorder.entries_by_event_id("clinic-c", asked) == []
    finally:
        app.close()


def test_sqlite_looks_up_event_ids_by_their_index_not_the_clinic_s_entries(sqlite_url):
    """Read through a clinic's index ((clinic_id, clinic_position); (clinic_id,
    position) before migration 0009), the idempotency check of every bulk chunk
    would read all of the clinic's entries."""
    import sqlite3

    from service.storage.sqlite import entries_by_event_id_query

    initialise(sqlite_url)
    where, params = entries_by_event_id_query("clinic-a", [uuid.uuid4() for _ in range(50)])
    path = sqlite_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as conn:
        plan = " ".join(row[3] for row in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM event_ledger WHERE {where} ORDER BY position",
            params))
    assert "event_id=?" in plan and "SCAN" not in plan, plan
    assert "event_ledger_clinic_position_idx" not in plan, plan
