"""Conflicts in the stores: a save that breaks a unique key fails at once with
IntegrityError (never retried as if the database were down); a save that fails
leaves no trace and no gap; a group's conflicting saves fail alone; and a post
that repeats one in flight in another worker is answered with the original
receipt after at most one failed attempt."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.ledger import EVENT_ID_RECORDED, OVERTAKEN, LedgerEntry, Save, screen
from tests import builders as b
from tests.integration.writers import envelope
from tests.stores import programmes_at

DUPLICATES = 20


def stored(programme_id: uuid.UUID, version: int) -> StoredEvent:
    return StoredEvent(originator_id=programme_id, originator_version=version,
                       topic="tests:Event", state=b'{"n": %d}' % version)


def entry(event_id: uuid.UUID | None = None, clinic_id: Any = "clinic-a") -> LedgerEntry:
    return LedgerEntry(event_id or uuid.uuid4(), clinic_id, "Event", None)


def counting_connections(recorder: Any) -> Callable[[], int]:
    """Count the recorder's checkouts of a connection (one per attempt at a save)."""
    checkouts = Counter()
    checkout = recorder.datastore.get_connection

    def counted(*args: Any, **kwargs: Any) -> Any:
        checkouts["n"] += 1
        return checkout(*args, **kwargs)

    recorder.datastore.get_connection = counted
    return lambda: checkouts["n"]


def test_a_save_breaking_a_unique_key_fails_at_once(store_url):
    """A version already taken, or an event_id already recorded: IntegrityError on
    the first attempt, every time (on PostgreSQL the ledger's own unique keys
    used to surface as the pipeline's OperationalError, retried 10 times)."""
    app = programmes_at(store_url)
    try:
        recorder = app.recorder
        checkouts = counting_connections(recorder)
        for n in range(DUPLICATES):
            programme_id, event_id = uuid.uuid4(), uuid.uuid4()
            recorder.insert_events([stored(programme_id, 1)], ledger=[entry(event_id)])
            before = checkouts()
            with pytest.raises(IntegrityError):
                if n % 2:  # the same version again, under a new event_id
                    recorder.insert_events([stored(programme_id, 1)], ledger=[entry()])
                else:  # the same event_id again, at a new version
                    recorder.insert_events([stored(programme_id, 2)], ledger=[entry(event_id)])
            assert checkouts() - before == 1, "the conflicting save was attempted again"
        assert recorder.max_notification_id() == DUPLICATES
    finally:
        app.close()


def test_an_event_id_is_unique_per_clinic(store_url):
    """Two clinics may record the same event_id (each clinic's ids are its own
    idempotency keys); each finds only its own entry, and the store still refuses
    it twice in one clinic."""
    app = programmes_at(store_url)
    try:
        recorder = app.recorder
        event_id = uuid.uuid4()
        recorder.insert_events([stored(uuid.uuid4(), 1)], ledger=[entry(event_id, "clinic-a")])
        recorder.insert_events([stored(uuid.uuid4(), 1)], ledger=[entry(event_id, "clinic-b")])
        with pytest.raises(IntegrityError):
            recorder.insert_events([stored(uuid.uuid4(), 1)],
                                   ledger=[entry(event_id, "clinic-b")])
        assert [e.clinic_id for e in recorder.entries_by_event_id("clinic-b", [event_id])] == [
            "clinic-b"]
        assert [e.clinic_id for e in recorder.entries_by_event_id(None, [event_id])] == [
            "clinic-a", "clinic-b"]
        assert recorder.max_notification_id() == 2
    finally:
        app.close()


def test_a_failed_save_leaves_no_trace_and_no_gap(store_url):
    """An error raised inside the save's transaction, after the lock and the
    ledger's head are taken, rolls everything back: no ledger row without
    its event, and the next save takes the next position."""
    app = programmes_at(store_url)
    try:
        recorder = app.recorder
        first = uuid.uuid4()
        recorder.insert_events([stored(first, 1)], ledger=[entry()])
        broken = uuid.uuid4()
        with pytest.raises(TypeError):  # a clinic that is no text: the chain cannot hash it
            recorder.insert_events([stored(broken, 1), stored(broken, 2)],
                                   ledger=[entry(), entry(clinic_id=7)])
        assert recorder.select_events(broken) == []
        assert recorder.ledger_position_of(broken, 1) is None
        assert recorder.insert_events([stored(broken, 1)], ledger=[entry()]) == [2]
        assert recorder.chain_extent() == 2
    finally:
        app.close()


