"""Reads of the stores where we step around the library: they answer as the
library's own would."""

from __future__ import annotations

import itertools
import uuid

from eventsourcing.persistence import StoredEvent

from domain.ledger import LedgerEntry
from tests.stores import programmes_at


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
