"""A retry that reaches the process that recorded the original is answered from
its receipt, with no statement; every other retry is answered by the store, as
before (domain/recent_receipts.py)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from domain import errors
from domain.application import Receipt
from domain.ledger import LedgerEntry
from domain.recent_receipts import RecentReceipts
from tests import builders as b
from tests.stores import initialise, programmes_at

CLINIC = "clinic-a"


def store_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if "event_ledger" in s or "stored_events" in s]


def test_an_exact_retry_is_answered_from_memory_as_the_store_answers_it(
        sqlite_url, sqlite_statements):
    initialise(sqlite_url)
    app = programmes_at(sqlite_url)
    other_process = programmes_at(sqlite_url)
    try:
        programme_id = uuid.uuid4()
        app.record_events(CLINIC, programme_id, b.event_envelopes(b.started()))
        raw = [b.session(1), b.session(2)]
        posted = b.event_envelopes(*raw)
        original = app.record_events(CLINIC, programme_id, posted)
        assert not original.replayed and len(original.recorded) == 2

        sqlite_statements.clear()
        again = app.record_events(CLINIC, programme_id, b.event_envelopes(*raw))  # as sent again
        assert store_reads(sqlite_statements) == []
        assert again == dataclasses.replace(original, replayed=True)
        # The store's answer, from a process that did not record it.
        assert other_process.record_events(CLINIC, programme_id, posted) == again
        assert store_reads(sqlite_statements) != []
        # One event of the save: the save's receipt, as the store answers it.
        assert app.record_events(CLINIC, programme_id, posted[1:]) == again
    finally:
        app.close()
        other_process.close()


def test_what_is_not_an_exact_retry_is_answered_by_the_store_as_before(sqlite_url):
    initialise(sqlite_url)
    app = programmes_at(sqlite_url)
    try:
        programme_id, other_programme = uuid.uuid4(), uuid.uuid4()
        app.record_events(CLINIC, programme_id, b.event_envelopes(b.started()))
        app.record_events(CLINIC, other_programme, b.event_envelopes(b.started()))
        session = b.session(1)
        app.record_events(CLINIC, programme_id, b.event_envelopes(session))

        changed = {**session, "data": {**session["data"], "duration_minutes": 44}}
        with pytest.raises(errors.EventIdConflict):
            app.record_events(CLINIC, programme_id, b.event_envelopes(changed))
        with pytest.raises(errors.EventIdConflict):  # part recorded, part new
            app.record_events(CLINIC, programme_id, b.event_envelopes(session, b.session(2)))
        with pytest.raises(errors.EventIdConflict):  # the same id, another programme
            app.record_events(CLINIC, other_programme, b.event_envelopes(session))
        # Ids are each clinic's own: another clinic's post of it is new.
        theirs = uuid.uuid4()
        app.record_events("clinic-b", theirs, b.event_envelopes(b.started()))
        recorded = app.record_events("clinic-b", theirs, b.event_envelopes(session))
        assert not recorded.replayed and recorded.clinic_id == "clinic-b"
    finally:
        app.close()


def test_the_receipts_kept_are_bounded_least_recently_recorded_out_first():
    kept = RecentReceipts(kept=3)
    programme_id = uuid.uuid4()
    saves = []
    for version in range(1, 6):
        event_id = uuid.uuid4()
        receipt = Receipt(programme_id, CLINIC, version, [
            {"event_id": str(event_id), "type": "SessionCompleted", "version": version,
             "position": version}], False)
        kept.keep(CLINIC, programme_id,
                  [LedgerEntry(event_id, CLINIC, "SessionCompleted", f"digest-{version}")],
                  receipt)
        saves.append((event_id, version, receipt))
    assert len(kept) == 3

    def envelope(event_id: uuid.UUID):
        return dataclasses.replace(b.event_envelopes(b.session(1))[0], event_id=event_id)

    for event_id, version, receipt in saves:
        answer = kept.replay(CLINIC, programme_id, [envelope(event_id)],
                             lambda _, v=version: f"digest-{v}")
        assert answer == (None if version <= 2 else dataclasses.replace(receipt, replayed=True))
    event_id, version, _ = saves[-1]
    assert kept.replay("clinic-b", programme_id, [envelope(event_id)],
                       lambda _: f"digest-{version}") is None
    assert kept.replay(CLINIC, programme_id, [envelope(event_id)], lambda _: "other") is None