def test_the_screen_refuses_exactly_the_saves_that_would_break_a_key_or_a_run():
    one, two, three, four, five, six, seven, eight, nine = (uuid.uuid4() for _ in range(9))
    recorded, repeated, twice = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    saves = [
        Save([stored(one, 4)], [entry()]),  # continues one's 3 versions
        Save([stored(one, 4)], [entry()]),  # version 4 taken by the save before it
        Save([stored(one, 5)], [entry()]),  # made on top of the refused one
        Save([stored(two, 5), stored(two, 6)], [entry(), entry()]),  # new: any first version
        Save([stored(three, 1), stored(three, 3)], [entry(), entry()]),  # not consecutive
        Save([stored(four, 1)], [entry(recorded)]),  # its event_id is recorded
        Save([stored(five, 1)], [entry(repeated)]),
        Save([stored(six, 1)], [entry(repeated)]),  # event_id taken by the save before it
        Save([stored(seven, 1), stored(seven, 2)], [entry(twice), entry(twice)]),  # twice
        # Event ids are unique per clinic: another clinic's same ids are its own.
        Save([stored(eight, 1)], [entry(recorded, "clinic-b")]),
        Save([stored(nine, 1)], [entry(repeated, "clinic-b")]),
    ]
    refused = screen(saves, last_versions={one.hex: 3},
                     recorded_event_keys=[("clinic-a", recorded.hex)])
    assert {index: str(error) for index, error in refused.items()} == {
        1: OVERTAKEN, 2: OVERTAKEN, 4: OVERTAKEN, 5: EVENT_ID_RECORDED, 7: EVENT_ID_RECORDED,
        8: EVENT_ID_RECORDED,
    }


