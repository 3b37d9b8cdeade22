"""PostgreSQL saves single-event saves in the server (migration 0011's
`event_ledger_save_event`), in one round trip: the function must screen as
`domain.ledger.screen` does, number as the two-round-trip path does, and chain
as `service.storage.chain` does, byte for byte, or the audit would report a
store it wrote as broken."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.ledger import EVENT_ID_RECORDED, OVERTAKEN, LedgerEntry, Save, screen
from service.storage import chain, postgres
from service.storage import postgres_direct as direct
from service.storage.stores import parse_database_url
from tests.stores import initialise, programmes_at

pytestmark = pytest.mark.postgres


def stored(programme_id: uuid.UUID, version: int, topic: str = "tests:Event") -> StoredEvent:
    return StoredEvent(originator_id=programme_id, originator_version=version, topic=topic,
                       state=b'{"n": %d, "\\u00e9": "\xc3\xa9"}' % version)


def entry(event_id: uuid.UUID | None = None, clinic_id: str = "clinic-a") -> LedgerEntry:
    return LedgerEntry(event_id or uuid.uuid4(), clinic_id, "Event", None)


def stored_ledger(url: str) -> list[dict[str, Any]]:
    store = parse_database_url(url)
    with psycopg.connect(store.conninfo(), row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            f'SELECT l.*, e.topic, e.state FROM "{store.pg_schema}".event_ledger l '
            f'JOIN "{store.pg_schema}".programmes_events e ON e.notification_id = l.position '
            "ORDER BY l.position").fetchall()


def chained_as_python_chains(rows: list[dict[str, Any]]) -> list[str]:
    """Each row's chain hash as chain.py computes it from what is stored."""
    previous, hashes = chain.GENESIS, []
    for row in rows:
        previous = chain.entry_hash(
            previous, position=row["position"], programme_id=row["programme_id"],
            version=row["version"], topic=row["topic"], state=bytes(row["state"]),
            event_id=row["event_id"], clinic_id=row["clinic_id"],
            recorded_at=row["recorded_at"].astimezone(UTC))
        hashes.append(previous)
    return hashes


@pytest.fixture
def recorder(postgres_url, monkeypatch):
    """The Programmes application's recorder on a fresh store, counting its round
    trips (`direct.results`, which every save statement goes through)."""
    initialise(postgres_url)
    app = programmes_at(postgres_url)
    calls: list[bytes] = []
    real = direct.results

    def counted(conn: Any, query: bytes) -> Any:
        calls.append(query)
        return real(conn, query)

    monkeypatch.setattr(direct, "results", counted)
    app.recorder.round_trips = calls
    try:
        yield app.recorder
    finally:
        app.close()


def test_a_single_event_save_is_one_round_trip(recorder):
    programme = uuid.uuid4()
    del recorder.round_trips[:]
    assert recorder.record_saves([Save([stored(programme, 1)], [entry()])]) == [[1]]
    assert len(recorder.round_trips) == 1
    assert b"event_ledger_save_event" in recorder.round_trips[0]
    # A save of two events still takes the two round trips,
    del recorder.round_trips[:]
    assert recorder.record_saves(
        [Save([stored(programme, 2), stored(programme, 3)], [entry(), entry()])]) == [[2, 3]]
    assert len(recorder.round_trips) == 2
    # and so does a group too large for the server's one call per save (a bulk chunk).
    many = [Save([stored(uuid.uuid4(), 1)], [entry()])
            for _ in range(postgres.SAVES_IN_SERVER_AT_MOST + 1)]
    del recorder.round_trips[:]
    assert recorder.record_saves(many) == [[position] for position in range(4, 4 + len(many))]
    assert len(recorder.round_trips) == 2


