"""The metrics of docs/metrics.md against hand-computed cases (no database).

Histories are recorded through the real Programme aggregate (tests/projections/
history.py), so every case is one the service would accept; the numbers in
the assertions are worked out by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from projections import intervals, metrics, survival
from projections.metrics import US_PER_DAY
from tests.projections.history import Log, project


def summary_of(log: Log, handle) -> dict:
    return project(log.records).summary(handle.id)


# ---- the formulas ----------------------------------------------------------


@pytest.mark.parametrize("pain, baseline, responds", [
    (4, 7, True),    # 4 <= 5 and 40 <= 49
    (5, 7, False),   # 5 <= 5 but 50 > 49: not 30% below
    (7, 10, True),   # 7 <= 8 and 70 <= 70 exactly (no float rounding)
    (8, 10, False),
    (1, 3, True),    # 1 <= 1 and 10 <= 21
    (2, 3, False),   # 2 > 1: not 2 points below
    (0, 1, False),   # 0 > -1
    (0, 2, True),
])
def test_responder_rule(pain, baseline, responds):
    assert metrics.is_responder(pain, baseline) is responds


def test_prescribed_sessions_sweeps_plans_and_pauses_by_time_then_position():
    d = US_PER_DAY
    # 7/week from day 0; at day 7 the plan goes to 14/week (position 5) and a
    # pause starts at the same moment (position 6); resumed at day 10; span
    # ends at day 14: 7 x 7/7 + 14 x 4/7 = 7 + 8 = 15.
    assert metrics.prescribed_sessions(
        0, 14 * d, [(0, 1, 7), (7 * d, 5, 14)], [(7 * d, 6, 1), (10 * d, 9, 0)]
    ) == pytest.approx(15)
    # Changes after the span's end take effect after it: nothing.
    assert metrics.prescribed_sessions(0, 7 * d, [(0, 1, 7), (9 * d, 2, 35)],
                                       [(8 * d, 3, 1)]) == pytest.approx(7)
    # Two plan changes at one moment: the later recorded one is in force.
    assert metrics.prescribed_sessions(0, 7 * d, [(0, 1, 7), (0, 4, 14), (0, 2, 1)],
                                       []) == pytest.approx(14)


def test_prescribed_sessions_add_up_every_interval_between_changes():
    d = US_PER_DAY
    # 7/week from day 0, 14/week from day 7, 7/week again from day 10, paused from
    # day 12 to day 13, span ends at day 14:
    # 7 x 7/7 + 14 x 3/7 + 7 x 2/7 + 0 + 7 x 1/7 = 7 + 6 + 2 + 1 = 16, exactly (the
    # sum is kept in whole microseconds, so no float rounding creeps in).
    assert metrics.prescribed_sessions(
        0, 14 * d, [(0, 1, 7), (7 * d, 2, 14), (10 * d, 3, 7)], [(12 * d, 4, 1), (13 * d, 5, 0)]
    ) == 16.0


def test_adherence_is_capped_and_null_below_one_prescribed_session():
    assert metrics.adherence(5, 4.0) == 1.0
    assert metrics.adherence(3, 4.0) == 0.75
    assert metrics.adherence(0, 0.99) is None


@pytest.mark.parametrize("completed, prescribed, expected", [
    (1, 1.0, 1.0),      # exactly one prescribed session is enough to measure
    (0, 1.0, 0.0),
    (1, 1.5, 2 / 3),    # between one and two: measured
])
def test_adherence_from_one_prescribed_session_on(completed, prescribed, expected):
    assert metrics.adherence(completed, prescribed) == pytest.approx(expected)


def test_times_are_whole_microseconds_since_the_epoch():
    # 2026-03-02 is 20514 days after 1970-01-01 (56 years, 14 of them leap, then
    # 31 + 28 + 1 days): (20514 x 86400 + 9 x 3600) s = 1_772_442_000 s.
    at_nine_utc = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    at_ten_in_paris = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert metrics.micros(at_nine_utc) == metrics.micros(at_ten_in_paris) == 1_772_442_000_000_000
    assert type(metrics.micros(at_nine_utc)) is int


@pytest.mark.parametrize("moment, week", [
    (datetime(2027, 1, 1, 12, 0, tzinfo=UTC), "2026-W53"),  # a Friday: 2026 has 53 weeks
    (datetime(2024, 12, 30, 12, 0, tzinfo=UTC), "2025-W01"),  # a Monday: 2025's first week
    # Sunday 23:30 in New York is Monday in UTC: the week the patient lived counts.
    (datetime(2026, 3, 8, 23, 30, tzinfo=timezone(timedelta(hours=-5))), "2026-W10"),
])
def test_iso_week_at_year_ends_and_in_the_clinic_s_offset(moment, week):
    assert metrics.iso_week(moment) == week


def test_median():
    assert metrics.median([]) is None
    assert metrics.median([3]) == 3.0
    assert metrics.median([1, 2, 10]) == 2.0
    assert metrics.median([1, 2, 4, 10]) == 3.0


# ---- per programme ---------------------------------------------------------


def test_pauses_are_left_out_of_prescribed_sessions():
    log = Log()
    p = log.programme(per_week=7)
    for d in range(1, 10):
        p.session(d)
    p.pause(10)
    p.resume(14)
    for d in (15, 17, 19, 20):
        p.session(d)
    s = summary_of(log, p)
    # Span day 0-20, paused day 10-14: 16 days at 7/week = 16 sessions; 13 done.
    assert s["prescribed_sessions"] == pytest.approx(16)
    assert s["sessions_completed"] == 13
    assert s["adherence"] == pytest.approx(13 / 16)
    assert s["status"] == "active"


def test_a_plan_change_mid_way_counts_each_plan_for_its_interval():
    log = Log()
    p = log.programme(per_week=3)
    for d in range(1, 14, 2):
        p.session(d)
    p.adjust(14, per_week=5)
    for d in (15, 17, 19, 21, 23):
        p.session(d)
    p.discharge(28, "goals_met")
    s = summary_of(log, p)
    # 3/week for 14 days (6) + 5/week for 14 days (10) = 16; 12 done.
    assert s["prescribed_sessions"] == pytest.approx(16)
    assert s["adherence"] == pytest.approx(0.75)
    assert (s["status"], s["outcome"]) == ("discharged", "goals_met")


def test_a_plan_change_recorded_late_takes_effect_when_it_happened():
    in_order, late = Log(), Log()
    a = in_order.programme(per_week=3)
    a.adjust(7, per_week=7)
    for d in (8, 9, 10):
        a.session(d)
    b = late.programme(per_week=3)
    for d in (8, 9, 10):
        b.session(d)
    b.adjust(7, per_week=7)  # posted after the sessions it preceded
    # 3 x 7/7 + 7 x 3/7 = 3 + 3 = 6, either way.
    assert summary_of(in_order, a)["prescribed_sessions"] == pytest.approx(6)
    assert summary_of(late, b)["prescribed_sessions"] == pytest.approx(6)


def test_a_pause_recorded_late_still_pauses_from_when_it_happened():
    log = Log()
    p = log.programme(per_week=7)
    for d in (1, 2, 3, 4, 6, 7):
        p.session(d)
    p.pause(5)  # posted after the sessions of days 6 and 7
    p.resume(9)
    p.session(10)
    s = summary_of(log, p)
    # Span 0-10, paused 5-9: 6 days = 6 prescribed; 7 done, adherence capped at 1.
    assert s["prescribed_sessions"] == pytest.approx(6)
    assert s["adherence"] == 1.0


def test_a_severe_adverse_event_pauses_the_programme():
    log = Log()
    p = log.programme(per_week=7)
    p.session(1)
    p.adverse(3, "severe")  # the aggregate also records ProgrammePaused
    p.pain(6, 6)
    s = summary_of(log, p)
    assert s["status"] == "paused"
    assert s["adverse_events"] == {"mild": 0, "moderate": 0, "severe": 1}
    # Span 0-6, paused from day 3: 3 prescribed, 1 done.
    assert s["prescribed_sessions"] == pytest.approx(3)
    assert s["adherence"] == pytest.approx(1 / 3)


def test_corrections_replace_the_data_everywhere():
    log = Log()
    p = log.programme(per_week=7, baseline=7)
    first_session = p.session(1, minutes=30)
    p.session(2, minutes=30)
    early = p.pain(3, 6)   # not a response
    late = p.pain(6, 5)    # 5 <= 5 but not 30% below 7: not a response
    read_models = project(log.records)
    before = read_models.summary(p.id)
    assert (before["responded"], before["latest_pain"], before["minutes_completed"]) == (
        False, 5, 60)

    p.correct(first_session, 8, duration_minutes=45)
    p.correct(early, 8, pain_nrs=4)   # now a response, on day 3
    p.correct(late, 9, pain_nrs=3)
    p.correct(late, 9.5, pain_nrs=2)  # corrected again: the later correction is in force
    read_models = project(log.records)
    s = read_models.summary(p.id)
    assert s["minutes_completed"] == 75
    assert (s["responded"], s["days_to_response"]) == (True, 3.0)
    assert (s["latest_pain"], s["pain_change"]) == (2, -5)
    assert s["corrections"] == 4
    state = read_models.state(p.id)
    from projections.summaries import trajectory

    assert [(t["pain_nrs"], t["responder"]) for t in trajectory(state)] == [(4, True), (2, True)]
    dashboard = read_models.dashboard("clinic-a")
    assert dashboard["minutes_completed"] == 75
    # Both reports are in ISO week 2026-W10 (days 0-6): (4 + 2) / 2.
    assert dashboard["weekly"] == [
        {"week": "2026-W10", "sessions_completed": 2, "pain_reports": 2, "mean_pain": 3.0},
    ]
    assert dashboard["mean_pain_change"] == -5.0


@pytest.mark.parametrize("first, second", [(6, 3), (3, 6)])
def test_reports_at_the_same_moment_the_later_recorded_is_the_latest(first, second):
    log = Log()
    p = log.programme(baseline=7)
    a = p.pain(5, first)
    b = p.pain(5, second)
    read_models = project(log.records)
    assert read_models.summary(p.id)["latest_pain"] == second
    from projections.summaries import trajectory

    order = [t["event_id"] for t in trajectory(read_models.state(p.id))]
    assert order == [str(a), str(b)]


def test_late_reports_land_where_they_happened():
    log = Log()
    p = log.programme(baseline=7)
    p.pain(20, 4)
    p.pain(10, 6)  # posted late: it happened before the one above
    s = summary_of(log, p)
    assert (s["latest_pain"], s["pain_change"]) == (4, -3)
    assert (s["responded"], s["days_to_response"]) == (True, 20.0)
    p.pain(8.5, 3)  # later still, and earlier in time: the first response now
    read_models = project(log.records)
    s = read_models.summary(p.id)
    assert (s["latest_pain"], s["days_to_response"]) == (4, 8.5)
    from projections.summaries import trajectory

    assert [t["pain_nrs"] for t in trajectory(read_models.state(p.id))] == [3, 6, 4]


def test_a_programme_with_no_reports():
    log = Log()
    p = log.programme(per_week=7)
    p.session(1)
    p.missed(2)
    read_models = project(log.records)
    s = read_models.summary(p.id)
    assert (s["latest_pain"], s["pain_change"], s["responded"], s["days_to_response"]) == (
        None, None, False, None)
    assert (s["pain_reports"], s["sessions_missed"]) == (0, 1)
    d = read_models.dashboard("clinic-a")
    assert (d["programmes_with_reports"], d["responders"], d["responder_rate"]) == (0, 0, None)
    assert d["mean_pain_change"] is None
    assert d["median_days_to_response"] is None


def test_discharge_ends_the_span_and_later_corrections_still_apply():
    log = Log()
    p = log.programme(per_week=7)
    session = p.session(1, minutes=20)
    p.session(2, minutes=20)
    p.discharge(21, "improved")
    p.correct(session, 30, duration_minutes=40)  # after discharge: still accepted
    s = summary_of(log, p)
    assert s["prescribed_sessions"] == pytest.approx(21)  # day 0-21 at 7/week
    assert s["last_occurred_at"].startswith("2026-04-01")  # day 30: the correction
    assert s["minutes_completed"] == 60
    assert (s["status"], s["outcome"], s["discharged_at"][:10]) == (
        "discharged", "improved", "2026-03-23")


def test_adherence_is_null_when_less_than_one_session_was_prescribed():
    log = Log()
    p = log.programme(per_week=3)
    p.pain(1, 5)
    read_models = project(log.records)
    assert read_models.summary(p.id)["adherence"] is None  # 3 x 1/7 < 1
    d = read_models.dashboard("clinic-a")
    assert (d["mean_adherence"], d["programmes_with_adherence"]) == (None, 0)


# ---- per clinic and for the network -----------------------------------------


def test_clinic_dashboard_and_network_totals():
    log = Log()
    p1 = log.programme("clinic-a", baseline=8, setting="at_home", modality="inversion")
    p2 = log.programme("clinic-a", baseline=6, setting="in_office",
                       modality="mechanical_table", per_week=3)
    p3 = log.programme("clinic-a", baseline=5, setting="hybrid", modality="inversion")
    p4 = log.programme("clinic-a", baseline=5)
    other = log.programme("clinic-b", baseline=9)
    p1.session(1, minutes=20)
    p1.pain(2, 5)               # 5 <= 6 and 50 <= 56: responds on day 2; change -3
    p2.session(1, minutes=30)
    p2.pain(4, 4)               # 4 <= 4 and 40 <= 42: responds on day 4; change -2
    p2.discharge(7, "goals_met")
    p3.pain(3, 5)               # no change: not a response
    p3.pause(5)
    p4.session(8, minutes=25)   # ISO week 2026-W11
    p4.adverse(8, "moderate")
    other.pain(1, 2)            # clinic-b only
    read_models = project(log.records)
    d = read_models.dashboard("clinic-a")
    assert d["clinic_id"] == "clinic-a"
    assert d["programmes"] == 4
    assert d["by_status"] == {"active": 2, "paused": 1, "discharged": 1}
    assert d["discharged_by_outcome"]["goals_met"] == 1
    assert sum(d["discharged_by_outcome"].values()) == 1
    assert d["by_setting"] == {"in_office": 1, "at_home": 2, "hybrid": 1}
    assert d["by_starting_modality"]["inversion"] == 3
    assert d["by_starting_modality"]["mechanical_table"] == 1
    assert (d["sessions_completed"], d["minutes_completed"]) == (3, 75)
    assert d["adverse_events"] == {"mild": 0, "moderate": 1, "severe": 0}
    assert (d["responders"], d["programmes_with_reports"]) == (2, 3)
    assert d["responder_rate"] == pytest.approx(2 / 3, abs=1e-6)
    assert d["median_days_to_response"] == 3.0  # (2 + 4) / 2
    assert d["mean_pain_change"] == pytest.approx((-3 - 2 + 0) / 3, abs=1e-6)
    assert d["weekly"] == [
        {"week": "2026-W10", "sessions_completed": 2, "pain_reports": 3,
         "mean_pain": pytest.approx(14 / 3, abs=1e-6)},
        {"week": "2026-W11", "sessions_completed": 1, "pain_reports": 0, "mean_pain": None},
    ]
    # Adherence: p1 1 of 7 (span 0-2 at 7/week = 2 prescribed: 0.5), p2 1 of 3 (span
    # 0-7 at 3/week), p3 paused from day 5 (span 0-5: 5 prescribed, 0 done), p4 1 of 8.
    assert d["programmes_with_adherence"] == 4
    assert d["mean_adherence"] == pytest.approx((0.5 + 1 / 3 + 0 + 1 / 8) / 4, abs=1e-6)

    totals = read_models.totals()
    assert totals["programmes"] == 5
    assert (totals["responders"], totals["programmes_with_reports"]) == (3, 4)
    assert totals["median_days_to_response"] == 2.0  # 1, 2, 4
    assert read_models.dashboard("clinic-b")["programmes"] == 1


# ---- honest outcomes: time to response, both denominators, who was compared ---------


def test_time_to_response_both_denominators_and_exposure_by_hand():
    log = Log()
    p1 = log.programme(baseline=8, setting="in_office", modality="mechanical_table")
    p2 = log.programme(baseline=6, setting="in_office", modality="mechanical_table")
    p3 = log.programme(baseline=5)
    p4 = log.programme(baseline=7)
    p1.pain(2, 5)        # moderate response on day 2 (5 <= 6, 50 <= 56), not substantial
    p1.pain(9, 3)        # substantial on day 9 (3 <= 6, 6 <= 8)
    p1.discharge(10, "goals_met")
    p2.pain(4, 6)
    p2.pain(8, 5)        # never responds: censored on day 8, its last report
    p2.discharge(12, "no_change")
    p3.discharge(3, "dropped_out")  # no report: censored on day 0; a non-responder when discharged
    p4.pain(5, 4)        # moderate on day 5 (4 <= 5, 40 <= 49), still active
    p4.adverse(5, "mild")
    d = project(log.records).dashboard("clinic-a")

    rates = d["responder_rates"]
    # Moderate: p1 and p4 of the 3 with a report; of the 3 discharged only p1.
    assert (rates["moderate"]["among_reported"]["responders"],
            rates["moderate"]["among_reported"]["programmes"]) == (2, 3)
    assert (rates["moderate"]["among_discharged"]["responders"],
            rates["moderate"]["among_discharged"]["programmes"]) == (1, 3)
    assert rates["moderate"]["among_discharged"]["ci95"] == pytest.approx(
        list(intervals.wilson(1, 3)), abs=1e-6)
    assert (d["responder_rate_discharged"], d["responders_discharged"],
            d["programmes_discharged"]) == (pytest.approx(1 / 3, abs=1e-6), 1, 3)
    # Substantial: p1 only, of 3 either way.
    assert rates["substantial"]["among_reported"]["rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert rates["substantial"]["among_discharged"]["responders"] == 1

    km = d["time_to_response"]["moderate"]
    # Events on days 2 (p1) and 5 (p4); censored on days 8 (p2) and 0 (p3).
    # Day 2: n = 3 (p3's time 0 is before it), S = 2/3. Day 5: n = 2, S = 1/3.
    assert (km["programmes"], km["responses"], km["censored"]) == (4, 2, 2)
    assert km["median_days"] == 5.0
    day7 = km["at_days"][0]
    assert (day7["day"], day7["cumulative"], day7["at_risk"]) == (7, pytest.approx(2 / 3,
                                                                                  abs=1e-6), 1)
    assert km["at_days"][1] == {"day": 14, "cumulative": None, "ci95": None, "at_risk": 0}
    assert km["curve"]["day"] == [0, 2, 5, 8]
    substantial = d["time_to_response"]["substantial"]
    assert (substantial["responses"], substantial["median_days"]) == (1, 9.0)
    # The median over responders only (2 and 5), under its honest name and the old one.
    assert d["median_days_to_response_among_responders"] == 3.5
    assert d["median_days_to_response"] == 3.5

    # Pain change -5, -1, -3: mean -3, sd 2, t(0.975; 2) = 4.302653.
    change = d["pain_change"]
    assert (change["programmes"], change["mean"]) == (3, -3.0)
    half = 4.302653 * 2 / 3 ** 0.5
    assert change["ci95"] == pytest.approx([-3 - half, -3 + half], abs=1e-5)
    # Exposure: 10 + 12 + 3 + 5 days (p4's span ends at its latest event) = 30/7 weeks.
    assert d["programme_weeks"] == pytest.approx(30 / 7, abs=1e-6)
    weekly = d["adverse_event_rates"]["per_100_programme_weeks"]
    assert weekly["events"] == 1
    assert weekly["rate"] == pytest.approx(100 / (30 / 7), abs=1e-6)
    assert weekly["ci95"] == pytest.approx([100 * 0.0253178 / (30 / 7),
                                            100 * 5.5716434 / (30 / 7)], rel=1e-6)
    assert d["adverse_event_rates"]["per_100_sessions"] == {"events": 1, "rate": None,
                                                            "ci95": None}  # no sessions

    # The settings compared: each group with its own figures.
    groups = {g["group"]: g for g in d["comparisons"]["setting"]["groups"]}
    assert set(groups) == {"in_office", "at_home"}
    assert groups["in_office"]["programmes"] == 2
    assert groups["in_office"]["mean_baseline_pain"] == 7.0
    assert groups["at_home"]["time_to_response"]["moderate"]["median_days"] == 5.0
    assert d["comparisons"]["setting"]["differ_at_baseline"] is False  # groups under 5


def test_groups_differ_at_baseline_by_the_rule():
    def compared(in_office: list[tuple[int, str]], at_home: list[tuple[int, str]]) -> dict:
        log = Log()
        for setting, group in (("in_office", in_office), ("at_home", at_home)):
            for baseline, condition in group:
                log.programme(baseline=baseline, setting=setting, condition=condition)
        return project(log.records).dashboard("clinic-a")["comparisons"]["setting"]

    alike = [(7, "sciatica")] * 5
    # Mean baseline 7.0 against 6.2: 0.8 points apart, same conditions: alike.
    assert compared(alike, [(7, "sciatica")] * 4 + [(3, "sciatica")])[
        "differ_at_baseline"] is False
    # 7.0 against 6.0: exactly 1.0 point apart: flagged (>= 1.0).
    result = compared(alike, [(7, "sciatica")] * 4 + [(2, "sciatica")])
    assert result["differ_at_baseline"] is True
    assert result["baseline_differences"] == [
        {"groups": ["in_office", "at_home"], "measure": "mean_baseline_pain",
         "condition": None, "difference": 1.0}]
    # Sciatica 100 % against 80 %: exactly 20 points: flagged, for both conditions.
    result = compared(alike, [(7, "sciatica")] * 4 + [(7, "low_back_pain")])
    assert [(x["measure"], x["condition"], x["difference"])
            for x in result["baseline_differences"]] == [
        ("condition_share", "low_back_pain", -0.2), ("condition_share", "sciatica", 0.2)]
    # 2 points apart but a group of 4: too small to judge.
    assert compared(alike, [(5, "sciatica")] * 4)["differ_at_baseline"] is False


def test_the_network_compares_its_clinics_and_pools_their_times():
    log = Log()
    for n in range(5):
        a = log.programme("clinic-a", baseline=8)
        a.pain(1 + n, 2)
        b = log.programme("clinic-b", baseline=5, condition="low_back_pain")
        b.pain(3, 5)
    network = project(log.records).totals()
    clinics = network["comparisons"]["clinic"]
    assert [(g["group"], g["programmes"], g["mean_baseline_pain"]) for g in clinics["groups"]] == [
        ("clinic-a", 5, 8.0), ("clinic-b", 5, 5.0)]
    assert clinics["differ_at_baseline"] is True
    km = network["time_to_response"]["moderate"]
    # Five responses on days 1-5 in clinic-a; five censored on day 3 in clinic-b.
    assert (km["programmes"], km["responses"], km["censored"]) == (10, 5, 5)
    assert km == survival.time_to_response([day * US_PER_DAY for day in range(1, 6)],
                                           [3 * US_PER_DAY] * 5)