@pytest.mark.slow
def test_the_same_post_in_flight_in_two_workers_is_answered_once_recorded(store_url):
    """Two workers (two applications on one store), four threads each, post the
    same event at the same moment, round after round: one 201, the rest the
    original receipt, none of them after more than one failed save."""
    workers = [programmes_at(store_url) for _ in range(2)]
    threads_per_worker, rounds = 4, 8
    failed_saves: Counter[tuple[int, int]] = Counter()
    attempts = threading.local()

    def count_failures(app: Any) -> None:
        save = app.save

        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                return save(*args, **kwargs)
            except IntegrityError:
                failed_saves[attempts.key] += 1
                raise

        app.save = counted

    for app in workers:
        count_failures(app)
    try:
        programme_id = uuid.uuid4()
        workers[0].record_events("clinic-a", programme_id, [envelope(b.started())])
        events = [envelope(b.session(1 + n / 10)) for n in range(rounds)]
        barrier = threading.Barrier(2 * threads_per_worker)
        receipts: list[list[Any]] = [[] for _ in range(rounds)]

        def post(app: Any, thread: int) -> None:
            for round_, event in enumerate(events):
                attempts.key = (thread, round_)
                barrier.wait()
                receipts[round_].append(app.record_events("clinic-a", programme_id, [event]))

        threads = [threading.Thread(target=post, args=(app, n * threads_per_worker + t))
                   for n, app in enumerate(workers) for t in range(threads_per_worker)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for round_, answered in enumerate(receipts):
            assert len(answered) == 2 * threads_per_worker
            assert sum(not r.replayed for r in answered) == 1, f"round {round_}"
            assert len({(r.version, str(r.recorded)) for r in answered}) == 1, "receipts differ"
        assert max(failed_saves.values(), default=0) <= 1
        history = workers[1].history("clinic-a", programme_id)
        assert [e["version"] for e in history] == list(range(1, rounds + 2))
        assert [e["event_id"] for e in history[1:]] == [str(e.event_id) for e in events]
    finally:
        for app in workers:
            app.close()


def test_what_a_save_writes_reads_back_exactly_and_verifies(store_url):
    """Every kind of value a save carries (quotes, backslashes, every byte in
    an event's state, no content digest) reads back as written, and the chain
    verifies (the PostgreSQL recorder writes values into its statements)."""
    from service.audit.verify import verify_store
    from tests.stores import components_at

    components = components_at(store_url)
    try:
        recorder = components.programmes.recorder
        programme_id = uuid.uuid4()
        odd = [StoredEvent(originator_id=programme_id, originator_version=1,
                           topic="tests:It's \\ an 'event' \"quoted\"", state=bytes(range(256))),
               StoredEvent(originator_id=programme_id, originator_version=2,
                           topic="tests:Event", state=b"\\x00'; DROP TABLE x; --")]
        entries = [LedgerEntry(uuid.uuid4(), "o'brien\\clinic", "It's \\ an 'event' \"quoted\"",
                               "d'ig\\est"),
                   LedgerEntry(uuid.uuid4(), "clinic-a", "Event", None)]
        assert recorder.insert_events(odd, ledger=entries) == [1, 2]
        assert recorder.select_events(programme_id) == odd
        read = recorder.entries_of_programme(programme_id)
        assert [(e.event_id, e.clinic_id, e.event_type, e.content_digest, e.saved_version)
                for e in read] == [(x.event_id, x.clinic_id, x.event_type, x.content_digest, 2)
                                   for x in entries]
        report = verify_store(recorder, components.checkpoints, components.checkpoint_keys, None,
                              write_checkpoint=False, use_checkpoints=False)
        assert report.failure is None and report.events_checked == 2
    finally:
        components.close()


@pytest.mark.slow
def test_two_clinics_starting_one_programme_id_at_once_each_get_their_own(store_url):
    """Clinic A and clinic B, in two workers, start a programme under the same new
    programme_id at the same moment, round after round: both are answered 201 (the
    loser of the race finds the id taken when it saves, and starts its programme
    under its alias), and each clinic's programme holds its own start."""
    workers = [programmes_at(store_url) for _ in range(2)]
    clinics = ["clinic-a", "clinic-b"]
    try:
        for _ in range(10):
            programme_id = uuid.uuid4()
            barrier = threading.Barrier(2)
            receipts: dict[str, Any] = {}

            def start(app: Any, clinic: str, programme_id: uuid.UUID = programme_id,
                      barrier: threading.Barrier = barrier,
                      receipts: dict[str, Any] = receipts) -> None:
                barrier.wait()
                receipts[clinic] = app.record_events(clinic, programme_id,
                                                     [envelope(b.started())])

            threads = [threading.Thread(target=start, args=(app, clinic))
                       for app, clinic in zip(workers, clinics, strict=True)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(receipts) == clinics
            for clinic in clinics:
                receipt = receipts[clinic]
                assert (receipt.programme_id, receipt.version, receipt.replayed) == (
                    programme_id, 1, False)
                for app in workers:
                    history = app.history(clinic, programme_id)
                    assert [e["event_id"] for e in history] == [
                        receipt.recorded[0]["event_id"]]
            stored = {clinic: workers[0].require_own(clinic, programme_id) for clinic in clinics}
            assert programme_id in stored.values() and len(set(stored.values())) == 2
    finally:
        for app in workers:
            app.close()


def test_saves_are_numbered_in_their_clinics_on_from_each_clinic_s_last(store_url):
    """The recorders number a group's rows in each clinic themselves (under the
    write lock, from each clinic's last number): the same numbers as the store
    keeps, 1, 2, 3, ... per clinic in log order, refused saves taking none."""
    app = programmes_at(store_url)
    try:
        recorder = app.recorder
        taken = uuid.uuid4()
        recorder.insert_events([stored(taken, 1)], ledger=[entry(clinic_id="clinic-b")])
        expected: dict[str, list[int]] = {"clinic-a": [], "clinic-b": [1], "clinic-c": []}
        for group in range(3):
            saves, clinics = [], []
            for index in range(5):
                clinic = ("clinic-a", "clinic-b", "clinic-c")[(index + group) % 3]
                programme = taken if index == 2 else uuid.uuid4()  # version 1 is taken
                saves.append(Save([stored(programme, 1), stored(programme, 2)],
                                  [entry(clinic_id=clinic), entry(clinic_id=clinic)]))
                clinics.append(clinic)
            outcomes = recorder.record_saves(saves)
            for clinic, outcome in zip(clinics, outcomes, strict=True):
                if isinstance(outcome, list):
                    expected[clinic] += [len(expected[clinic]) + 1, len(expected[clinic]) + 2]
                    for position in outcome:
                        assert recorder.clinic_numbers.of(clinic, [position]) == {
                            position: recorder.clinic_positions(clinic, [position])[position]}
        window = recorder.ledger_window(1, recorder.chain_extent())
        for clinic, numbers in expected.items():
            positions = [row["position"] for row in window if row["clinic_id"] == clinic]
            stored_numbers = recorder.clinic_positions(clinic, positions)
            assert [stored_numbers[p] for p in positions] == numbers
    finally:
        app.close()
