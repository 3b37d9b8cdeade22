"""The demo's simulated history: deterministic, valid, and as varied as promised."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta

import pytest

from service.demo.simulation import (
    CLINICS,
    DEMO_UNTIL,
    demo_clinics,
    simulate,
    simulate_programme,
)
from service.http.schemas.events import MAX_EVENTS_PER_POST, EventPostSchema
from tests.demo.reading import current_pain_reports, late_events, responded


@pytest.fixture(scope="module")
def history():
    """The default demo (4 clinics x 60 programmes), simulated once for this module."""
    return list(simulate(1, demo_clinics(4), 60))


def envelopes_of(programmes):
    return [[e for e in p.envelopes()] for p in programmes]


def test_the_same_seed_gives_the_same_envelopes():
    first = envelopes_of(simulate(7, demo_clinics(2), 8))
    again = envelopes_of(simulate(7, demo_clinics(2), 8))
    assert first == again
    assert envelopes_of(simulate(8, demo_clinics(2), 8)) != first


def test_a_programme_does_not_depend_on_how_many_are_simulated():
    # So seeding more programmes later adds to the earlier ones, idempotently.
    larger = list(simulate(3, demo_clinics(2), 6))
    assert simulate_programme(3, CLINICS[1], 4) == larger[6 + 4]


def test_every_batch_passes_the_api_validation(history):
    schema = EventPostSchema()
    for programme in history:
        assert programme.batches[0][0]["type"] == "ProgrammeStarted"
        for batch in programme.batches:
            assert 1 <= len(batch) <= MAX_EVENTS_PER_POST
            schema.load({"events": list(batch)})  # raises ValidationError if not


def test_event_ids_are_unique_and_ids_are_uuids(history):
    ids = [e["event_id"] for p in history for e in p.envelopes()]
    assert len(ids) == len(set(ids))
    assert len({p.programme_id for p in history}) == len(history)


def test_everything_happens_between_the_start_and_until(history):
    until = DEMO_UNTIL
    starts = []
    for programme in history:
        envelopes = programme.envelopes()
        start = datetime.fromisoformat(envelopes[0]["occurred_at"])
        starts.append(start)
        for envelope in envelopes:
            moment = datetime.fromisoformat(envelope["occurred_at"])
            assert moment.utcoffset() is not None
            assert start <= moment <= until
    # Programmes start over the previous six months.
    assert min(starts) < until - timedelta(days=150)
    assert max(starts) > until - timedelta(days=30)


def test_until_moves_the_whole_history():
    until = datetime.fromisoformat("2026-06-30T08:00:00+00:00")
    for programme in simulate(2, demo_clinics(3), 10, until=until):
        assert all(datetime.fromisoformat(e["occurred_at"]) <= until
                   for e in programme.envelopes())


def test_clinics_have_plausible_names_and_valid_slugs():
    clinics = demo_clinics(10)
    assert len({c.clinic_id for c in clinics}) == 10
    assert clinics[0].name == "Harbour Spine Clinic"
    assert all(c.clinic_id.replace("-", "").isalnum() and c.clinic_id.islower()
               for c in clinics)


def test_in_office_table_and_at_home_mat_programmes_look_like_the_real_thing(history):
    table_sessions, mat_sessions, settings, mat_plans = [], [], Counter(), []
    for programme in history:
        started = programme.envelopes()[0]["data"]
        settings[started["setting"]] += 1
        if started["plan"]["modality"] == "decompression_mat":
            mat_plans.append(started["plan"]["sessions_per_week"])
        for e in programme.envelopes():
            if e["type"] == "SessionCompleted" and started["setting"] == "in_office":
                if e["data"]["modality"] == "mechanical_table":
                    table_sessions.append(e["data"])
            if e["type"] == "SessionCompleted" and e["data"]["modality"] == "decompression_mat":
                mat_sessions.append(e["data"])
    assert {"in_office", "at_home", "hybrid"} <= set(settings)
    assert all(s["supervised"] for s in table_sessions)
    assert all(20 <= s["force_percent_body_weight"] <= 50 for s in table_sessions)
    assert all(5 <= s["duration_minutes"] <= 40 for s in table_sessions)
    assert not any(s["supervised"] for s in mat_sessions)
    assert Counter(s["duration_minutes"] for s in mat_sessions).most_common(1)[0][0] == 45
    assert max(mat_plans) == 21  # three 45-minute sessions a day


def test_discomfort_is_higher_in_the_first_weeks(history):
    early, late = [], []
    for programme in history:
        envelopes = programme.envelopes()
        start = datetime.fromisoformat(envelopes[0]["occurred_at"])
        for e in envelopes:
            if e["type"] == "SessionCompleted" and "discomfort_nrs" in e["data"]:
                days = (datetime.fromisoformat(e["occurred_at"]) - start).days
                (early if days < 10 else late if days > 28 else []).append(
                    e["data"]["discomfort_nrs"])
    assert statistics.mean(early) > statistics.mean(late) + 1


def test_responders_and_non_responders_by_the_domain_rule(history):
    outcomes = Counter(responded(p.envelopes()) for p in history)
    assert outcomes[True] > 0.3 * len(history)
    assert outcomes[False] > 0.2 * len(history)


def test_discharge_outcomes_match_the_pain_trajectory(history):
    outcomes = Counter()
    for programme in history:
        envelopes = programme.envelopes()
        discharge = [e for e in envelopes if e["type"] == "ProgrammeDischarged"]
        if not discharge:
            continue
        outcome = discharge[0]["data"]["outcome"]
        outcomes[outcome] += 1
        baseline = envelopes[0]["data"]["baseline"]["pain_nrs"]
        reports = current_pain_reports(envelopes)
        if outcome == "goals_met":
            assert responded(envelopes) and reports[-1][1] <= 2
        if outcome == "worsened":
            assert reports[-1][1] > baseline and not responded(envelopes)
        if outcome == "no_change":
            assert not responded(envelopes)
    assert {"goals_met", "improved", "no_change", "worsened", "referred",
            "dropped_out"} <= set(outcomes)


def test_the_history_has_every_kind_of_event_and_late_posts(history):
    types = Counter(e["type"] for p in history for e in p.envelopes())
    severities = Counter(e["data"]["severity"] for p in history for e in p.envelopes()
                         if e["type"] == "AdverseEventReported")
    reasons = Counter(e["data"]["reason"] for p in history for e in p.envelopes()
                      if e["type"] == "SessionMissed")
    assert set(types) == {
        "ProgrammeStarted", "SessionCompleted", "SessionMissed", "PainReported",
        "PlanAdjusted", "AdverseEventReported", "ProgrammePaused", "ProgrammeResumed",
        "ProgrammeDischarged", "EntryCorrected"}
    assert severities["mild"] > severities["moderate"] > 0 and severities["severe"] > 0
    assert set(reasons) == {"pain", "schedule", "equipment", "illness", "other"}
    # Home devices sync late: events older than others already posted.
    assert sum(late_events(p.envelopes()) for p in history) > 100
    # A severe adverse event is the pause (the aggregate records it): never a
    # ProgrammePaused of our own right after it.
    for programme in history:
        envelopes = programme.envelopes()
        for before, after in zip(envelopes, envelopes[1:], strict=False):
            if before["type"] == "AdverseEventReported" and before["data"]["severity"] == "severe":
                assert after["type"] != "ProgrammePaused"
