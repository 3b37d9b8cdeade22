"""What a programme's summary and pain trajectory show, field by field (no database).

Each case records a short history through the real Programme aggregate
(tests/projections/history.py) and projects it in memory; every expected value
is worked out by hand in the comments. Together they pin each field the API
shows, so that a field read from the wrong place, a count that stops
counting, or a rounding that changes is noticed.
"""

from __future__ import annotations

import uuid
from datetime import timedelta, timezone

import pytest

from projections import summaries
from projections.decoding import ProjectedEvent
from projections.engine import Recorded
from projections.summaries import trajectory
from tests.projections.history import BY, NOW, Log, day, project

PLUS_ONE = timezone(timedelta(hours=1))
UUID_OF_NOTHING = uuid.UUID("00000000-0000-4000-8000-000000000000")


def test_every_field_of_a_summary():
    log = Log()
    p = log.programme(per_week=7, baseline=7)  # position 1, day 0 (2026-03-02T09:00Z)
    p.session(1, minutes=30)                   # 2
    p.missed(2)                                # 3
    p.missed(3)                                # 4
    p.pain(4 + 8 / 24, 4)                      # 5: day 4, 08:00 later
    p.adverse(5, "mild")                       # 6
    p.adverse(6, "mild")                       # 7
    p.adjust(7, per_week=14)                   # 8
    p.session(8, minutes=20)                   # 9
    read_models = project(log.records)
    s = read_models.summary(p.id)
    expected = {
        "programme_id": p.id,
        "clinic_id": "clinic-a",
        "patient_ref": "pt-1",
        "condition": "sciatica",
        "setting": "at_home",
        "starting_modality": "inversion",
        "status": "active",
        "outcome": None,
        "started_at": "2026-03-02T09:00:00+00:00",
        "discharged_at": None,
        "last_occurred_at": "2026-03-10T09:00:00+00:00",  # day 8
        "baseline_pain": 7,
        "latest_pain": 4,
        "pain_change": -3,
        "pain_reports": 1,
        "responded": True,           # 4 <= 7 - 2 and 4 <= 0.7 x 7 = 4.9
        "days_to_response": 4.333333,  # 4 days 8 hours, to 6 decimals
        "sessions_completed": 2,
        "sessions_missed": 2,
        "minutes_completed": 50,
        "prescribed_sessions": 9.0,  # 7/week for 7 days + 14/week for 1 day = 7 + 2
        "adherence": 0.222222,       # 2 / 9, to 6 decimals
        "adverse_events": {"mild": 2, "moderate": 0, "severe": 0},
        "corrections": 0,
        "position": 9,               # the programme's last event
        "held_since_position": None,
    }
    assert {key: s[key] for key in expected} == expected
    # The clinic's totals add both mild adverse events of the batch, too.
    assert read_models.dashboard("clinic-a")["adverse_events"] == {
        "mild": 2, "moderate": 0, "severe": 0}
    # A stored state says which layout it has, for the rebuild that a new layout needs.
    assert read_models.state(p.id)["format"] == summaries.STATE_FORMAT


def test_the_trajectory_shows_every_field_of_each_report_and_of_its_correction():
    log = Log()
    p = log.programme(baseline=8)
    full = p.pain(1, 6, odi_percent=40, sleep_quality_nrs=5, context="before_session")
    bare = p.pain(2, 5)
    keys = ("event_id", "occurred_at", "pain_nrs", "odi_percent", "sleep_quality_nrs",
            "context", "responder")

    def shown() -> list[dict]:
        state = project(log.records).state(p.id)
        return [{key: report[key] for key in keys} for report in trajectory(state)]

    # Responders against baseline 8 need pain <= 6 and <= 5.6: 5 is one, 6 is not.
    second = {"event_id": str(bare), "occurred_at": "2026-03-04T09:00:00+00:00",
              "pain_nrs": 5, "odi_percent": None, "sleep_quality_nrs": None,
              "context": None, "responder": True}
    assert shown() == [
        {"event_id": str(full), "occurred_at": "2026-03-03T09:00:00+00:00", "pain_nrs": 6,
         "odi_percent": 40, "sleep_quality_nrs": 5, "context": "before_session",
         "responder": False},
        second,
    ]
    p.correct(full, 3, odi_percent=35, sleep_quality_nrs=7, context="follow_up")
    assert shown() == [
        {"event_id": str(full), "occurred_at": "2026-03-03T09:00:00+00:00", "pain_nrs": 6,
         "odi_percent": 35, "sleep_quality_nrs": 7, "context": "follow_up",
         "responder": False},
        second,
    ]


