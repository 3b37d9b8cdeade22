"""A group of saves as the stores screen it (domain.ledger.screen on what they
read under the write lock): the saves and their ids keyed by the ids' hex, each
programme's last version read by one lookup, whatever its length; the outcomes
are what `screen` says of the same saves given the same store contents, and
only the refused saves leave nothing behind."""

from __future__ import annotations

import random
import uuid
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.ledger import EVENT_ID_RECORDED, OVERTAKEN, LedgerEntry, Save, screen
from tests.stores import programmes_at


def stored(programme_id: Any, version: int) -> StoredEvent:
    return StoredEvent(originator_id=programme_id, originator_version=version,
                       topic="tests:Event", state=b'{"n": %d}' % version)


def entry(event_id: uuid.UUID | None = None, clinic_id: str = "clinic-a") -> LedgerEntry:
    return LedgerEntry(event_id or uuid.uuid4(), clinic_id, "Event", None)


def test_a_save_keys_its_ids_by_their_hex_as_given_or_as_text() -> None:
    rng = random.Random(11)
    for _ in range(200):
        programmes = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(rng.randint(1, 3))]
        events, entries, expected = [], [], {}
        for programme_id in programmes:
            as_given = rng.choice([programme_id, str(programme_id), programme_id.hex])
            first = rng.randint(1, 9)
            for version in range(first, first + rng.randint(1, 3)):
                events.append(stored(as_given, version))
                entries.append(entry(uuid.UUID(int=rng.getrandbits(128)),
                                     rng.choice(["clinic-a", "clinic-b"])))
                expected.setdefault(programme_id.hex, []).append(version)
        save = Save(events, entries)
        assert save.versions == expected
        assert save.programme_hexes == [uuid.UUID(str(e.originator_id)).hex for e in events]
        assert save.event_keys == [(e.clinic_id, e.event_id.hex) for e in entries]
        assert save == Save(list(events), list(entries))  # the keys are not compared


def test_the_store_refuses_what_the_screen_refuses(store_url):
    """Programmes with long histories, none, or one another clinic recorded an
    event id of: each save's outcome is the screen's, and only the accepted
    saves' events are stored."""
    app = programmes_at(store_url)
    try:
        recorder = app.recorder
        long, short, taken, other = (uuid.uuid4() for _ in range(4))
        recorded, elsewhere = uuid.uuid4(), uuid.uuid4()
        for version in range(1, 41):
            recorder.insert_events([stored(long, version)], ledger=[entry()])
        recorder.insert_events([stored(short, 1)], ledger=[entry(recorded)])
        recorder.insert_events([stored(taken, 1)], ledger=[entry()])
        recorder.insert_events([stored(other, 1)], ledger=[entry(elsewhere, "clinic-b")])
        new, newer = uuid.uuid4(), uuid.uuid4()
        saves = [
            Save([stored(long, 41), stored(long, 42)], [entry(), entry()]),  # continues
            Save([stored(long, 42)], [entry()]),  # taken by the save before it
            Save([stored(taken, 1)], [entry()]),  # taken before the group
            Save([stored(short.hex, 2)], [entry()]),  # continues, id given as text
            Save([stored(new, 1)], [entry(recorded)]),  # event_id recorded in clinic-a
            Save([stored(newer, 3)], [entry(elsewhere)]),  # clinic-b's id: clinic-a's own
            Save([stored(other, 2)], [entry(elsewhere, "clinic-b")]),  # recorded there
        ]
        expected = screen(saves, {long.hex: 40, short.hex: 1, taken.hex: 1, other.hex: 1},
                          [("clinic-a", recorded.hex), ("clinic-b", elsewhere.hex)])
        assert {index: str(error) for index, error in expected.items()} == {
            1: OVERTAKEN, 2: OVERTAKEN, 4: EVENT_ID_RECORDED, 6: EVENT_ID_RECORDED}
        before = recorder.max_notification_id()
        outcomes = recorder.record_saves(saves)
        assert [isinstance(outcome, IntegrityError) for outcome in outcomes] == [
            index in expected for index in range(len(saves))]
        assert {index: str(outcome) for index, outcome in enumerate(outcomes)
                if isinstance(outcome, IntegrityError)} == {
            index: str(error) for index, error in expected.items()}
        assert [outcome for outcome in outcomes if not isinstance(outcome, IntegrityError)] == [
            [before + 1, before + 2], [before + 3], [before + 4]]
        assert [e.originator_version for e in recorder.select_events(long)][-2:] == [41, 42]
        assert [e.originator_version for e in recorder.select_events(short)] == [1, 2]
        assert [e.originator_version for e in recorder.select_events(taken)] == [1]
        assert [e.originator_version for e in recorder.select_events(newer)] == [3]
        assert recorder.select_events(new) == []
        assert [e.originator_version for e in recorder.select_events(other)] == [1]
    finally:
        app.close()
