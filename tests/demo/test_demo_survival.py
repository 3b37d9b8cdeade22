"""The demo's time to response, as the dashboards show it, equals lifelines' on the same cohort.

The demo (the default 4 clinics x 60 programmes) is seeded and projected;
each cohort's times are then worked out again from the stored histories by
docs/metrics.md's definitions (tests/demo/reading.py, corrections applied), not by
the projection, and fitted with lifelines' KaplanMeierFitter. The
dashboards' figures (6 decimals) must equal lifelines' rounded the same
way: cumulative response and its log-log interval at every reported day,
the number at risk, the median and its interval (except where S is exactly
0.5 over an interval, where lifelines takes the next event time).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from fractions import Fraction
from typing import Any

import lifelines
import pytest
from lifelines.utils import median_survival_times

from service.demo.seeding import seed_demo
from service.demo.simulation import demo_clinics, simulate
from tests.demo.reading import current_pain_reports, is_response
from tests.stores import RunnerAt, components_at, initialise

CLINICS, PROGRAMMES = 4, 60


def is_substantial(pain: int, baseline: int) -> bool:
    return pain <= baseline - 2 and pain <= 0.5 * baseline


def days(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 86400


def programme_times(history: list[dict[str, Any]]) -> dict[str, tuple[float, bool]]:
    """(days, responded) per kind, by docs/metrics.md: the first qualifying report, else
    censored at the last report (0 without one)."""
    start = datetime.fromisoformat(history[0]["occurred_at"])
    baseline = history[0]["data"]["baseline"]["pain_nrs"]
    reports = current_pain_reports(history)
    times = {}
    for kind, rule in (("moderate", is_response), ("substantial", is_substantial)):
        hits = [at for at, pain in reports if rule(pain, baseline)]
        if hits:
            times[kind] = (days(min(hits), start), True)
        else:
            times[kind] = (days(max(at for at, _ in reports), start) if reports else 0.0, False)
    return times


def exact_survival(cohort: list[tuple[float, bool]], until: float) -> Fraction:
    """S at `until` as a fraction: the product of (n - d) / n over event times up to it
    (times to 6 decimals, as shown)."""
    s = Fraction(1)
    for t in sorted({t for t, event in cohort if event and round(t, 6) <= until}):
        n = sum(1 for u, _ in cohort if u >= t)
        d = sum(1 for u, event in cohort if event and u == t)
        s *= Fraction(n - d, n)
    return s


def check(shown: dict[str, Any], cohort: list[tuple[float, bool]]) -> None:
    fitter = lifelines.KaplanMeierFitter().fit([t for t, _ in cohort], [e for _, e in cohort])
    bounds = fitter.confidence_interval_
    assert (shown["programmes"], shown["responses"]) == (len(cohort), sum(e for _, e in cohort))
    for row in shown["at_days"]:
        day = row["day"]
        at_risk = sum(1 for t, _ in cohort if t >= day)
        assert row["at_risk"] == at_risk
        if at_risk == 0:
            assert row["cumulative"] is None
            continue
        s = float(fitter.survival_function_at_times(day).iloc[0])
        low, high = bounds.loc[:day].iloc[-1]
        assert row["cumulative"] == pytest.approx(1 - s, abs=1e-6)
        assert row["ci95"] == pytest.approx([1 - high, 1 - low], abs=1e-6)
    theirs = median_survival_times(fitter.survival_function_)
    ours = shown["median_days"]
    if ours is None:
        assert theirs == math.inf
    elif ours != pytest.approx(theirs, abs=1e-6):
        # Where S is exactly 0.5 from our median on, lifelines' float product is a hair
        # above 0.5 and it takes the next event time (or, after the last, none).
        assert exact_survival(cohort, ours) == Fraction(1, 2) and theirs > ours
    low, high = median_survival_times(bounds).iloc[0]
    assert shown["median_ci95"] == [None if low == math.inf else pytest.approx(low, abs=1e-6),
                                    None if high == math.inf else pytest.approx(high, abs=1e-6)]


@pytest.mark.slow
def test_the_demo_time_to_response_equals_lifelines(sqlite_url):
    initialise(sqlite_url)
    components = components_at(sqlite_url)
    try:
        seed_demo(components, clinics=CLINICS, programmes=PROGRAMMES, issue_tokens=False)
        histories = [
            (s.clinic_id, components.programmes.history(s.clinic_id, s.programme_id))
            for s in simulate(1, demo_clinics(CLINICS), PROGRAMMES)
        ]
    finally:
        components.close()
    RunnerAt(sqlite_url).run(once=True)
    components = components_at(sqlite_url)
    try:
        _, _, totals = components.read_models.network("dashboards")
        network = json.loads(totals)
        clinic_ids = sorted({clinic_id for clinic_id, _ in histories})
        dashboards = {c: json.loads(components.read_models.clinic_dashboard("dashboards", c)[1])
                      for c in clinic_ids}
    finally:
        components.close()

    cohorts: dict[tuple[str, str, str], list[tuple[float, bool]]] = {}
    for clinic_id, history in histories:
        start = history[0]["data"]
        for kind, time in programme_times(history).items():
            for scope in (clinic_id, "*"):
                for group in ("all", "setting:" + start["setting"],
                              "starting_modality:" + start["plan"]["modality"]):
                    cohorts.setdefault((scope, group, kind), []).append(time)
    checked = 0
    for (scope, group, kind), cohort in cohorts.items():
        shown = network if scope == "*" else dashboards[scope]
        if group != "all":
            field, name = group.split(":")
            shown = next(g for g in shown["comparisons"][field]["groups"] if g["group"] == name)
        check(shown["time_to_response"][kind], cohort)
        checked += 1
    assert checked >= 2 * (len(clinic_ids) + 1) * 3