def test_a_session_corrected_twice_counts_the_minutes_of_the_last_correction():
    log = Log()
    p = log.programme()
    session = p.session(1, minutes=30)
    p.session(2, minutes=10)
    p.correct(session, 3, duration_minutes=45)
    p.correct(session, 4, duration_minutes=40)
    read_models = project(log.records)
    s = read_models.summary(p.id)
    # 40 + 10: the second correction replaces the first, not the original.
    assert (s["minutes_completed"], s["sessions_completed"], s["corrections"]) == (50, 2, 2)
    assert read_models.dashboard("clinic-a")["minutes_completed"] == 50


def test_the_summary_s_position_is_its_programme_s_last_event_in_the_log():
    log = Log()
    quiet = log.programme()   # position 1
    busy = log.programme()    # position 2
    busy.session(1)           # position 3
    busy.pain(2, 5)           # position 4
    read_models = project(log.records)
    assert read_models.summary(quiet.id)["position"] == 1
    assert read_models.summary(busy.id)["position"] == 4


def test_last_occurred_at_keeps_the_first_of_equal_instants_as_the_aggregate_does():
    log = Log()
    p = log.programme()  # day 0, in UTC

    def record(command: str, when, data: dict) -> None:
        getattr(p.aggregate, command)(uuid.uuid4(), when, BY, data, NOW)
        p.collect()

    # The same instant as the start, written in another offset: not later.
    session = {"modality": "inversion", "duration_minutes": 30, "supervised": False}
    record("complete_session", day(0).astimezone(PLUS_ONE), session)
    expected = "2026-03-02T09:00:00+00:00"
    assert project(log.records).summary(p.id)["last_occurred_at"] == expected
    assert p.aggregate.state()["last_occurred_at"] == expected
    # Two later events at one instant, in one batch: the first recorded stays.
    record("complete_session", day(1), session)
    record("report_pain", day(1).astimezone(PLUS_ONE), {"pain_nrs": 5})
    expected = "2026-03-03T09:00:00+00:00"
    assert project(log.records).summary(p.id)["last_occurred_at"] == expected
    assert p.aggregate.state()["last_occurred_at"] == expected


def test_a_programme_held_behind_an_event_it_cannot_apply_says_since_when():
    log = Log()
    p = log.programme()   # position 1
    p.session(1)          # position 2
    log.records.append(Recorded(position=3, programme=p.aggregate.id.int,
                                type="SessionCompleted", event=None, error="not JSON"))
    p.session(2)          # position 4: held behind position 3, not applied
    s = project(log.records).summary(p.id)
    assert (s["held_since_position"], s["sessions_completed"]) == (3, 1)


def test_events_the_projection_cannot_apply_are_refused_with_what_is_wrong():
    log = Log()
    p = log.programme()
    p.session(1)
    start, session = log.records[0], log.records[1]
    state = summaries.apply_event(None, start.type, start.event, 1, {})
    # What each says is what an operator reads about a parked event.
    with pytest.raises(summaries.ProjectionError, match="a second ProgrammeStarted"):
        summaries.apply_event(state, start.type, start.event, 3, {})
    with pytest.raises(summaries.ProjectionError,
                       match="SessionCompleted for a programme this projection has not seen"):
        summaries.apply_event(None, session.type, session.event, 2, {})
    with pytest.raises(summaries.UnknownEventType, match="no rule for events of type Cancelled"):
        summaries.apply_event(state, "Cancelled", session.event, 2, {})
    unknown = ProjectedEvent(uuid.uuid4().hex, day(2), {
        "corrects": str(UUID_OF_NOTHING), "data": {"pain_nrs": 1}, "reason": "typo"})
    with pytest.raises(summaries.ProjectionError,
                       match=f"EntryCorrected of {UUID_OF_NOTHING}, which is not a session"):
        summaries.apply_event(state, "EntryCorrected", unknown, 2, {})