def test_the_server_refuses_what_the_screen_refuses(recorder, postgres_url):
    """A group of single-event saves: each outcome is the screen's on the same
    store contents, the accepted ones numbered on from the head, and only they
    leave rows behind."""
    long, taken, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    recorded, elsewhere = uuid.uuid4(), uuid.uuid4()
    for version in range(1, 6):
        recorder.insert_events([stored(long, version)], ledger=[entry()])
    recorder.insert_events([stored(taken, 1)], ledger=[entry(recorded)])
    recorder.insert_events([stored(other, 1)], ledger=[entry(elsewhere, "clinic-b")])
    new, newer, twice = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    saves = [
        Save([stored(long, 6)], [entry()]),  # continues
        Save([stored(long, 6)], [entry()]),  # taken by the save before it
        Save([stored(long, 8)], [entry()]),  # skips a version
        Save([stored(taken, 1)], [entry()]),  # taken before the group
        Save([stored(new, 1)], [entry(recorded)]),  # event_id recorded in clinic-a
        Save([stored(newer, 3)], [entry(elsewhere)]),  # clinic-b's id, any first version
        Save([stored(other, 2)], [entry(elsewhere, "clinic-b")]),  # recorded there
        Save([stored(twice, 1)], [entry(new)]),  # its event_id: once in the group...
        Save([stored(long, 7)], [entry(new)]),  # ...refused the second time
        Save([stored(twice, 2)], [entry()]),  # continues the save two before it
    ]
    expected = screen(saves, {long.hex: 5, taken.hex: 1, other.hex: 1},
                      [("clinic-a", recorded.hex), ("clinic-b", elsewhere.hex)])
    assert {index: str(error) for index, error in expected.items()} == {
        1: OVERTAKEN, 2: OVERTAKEN, 3: OVERTAKEN, 4: EVENT_ID_RECORDED, 6: EVENT_ID_RECORDED,
        8: EVENT_ID_RECORDED}
    head = len(stored_ledger(postgres_url))
    del recorder.round_trips[:]
    outcomes = recorder.record_saves(saves)
    assert len(recorder.round_trips) == 1
    assert {index: str(outcome) for index, outcome in enumerate(outcomes)
            if isinstance(outcome, IntegrityError)} == {
        index: str(error) for index, error in expected.items()}
    accepted = [index for index in range(len(saves)) if index not in expected]
    assert [outcomes[index] for index in accepted] == [
        [head + n] for n in range(1, len(accepted) + 1)]
    rows = stored_ledger(postgres_url)[head:]
    assert [(row["programme_id"], row["version"], row["event_id"]) for row in rows] == [
        (saves[index].stored_events[0].originator_id,
         saves[index].stored_events[0].originator_version, saves[index].ledger[0].event_id)
        for index in accepted]
    # Each clinic's numbers run on from its last, as the two-round-trip path numbers them.
    for clinic_id in ("clinic-a", "clinic-b"):
        numbers = [row["clinic_position"] for row in stored_ledger(postgres_url)
                   if row["clinic_id"] == clinic_id]
        assert numbers == list(range(1, len(numbers) + 1))


def test_the_server_chains_as_chain_py_does(recorder, postgres_url):
    """Byte for byte, on both paths, with text beyond ASCII in the clinic, topic and
    state, and with a record time of whole seconds (isoformat writes no fraction)."""
    programme = uuid.uuid4()
    recorder.record_saves([Save([stored(programme, 1, "tests:Évènement")],
                                [entry(clinic_id="clínica-ü")])])
    recorder.record_saves([Save([stored(programme, 2), stored(programme, 3)],
                                [entry(), entry()])])
    store = parse_database_url(postgres_url)
    with psycopg.connect(store.conninfo(), autocommit=True) as conn:
        # A save made by the function with a whole second for its clock, ahead of
        # the others': the saves after it are recorded at that second too.
        conn.execute(
            f'SELECT * FROM "{store.pg_schema}".event_ledger_save_event(%s, 4, %s, '
            "'clinic-a', 'Event', '2099-01-01T00:00:00+00:00', NULL, 4, 'tests:Event', %s)",
            [programme, uuid.uuid4(), b"{}"])
    recorder.record_saves([Save([stored(programme, 5)], [entry()])])
    rows = stored_ledger(postgres_url)
    assert len(rows) == 5
    assert [row["recorded_at"] for row in rows[3:]] == [
        datetime(2099, 1, 1, tzinfo=UTC)] * 2
    assert [row["chain_hash"] for row in rows] == chained_as_python_chains(rows)
