"""The application's rules, in memory: `Programmes` with no store at all.

What `Programmes` adds to the aggregate: recording and replaying histories,
idempotent retries (rule 6), `expected_version` (rule 7), all-or-nothing
batches (rule 8), and programme ids that belong to one clinic. Every
expectation here is counted by hand. The aggregate's own rules (1-5) are in
test_programme_rules.py; the stores keep their own tests on SQLite and
PostgreSQL (tests/integration).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from domain import errors
from domain.application import Programmes, Receipt
from domain.ledger import InMemoryLedger
from domain.programme import Programme, derived_event_id
from tests import builders as b

CLINIC = "clinic-a"
OTHER_CLINIC = "clinic-b"
NOW = b.START + timedelta(days=60)  # the server's clock, but in the first test


def application() -> Programmes:
    return Programmes(clock=lambda: NOW)


def post(app: Programmes, programme_id: uuid.UUID, *posted: dict[str, Any],
         clinic: str = CLINIC, expected_version: int | None = None) -> Receipt:
    """Record the posted envelopes (JSON, as the builders make them) as one post."""
    return app.record_events(clinic, programme_id, b.event_envelopes(*posted),
                             expected_version=expected_version)


def started(app: Programmes) -> uuid.UUID:
    """A new programme of CLINIC, at version 1."""
    programme_id = uuid.uuid4()
    post(app, programme_id, b.started())
    return programme_id


def ledger_of(app: Programmes) -> InMemoryLedger:
    assert isinstance(app.ledger, InMemoryLedger)
    return app.ledger


def recorded_count(app: Programmes) -> int:
    """How many events the application has recorded, of every programme."""
    return ledger_of(app).max_notification_id() or 0


# ---- recording and replaying, in memory ---------------------------------------


def test_with_no_arguments_it_records_and_replays_a_programme_in_memory():
    app = Programmes()  # no settings, no database, the server's real clock
    assert isinstance(app.ledger, InMemoryLedger)
    programme_id = uuid.uuid4()
    start, session, report = b.started(), b.session(1), b.pain(5, 2)
    severe, resume = b.adverse("severe", 3), b.resumed(4)
    fix = b.corrected(session, 5, duration_minutes=45)
    discharge = b.discharged(30)
    posts = [[start], [session, report], [severe], [resume, fix], [discharge]]

    receipts = [post(app, programme_id, *batch) for batch in posts]

    pause_id = str(derived_event_id(uuid.UUID(severe["event_id"]), "pause"))
    event_ids = [start["event_id"], session["event_id"], report["event_id"],
                 severe["event_id"], pause_id, resume["event_id"], fix["event_id"],
                 discharge["event_id"]]
    types = ["ProgrammeStarted", "SessionCompleted", "PainReported", "AdverseEventReported",
             "ProgrammePaused", "ProgrammeResumed", "EntryCorrected", "ProgrammeDischarged"]
    assert [r.version for r in receipts] == [1, 3, 5, 7, 8]
    assert [r.replayed for r in receipts] == [False] * 5
    assert [item for r in receipts for item in r.recorded] == [
        {"event_id": event_id, "type": type_, "version": n, "position": n}
        for n, (event_id, type_) in enumerate(zip(event_ids, types, strict=True), start=1)
    ]

    # The same commands run on the aggregate itself, state noted after each.
    now = datetime.now(UTC)
    envelopes = b.event_envelopes(*[e for batch in posts for e in batch])
    first = envelopes[0]
    aggregate = Programme.start(programme_id=programme_id, clinic_id=CLINIC,
                                event_id=first.event_id, occurred_at=first.occurred_at,
                                recorded_by=first.recorded_by, data=first.data, now=now)
    states = {aggregate.version: aggregate.state()}
    for e in envelopes[1:]:
        command = getattr(aggregate, Programme.COMMANDS[e.type])
        command(e.event_id, e.occurred_at, e.recorded_by, e.data, now)
        states[aggregate.version] = aggregate.state()
    assert sorted(states) == [1, 2, 3, 5, 6, 7, 8]  # the severe event made 4 and 5
    assert app.programme(CLINIC, programme_id).state() == aggregate.state()
    for version, state in states.items():
        assert app.programme(CLINIC, programme_id, version=version).state() == state

    # Every version replays; the numbers after each, by hand.
    by_hand = {  # version: (status, sessions, minutes, pain reports, severe, corrections)
        1: ("active", 0, 0, 0, 0, 0),
        2: ("active", 1, 30, 0, 0, 0),
        3: ("active", 1, 30, 1, 0, 0),
        4: ("active", 1, 30, 1, 1, 0),
        5: ("paused", 1, 30, 1, 1, 0),
        6: ("active", 1, 30, 1, 1, 0),
        7: ("active", 1, 45, 1, 1, 1),
        8: ("discharged", 1, 45, 1, 1, 1),
    }
    for version, expected in by_hand.items():
        replayed = app.programme(CLINIC, programme_id, version=version)
        state = replayed.state()
        assert replayed.version == state["version"] == version
        assert (state["status"], state["sessions_completed"], state["minutes_completed"],
                state["pain_reports"], state["adverse_events"]["severe"],
                state["corrections"]) == expected
    assert app.programme(CLINIC, programme_id, version=5).state()["paused_reason"] == (
        "severe_adverse_event")
    with pytest.raises(errors.ProgrammeNotFound, match="no version 9"):
        app.programme(CLINIC, programme_id, version=9)

    # The history: every event in version order, positions 1..8, as posted.
    history = app.history(CLINIC, programme_id)
    assert [h["version"] for h in history] == list(range(1, 9))
    assert [h["position"] for h in history] == list(range(1, 9))
    assert [h["event_id"] for h in history] == event_ids
    assert [h["type"] for h in history] == types
    assert [h["occurred_at"] for h in history] == [
        b.at(d) for d in (0, 1, 2, 3, 3, 4, 5, 30)]
    assert {h["recorded_by"] for h in history} == {b.RECORDED_BY}
    assert history[1]["data"] == session["data"]  # the original stays, with 30 minutes
    assert history[4]["data"] == {"reason": "severe_adverse_event"}
    assert [h["corrected_by"] for h in history] == [
        None, fix["event_id"], None, None, None, None, None, None]
    recorded_at = [datetime.fromisoformat(h["recorded_at"]) for h in history]
    assert recorded_at == sorted(recorded_at)


def test_positions_are_global_and_versions_per_programme():
    app = application()
    a, c = uuid.uuid4(), uuid.uuid4()
    post(app, a, b.started())
    post(app, c, b.started())
    post(app, a, b.session(1), b.session(2))
    post(app, c, b.pain(4, 1))
    assert [(h["version"], h["position"]) for h in app.history(CLINIC, a)] == [
        (1, 1), (2, 3), (3, 4)]
    assert [(h["version"], h["position"]) for h in app.history(CLINIC, c)] == [
        (1, 2), (2, 5)]


def test_reading_an_unknown_programme_is_not_found():
    app = application()
    with pytest.raises(errors.ProgrammeNotFound):
        app.programme(CLINIC, uuid.uuid4())
    with pytest.raises(errors.ProgrammeNotFound):
        app.history(CLINIC, uuid.uuid4())


def test_as_of_replays_the_programme_as_the_service_knew_it_then():
    app = application()
    programme_id = uuid.uuid4()
    before_start = datetime.now(UTC) - timedelta(microseconds=1)
    post(app, programme_id, b.started())
    time.sleep(0.001)  # so that the three posts have three record times
    post(app, programme_id, b.session(1), b.pain(4, 2))
    time.sleep(0.001)
    post(app, programme_id, b.missed(3))
    history = app.history(CLINIC, programme_id)
    # Record times, not occurred_at: what had been recorded by then.
    after_first_post = datetime.fromisoformat(history[0]["recorded_at"])
    after_second_post = datetime.fromisoformat(history[2]["recorded_at"])
    assert app.programme(CLINIC, programme_id, as_of=after_first_post).version == 1
    assert app.programme(CLINIC, programme_id, as_of=after_second_post).version == 3
    assert app.programme(CLINIC, programme_id, as_of=datetime.now(UTC)).version == 4
    # With a version too: the earlier of the two.
    assert app.programme(CLINIC, programme_id, version=2,
                         as_of=after_second_post).version == 2
    assert app.programme(CLINIC, programme_id, version=4,
                         as_of=after_first_post).version == 1
    with pytest.raises(errors.NotYetRecorded, match="first event was recorded at") as early:
        app.programme(CLINIC, programme_id, as_of=before_start)
    assert (early.value.first_recorded_at, early.value.current_version) == (after_first_post, 4)
    with pytest.raises(errors.VersionNotRecorded, match="no version 5 .it is at version 4."):
        app.programme(CLINIC, programme_id, version=5)
    # Another clinic learns nothing of what exists: a plain "not found".
    for question in ({"as_of": datetime.now(UTC)}, {"as_of": before_start}, {"version": 5}):
        with pytest.raises(errors.ProgrammeNotFound) as refused:
            app.programme(OTHER_CLINIC, programme_id, **question)
        assert type(refused.value) is errors.ProgrammeNotFound


# ---- rule 6: an event_id is recorded once --------------------------------------


def test_an_identical_retry_replays_the_original_receipt_and_records_nothing():
    app = application()
    programme_id = started(app)
    batch = [b.session(1), b.pain(4, 2)]
    original = post(app, programme_id, *batch)
    history = app.history(CLINIC, programme_id)

    retry = post(app, programme_id, *batch)

    assert original.replayed is False
    assert retry.replayed is True
    assert retry == dataclasses.replace(original, replayed=True)
    assert retry.body() == original.body() == {
        "programme_id": str(programme_id), "clinic_id": CLINIC, "version": 3,
        "recorded": [
            {"event_id": batch[0]["event_id"], "type": "SessionCompleted",
             "version": 2, "position": 2},
            {"event_id": batch[1]["event_id"], "type": "PainReported",
             "version": 3, "position": 3},
        ],
    }
    assert app.history(CLINIC, programme_id) == history
    assert app.programme(CLINIC, programme_id).version == 3
    assert recorded_count(app) == 3


def test_a_retry_after_later_posts_replays_the_receipt_as_it_was():
    app = application()
    programme_id = started(app)
    report = b.pain(4, 2)
    original = post(app, programme_id, report)
    post(app, programme_id, b.session(3))
    retry = post(app, programme_id, report)
    assert retry == dataclasses.replace(original, replayed=True)
    assert retry.version == 2  # the version that post left, not the programme's now
    assert app.programme(CLINIC, programme_id).version == 3


def test_an_identical_retry_wins_over_the_refusal_it_would_meet_now():
    # A retry of a discharge is a replay, not "programme discharged"; a retry
    # with the expected_version of the original post is a replay, not a conflict.
    app = application()
    programme_id = started(app)
    discharge = b.discharged(5)
    original = post(app, programme_id, discharge, expected_version=1)
    retry = post(app, programme_id, discharge, expected_version=1)
    assert retry == dataclasses.replace(original, replayed=True)
    assert app.programme(CLINIC, programme_id).version == 2


def test_a_retry_of_a_severe_adverse_event_replays_the_automatic_pause_too():
    app = application()
    programme_id = started(app)
    severe = b.adverse("severe", 2)
    original = post(app, programme_id, severe)
    pause_id = str(derived_event_id(uuid.UUID(severe["event_id"]), "pause"))
    assert original.recorded == [
        {"event_id": severe["event_id"], "type": "AdverseEventReported",
         "version": 2, "position": 2},
        {"event_id": pause_id, "type": "ProgrammePaused", "version": 3, "position": 3},
    ]
    assert original.version == 3

    retry = post(app, programme_id, severe)

    assert retry == dataclasses.replace(original, replayed=True)
    assert app.programme(CLINIC, programme_id).version == 3
    assert app.programme(CLINIC, programme_id).state()["adverse_events"]["severe"] == 1
    assert recorded_count(app) == 3


@pytest.mark.parametrize(
    "change",
    [
        {"data": b.pain_data(5)},
        {"occurred_at": b.at(3)},
        {"recorded_by": "physio.ben"},
        {"type": "SessionMissed", "data": b.missed_data()},
    ],
    ids=["data", "occurred_at", "recorded_by", "type"],
)
def test_the_same_event_id_with_other_content_is_a_conflict(change):
    app = application()
    programme_id = started(app)
    report = b.pain(4, 2)
    post(app, programme_id, report)
    history = app.history(CLINIC, programme_id)

    with pytest.raises(errors.EventIdConflict) as caught:
        post(app, programme_id, {**report, **change})

    assert caught.value.event_ids == [report["event_id"]]
    assert report["event_id"] in caught.value.detail
    assert app.history(CLINIC, programme_id) == history
    assert recorded_count(app) == 2


def test_the_same_occurred_at_at_another_offset_is_the_same_content():
    app = application()
    programme_id = started(app)
    report = b.pain(4, 2)
    original = post(app, programme_id, report)
    elsewhere = b.moment(2).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert elsewhere != report["occurred_at"]
    retry = post(app, programme_id, {**report, "occurred_at": elsewhere})
    assert retry == dataclasses.replace(original, replayed=True)


def test_the_same_event_id_on_another_programme_is_a_conflict():
    app = application()
    first, second = started(app), started(app)
    report = b.pain(4, 2)
    post(app, first, report)
    with pytest.raises(errors.EventIdConflict) as caught:
        post(app, second, report)
    assert caught.value.event_ids == [report["event_id"]]
    assert app.programme(CLINIC, second).version == 1
    assert recorded_count(app) == 3


def test_a_batch_recorded_in_part_is_a_conflict_naming_the_new_events():
    app = application()
    programme_id = started(app)
    old = b.pain(4, 2)
    post(app, programme_id, old)
    new = [b.session(3), b.session(4)]

    with pytest.raises(errors.EventIdConflict) as caught:
        post(app, programme_id, old, *new)

    assert caught.value.event_ids == [old["event_id"]]  # the ones recorded before
    for event in new:
        assert event["event_id"] in caught.value.detail
    assert app.programme(CLINIC, programme_id).version == 2
    assert recorded_count(app) == 2
    # Posting only the new events, as the conflict says, records them.
    assert post(app, programme_id, *new).version == 4


# ---- rule 7: expected_version --------------------------------------------------


@pytest.mark.parametrize("expected", [0, 2, 7])
def test_an_expected_version_that_differs_is_a_conflict_and_records_nothing(expected):
    app = application()
    programme_id = started(app)
    history = app.history(CLINIC, programme_id)

    with pytest.raises(errors.VersionConflict) as caught:
        post(app, programme_id, b.session(1), expected_version=expected)

    assert (caught.value.expected, caught.value.actual) == (expected, 1)
    assert app.history(CLINIC, programme_id) == history
    assert recorded_count(app) == 1
    assert post(app, programme_id, b.session(1), expected_version=1).version == 2


def test_a_new_programme_is_at_version_zero():
    app = application()
    programme_id = uuid.uuid4()
    with pytest.raises(errors.VersionConflict) as caught:
        post(app, programme_id, b.started(), expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (1, 0)
    with pytest.raises(errors.ProgrammeNotFound):
        app.programme(CLINIC, programme_id)
    assert recorded_count(app) == 0

    assert post(app, programme_id, b.started(), expected_version=0).version == 1


# ---- rule 8: a batch is recorded whole or not at all ---------------------------


@pytest.mark.parametrize("refused_at", [0, 1, 2])
def test_a_batch_with_one_refused_event_records_nothing(refused_at):
    app = application()
    programme_id = started(app)
    before = app.programme(CLINIC, programme_id).state()
    history = app.history(CLINIC, programme_id)
    batch = [b.session(1), b.session(3)]
    batch.insert(refused_at, b.resumed(2))  # not paused: rule 3 refuses it

    with pytest.raises(errors.ProgrammeNotPaused) as caught:
        post(app, programme_id, *batch)

    assert caught.value.rule == "programme_not_paused"
    assert caught.value.event_index == refused_at
    assert caught.value.event_id == batch[refused_at]["event_id"]
    assert app.programme(CLINIC, programme_id).version == 1
    assert app.programme(CLINIC, programme_id).state() == before
    assert app.history(CLINIC, programme_id) == history
    assert recorded_count(app) == 1
    # The accepted events of the refused batch were not kept anywhere either.
    accepted = [e for i, e in enumerate(batch) if i != refused_at]
    receipt = post(app, programme_id, *accepted)
    assert [r["version"] for r in receipt.recorded] == [2, 3]
    assert app.programme(CLINIC, programme_id).state()["sessions_completed"] == 2


# ---- a programme id belongs to one clinic --------------------------------------


def test_another_clinics_programme_is_not_found_on_read_and_on_write():
    app = application()
    programme_id = started(app)
    history = app.history(CLINIC, programme_id)

    with pytest.raises(errors.ProgrammeNotFound):
        app.programme(OTHER_CLINIC, programme_id)
    with pytest.raises(errors.ProgrammeNotFound):
        app.programme(OTHER_CLINIC, programme_id, version=1)
    with pytest.raises(errors.ProgrammeNotFound):
        app.history(OTHER_CLINIC, programme_id)
    with pytest.raises(errors.ProgrammeNotFound):
        post(app, programme_id, b.session(1), clinic=OTHER_CLINIC)
    # Answered as for a programme with no events (version 0), never with its version.
    with pytest.raises(errors.VersionConflict) as caught:
        post(app, programme_id, b.session(1), clinic=OTHER_CLINIC, expected_version=1)
    assert caught.value.actual == 0

    assert app.history(CLINIC, programme_id) == history
    assert recorded_count(app) == 1


def test_two_clinics_each_keep_their_own_programme_under_the_same_programme_id():
    # Programme ids are the clinic's own: B starting a programme with A's id is
    # answered as for a fresh id, and neither sees the other's.
    app = application()
    programme_id = started(app)
    fresh = uuid.uuid4()
    other = post(app, programme_id, b.started(), clinic=OTHER_CLINIC)
    on_fresh = post(app, fresh, b.started(), clinic=OTHER_CLINIC)
    assert (other.programme_id, other.clinic_id, other.version, other.replayed) == (
        programme_id, OTHER_CLINIC, 1, False)
    assert [r["version"] for r in other.recorded] == [r["version"] for r in on_fresh.recorded]

    post(app, programme_id, b.session(1), clinic=OTHER_CLINIC)
    post(app, programme_id, b.session(1), b.session(2))
    assert app.programme(CLINIC, programme_id).version == 3
    assert app.programme(OTHER_CLINIC, programme_id).version == 2
    assert app.programme(CLINIC, programme_id).state()["clinic_id"] == CLINIC
    assert {e["event_id"] for e in app.history(CLINIC, programme_id)}.isdisjoint(
        e["event_id"] for e in app.history(OTHER_CLINIC, programme_id))
    # Stored apart, and each answered with the clinic's own id.
    stored = app.require_own(OTHER_CLINIC, programme_id)
    assert stored != programme_id and app.require_own(CLINIC, programme_id) == programme_id
    assert app.clinic_programme_id(stored) == programme_id
    assert recorded_count(app) == 6


def test_another_clinic_reposting_a_recorded_event_records_its_own():
    # Event ids are each clinic's own idempotency keys: the same envelope from
    # another clinic is recorded as new (a replayed receipt, or a conflict,
    # would tell that clinic the id is in use), exactly as a fresh event_id.
    app = application()
    programme_id = uuid.uuid4()
    start = b.started()
    first = post(app, programme_id, start)
    theirs = post(app, uuid.uuid4(), start, clinic=OTHER_CLINIC)
    assert not theirs.replayed and theirs.clinic_id == OTHER_CLINIC
    assert theirs.recorded[0]["event_id"] == start["event_id"]
    assert recorded_count(app) == 2
    # Each clinic's retry still replays its own receipt, and other content is a conflict.
    assert post(app, programme_id, start) == dataclasses.replace(first, replayed=True)
    assert post(app, theirs.programme_id, start, clinic=OTHER_CLINIC).replayed
    with pytest.raises(errors.EventIdConflict):
        post(app, programme_id, {**start, "recorded_by": "someone else"})
    assert recorded_count(app) == 2


# ---- receipt listeners ---------------------------------------------------------


def test_receipt_listeners_hear_each_receipt_once_and_no_refusal():
    app = application()
    heard: list[Receipt] = []
    app.receipt_listeners.append(heard.append)
    programme_id = uuid.uuid4()
    start = b.started()

    first = post(app, programme_id, start)
    second = post(app, programme_id, b.session(1), b.pain(4, 2))
    replayed = post(app, programme_id, start)
    with pytest.raises(errors.ProgrammeNotPaused):
        post(app, programme_id, b.resumed(3))
    with pytest.raises(errors.VersionConflict):
        post(app, programme_id, b.session(4), expected_version=1)

    assert len(heard) == 3
    assert heard[0] is first and heard[1] is second and heard[2] is replayed
    assert [r.replayed for r in heard] == [False, False, True]
