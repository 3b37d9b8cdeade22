"""Kaplan–Meier time to response (projections/survival.py), as a statistician would check it.

Hand-computed examples first (ties, a censoring on the day of a response,
all censored, all responding, a single programme), then cross-checks against
lifelines' KaplanMeierFitter on generated cohorts: the survival function and
its log-log interval to 1e-9 at every time, the number at risk, and the
median with its Brookmeyer–Crowley interval — the median too, except where S
is exactly 0.5 over an interval (lifelines' product of floats lands a hair
above 0.5 there and it takes the next event time; ours is decided exactly).
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import lifelines
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines.utils import median_survival_times

from projections.metrics import US_PER_DAY as D
from projections.survival import REPORT_DAYS, Z95, estimate, time_to_response


def log_log(s: float, v: float) -> tuple[float, float]:
    """The bounds of docs/metrics.md written out: S^exp(±1.96 √V / ln S), lower first."""
    return s ** math.exp(-Z95 * math.sqrt(v) / math.log(s)), s ** math.exp(
        Z95 * math.sqrt(v) / math.log(s))


# ---- by hand ------------------------------------------------------------------------


def test_tied_response_times_and_a_censoring_between():
    # Responses on day 2 (two) and day 5; censored on days 3 and 7.
    # Day 2: n = 5, d = 2: S = 3/5, V = 2 / (5 x 3) = 2/15.
    # Day 5: n = 2 (days 5 and 7), d = 1: S = 3/5 x 1/2 = 0.3, V = 2/15 + 1/(2 x 1) = 19/30.
    e = estimate([2 * D, 2 * D, 5 * D], [3 * D, 7 * D])
    assert e.times == [2 * D, 5 * D]
    assert (e.at_risk, e.responses) == ([5, 2], [2, 1])
    assert e.survival == pytest.approx([0.6, 0.3], abs=1e-15)
    assert e.variance == pytest.approx([2 / 15, 19 / 30], abs=1e-15)
    assert e.interval_at(2 * D) == pytest.approx(log_log(0.6, 2 / 15), abs=1e-12)
    assert e.interval_at(2 * D) == pytest.approx((0.125730, 0.881756), abs=1e-6)
    assert e.interval_at(4 * D) == e.interval_at(2 * D)  # a step function
    assert e.interval_at(1 * D) == (1.0, 1.0)  # before any response
    assert e.at_risk_at(3 * D) == 3  # times >= day 3: 3 (censored), 5, 7
    assert e.median() == 5 * D  # 0.6 > 0.5; 0.3 <= 0.5
    # Lower bound of S at day 2 is 0.126 <= 0.5; the upper bound stays above 0.5
    # (0.88, then 0.72 at day 5): the median's interval runs from day 2, not reached.
    assert e.median_interval() == (2 * D, None)


def test_a_censoring_on_the_day_of_a_response_is_still_at_risk_then():
    # Day 4: one response and one censoring; day 6: a response.
    # At day 4, n = 3 (the censoring counts: events before censorings), S = 2/3;
    # at day 6, n = 1, d = 1: S = 0, and the interval closes to 0-0.
    e = estimate([4 * D, 6 * D], [4 * D])
    assert e.at_risk == [3, 1]
    assert e.survival == pytest.approx([2 / 3, 0.0])
    assert e.median() == 6 * D
    assert e.interval_at(6 * D) == (0.0, 0.0)
    figures = time_to_response([4 * D, 6 * D], [4 * D])
    assert figures["at_days"][0] == {"day": 7, "cumulative": None, "ci95": None, "at_risk": 0}


def test_all_censored_has_no_response_and_no_median():
    figures = time_to_response([], [1 * D, 3 * D, 10 * D])
    assert (figures["programmes"], figures["responses"], figures["censored"]) == (3, 0, 3)
    assert figures["median_days"] is None
    assert figures["median_ci95"] == [None, None]
    assert figures["at_days"][0] == {"day": 7, "cumulative": 0.0, "ci95": [0.0, 0.0],
                                     "at_risk": 1}
    assert figures["curve"] == {"day": [0, 10], "cumulative": [0.0, 0.0],
                                "ci95_low": [0.0, 0.0], "ci95_high": [0.0, 0.0]}


def test_all_responding():
    # Days 1, 2, 3, 4: S = 3/4, 1/2, 1/4, 0. S reaches 0.5 exactly on day 2: the median.
    e = estimate([1 * D, 2 * D, 3 * D, 4 * D], [])
    assert e.survival == pytest.approx([0.75, 0.5, 0.25, 0.0])
    assert e.median() == 2 * D
    assert e.variance[:3] == pytest.approx([1 / 12, 1 / 12 + 1 / 6, 1 / 12 + 1 / 6 + 1 / 2])
    figures = time_to_response(e.events, e.censored)
    assert figures["median_days"] == 2.0
    assert figures["curve"]["day"] == [0, 1, 2, 3, 4]
    assert figures["curve"]["cumulative"] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_a_single_programme():
    responded = time_to_response([round(2.5 * D)], [])
    assert responded["median_days"] == 2.5
    # Listed where it changes: day 0, then the end of day 3 (the response was at 2.5).
    assert responded["curve"] == {"day": [0, 3], "cumulative": [0.0, 1.0],
                                  "ci95_low": [0.0, 1.0], "ci95_high": [0.0, 1.0]}
    assert time_to_response([], [0])["curve"]["day"] == [0]  # no reports: day 0 only
    assert time_to_response([], [])["median_days"] is None


def test_a_survival_of_exactly_one_half_over_an_interval():
    # Responses on days 1, 2, 3, censored on 4, responses on 5, 6: S(3) = 5/6 x 4/5 x 3/4
    # = 1/2 exactly, so the median is day 3 — the product in floats is 0.5000000000000001.
    e = estimate([1 * D, 2 * D, 3 * D, 5 * D, 6 * D], [4 * D])
    assert e.median() == 3 * D
    fitter = lifelines.KaplanMeierFitter().fit([1, 2, 3, 5, 6, 4], [1, 1, 1, 1, 1, 0])
    assert median_survival_times(fitter.survival_function_) == 5  # lifelines: the next one


def test_the_reported_days_and_the_curve_agree():
    rng = random.Random(4)
    events = sorted(rng.randrange(0, 90 * D) for _ in range(40))
    censored = sorted(rng.randrange(0, 120 * D) for _ in range(30))
    figures = time_to_response(events, censored)
    curve = figures["curve"]
    for row in figures["at_days"]:
        index = max(i for i, day in enumerate(curve["day"]) if day <= row["day"])
        # The curve is drawn to 4 decimals, the table has 6.
        assert row["cumulative"] == pytest.approx(curve["cumulative"][index], abs=5e-5)
        assert row["ci95"] == pytest.approx([curve["ci95_low"][index],
                                             curve["ci95_high"][index]], abs=5e-5)
    assert curve["day"][-1] == REPORT_DAYS[-1]


# ---- against lifelines --------------------------------------------------------------


def fit(events: list[int], censored: list[int]):
    durations = events + censored
    observed = [1] * len(events) + [0] * len(censored)
    return lifelines.KaplanMeierFitter().fit(durations, observed)


def exactly_half(e, time: int) -> bool:
    s = Fraction(1)
    for t, n, d in zip(e.times, e.at_risk, e.responses, strict=True):
        if t <= time:
            s *= Fraction(n - d, n)
    return s == Fraction(1, 2)


def check_against_lifelines(events: list[int], censored: list[int]) -> None:
    events, censored = sorted(events), sorted(censored)
    e = estimate(events, censored)
    fitter = fit(events, censored)
    survival = fitter.survival_function_.iloc[:, 0]
    bounds = fitter.confidence_interval_
    table = fitter.event_table
    for time in survival.index:
        t = int(time)
        assert e.survival_at(t) == pytest.approx(survival[time], abs=1e-9, rel=0)
        assert e.interval_at(t) == pytest.approx(tuple(bounds.loc[time]), abs=1e-9, rel=0)
        assert e.at_risk_at(t) == table.loc[time, "at_risk"]
    for day in REPORT_DAYS:
        t = day * D
        assert e.survival_at(t) == pytest.approx(
            float(fitter.survival_function_at_times(t).iloc[0]), abs=1e-9, rel=0)
    theirs = median_survival_times(fitter.survival_function_)
    ours = e.median()
    if ours is None:
        assert theirs == math.inf
    elif ours != theirs:
        assert exactly_half(e, ours) and theirs > ours
    low, high = median_survival_times(bounds).iloc[0]
    assert e.median_interval() == (None if low == math.inf else low,
                                   None if high == math.inf else high)


def cohort(rng: random.Random, size: int) -> tuple[list[int], list[int]]:
    """Responses in the first weeks, censorings spread out; ties on whole days, and
    censorings on days with responses, as clinic data has."""
    events, censored = [], []
    for _ in range(size):
        whole_day = rng.random() < 0.5
        days = rng.randint(0, 100) if whole_day else rng.uniform(0, 100)
        t = round(days * D)
        (events if rng.random() < 0.55 else censored).append(t)
    return events, censored


@pytest.mark.parametrize("seed", range(30))
def test_generated_cohorts_agree_with_lifelines(seed):
    rng = random.Random(seed)
    check_against_lifelines(*cohort(rng, rng.choice((1, 2, 5, 20, 60, 300))))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=40))
def test_any_small_cohort_agrees_with_lifelines(times):
    check_against_lifelines([day * D for day, event in times if event],
                            [day * D for day, event in times if not event])
