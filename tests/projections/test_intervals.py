"""The 95 % intervals of projections/intervals.py against hand values and scipy.

scipy comes with lifelines (a test-only dependency); the service computes the
chi-square and t quantiles itself, and these tests hold it to scipy's to 1e-9.
"""

from __future__ import annotations

import math

import pytest
from scipy import stats

from projections.intervals import (
    poisson_count_interval,
    poisson_rate,
    t_interval,
    t_quantile_975,
    wilson,
)


def test_wilson_by_hand():
    # 7 of 15: p = 0.4667; z² = 3.8415; centre = (0.4667 + 0.1281) / 1.2561 = 0.4735;
    # half = 1.96 x sqrt(0.01659 + 0.004268) / 1.2561 = 0.2253.
    low, high = wilson(7, 15)
    assert (low, high) == pytest.approx((0.2481, 0.6988), abs=1e-4)
    assert wilson(0, 0) is None
    assert wilson(0, 4)[0] == 0.0
    assert wilson(4, 4)[1] == 1.0


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (3, 10), (50, 97), (999, 1000)])
def test_wilson_matches_the_closed_form(k, n):
    z = stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson(k, n) == pytest.approx((max(0, centre - half), min(1, centre + half)),
                                         abs=1e-12)


def test_exact_poisson_interval_by_hand():
    # k = 0: the upper limit solves e^-μ = 0.025, μ = ln 40 = 3.689.
    assert poisson_count_interval(0) == pytest.approx((0.0, math.log(40)), rel=1e-12)
    # k = 1: the lower limit solves 1 - e^-μ = 0.025, μ = -ln 0.975 = 0.02532.
    assert poisson_count_interval(1)[0] == pytest.approx(-math.log(0.975), rel=1e-12)


@pytest.mark.parametrize("k", [*range(0, 60), 99, 100, 250, 1_000, 5_000, 20_000])
def test_exact_poisson_interval_matches_scipys_chi_square(k):
    low, high = poisson_count_interval(k)
    assert low == pytest.approx(stats.chi2.ppf(0.025, 2 * k) / 2 if k else 0.0,
                                rel=1e-9, abs=1e-300)
    assert high == pytest.approx(stats.chi2.ppf(0.975, 2 * k + 2) / 2, rel=1e-9)


def test_a_rate_per_100_units_of_exposure():
    # 9 events over 661 sessions: 1.3616 per 100, interval 100 x (4.115, 17.085) / 661.
    rate, (low, high) = poisson_rate(9, 661)
    assert rate == pytest.approx(900 / 661)
    assert (low, high) == pytest.approx((100 * 4.115373 / 661, 100 * 17.084803 / 661),
                                        rel=1e-6)
    assert poisson_rate(3, 0) is None


@pytest.mark.parametrize("df", [*range(1, 260), 300, 999, 1_000, 5_000, 123_456])
def test_t_quantile_matches_scipy(df):
    assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)


def test_t_interval_of_a_mean():
    values = [-3, -2, 0, -5, 1]
    mean, (low, high) = t_interval(sum(values), sum(v * v for v in values), len(values))
    sd = stats.tstd(values)
    half = stats.t.ppf(0.975, 4) * sd / math.sqrt(5)
    assert mean == pytest.approx(-1.8)
    assert (low, high) == pytest.approx((-1.8 - half, -1.8 + half), rel=1e-9)
    assert t_interval(-2, 4, 1) == (-2.0, None)
    assert t_interval(0, 0, 0) is None
    assert t_interval(6, 12, 3) == (2.0, (2.0, 2.0))  # no spread: a zero-width interval
