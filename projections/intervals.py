"""95 % confidence intervals for the dashboards' rates and means, as pure functions.

- a proportion: the Wilson score interval;
- a count of events over an exposure (adverse events per 100 sessions or per
  100 programme-weeks): the exact Poisson interval, from the chi-square
  quantiles `χ²(0.025; 2k) / 2` and `χ²(0.975; 2k + 2) / 2`;
- a mean (the pain change): Student's t, `mean ± t(0.975; n − 1) · sd / √n`.

The quantiles are computed here rather than with scipy, which the service
would otherwise need only for these two numbers: for a whole count `k` the
chi-square quantiles are where a Poisson distribution's cumulative
probability reaches 2.5 % (a finite sum), and Student's t comes from the
regularized incomplete beta function (a continued fraction). The tests check
both against scipy to 1e-9. Results are cached: a dashboard asks for the same
few counts and sample sizes again and again.
"""

from __future__ import annotations

import math
from functools import lru_cache

from projections.survival import Z95

_TAIL = 0.025  # each side of a two-sided 95 % interval


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion; None when there are no trials."""
    if trials <= 0:
        return None
    p = successes / trials
    zz = z * z
    denominator = 1 + zz / trials
    centre = (p + zz / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + zz / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


# ---- exact Poisson --------------------------------------------------------------


def _upper_incomplete_gamma(a: int, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x), for a whole a ≥ 1:
    P(X ≤ a − 1) for X ~ Poisson(x). A series below x = a + 1, else a continued
    fraction (modified Lentz); either converges in about √a terms."""
    if x <= 0:
        return 1.0
    front = math.exp(a * math.log(x) - x - math.lgamma(a))
    if x < a + 1:
        term = total = 1.0 / a
        denominator = a
        for _ in range(100_000):
            denominator += 1
            term *= x / denominator
            total += term
            if term < total * 1e-17:
                break
        return 1.0 - front * total
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return front * h


def _poisson_mean_where_cdf_is(k: int, target: float) -> float:
    """The mean μ with P(X ≤ k; μ) = target (the cumulative probability falls as μ grows).

    Newton's steps (its derivative in μ is −μᵏ e^−μ / k!), kept inside a bracket
    that bisection narrows whenever a step would leave it.
    """
    low, high = 0.0, 2.0 * (k + 1) + 10.0
    while _upper_incomplete_gamma(k + 1, high) > target:
        low, high = high, 2 * high
    mean = (low + high) / 2
    for _ in range(300):
        value = _upper_incomplete_gamma(k + 1, mean) - target
        if value > 0:
            low = mean
        else:
            high = mean
        slope = -math.exp(k * math.log(mean) - mean - math.lgamma(k + 1))
        step = mean - value / slope if slope else low
        if not low < step < high:
            step = (low + high) / 2
        if abs(step - mean) <= 1e-15 * mean or high - low <= 1e-15 * high:
            return step
        mean = step
    return mean


@lru_cache(maxsize=4096)
def poisson_count_interval(count: int) -> tuple[float, float]:
    """The exact 95 % interval of a Poisson count `k` (its mean): (lower, upper)."""
    lower = 0.0 if count == 0 else _poisson_mean_where_cdf_is(count - 1, 1 - _TAIL)
    upper = _poisson_mean_where_cdf_is(count, _TAIL)
    return lower, upper


def poisson_rate(count: int, exposure: float, per: float = 100.0
                 ) -> tuple[float, tuple[float, float]] | None:
    """Events per `per` units of exposure, with the exact interval; None without exposure."""
    if exposure <= 0:
        return None
    lower, upper = poisson_count_interval(count)
    scale = per / exposure
    return count * scale, (lower * scale, upper * scale)


# ---- Student's t ------------------------------------------------------------------


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                          -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            delta = c * d
            result *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return result


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1 - x) / b


def _t_upper_tail(t: float, df: int) -> float:
    """P(T > t) for t ≥ 0."""
    return 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t))


def _t_density(t: float, df: int) -> float:
    return math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
                    - 0.5 * math.log(df * math.pi) - (df + 1) / 2 * math.log1p(t * t / df))


@lru_cache(maxsize=4096)
def t_quantile_975(df: int) -> float:
    """Student's t quantile at 0.975 for `df` degrees of freedom.

    From 200 degrees of freedom on, the Cornish–Fisher expansion in 1/df
    (Abramowitz and Stegun 26.7.5) is within 2e-12 of it; below, Newton's
    steps from the normal quantile, which lies below it: the upper tail is
    convex there, so the steps approach from below without overshooting.
    """
    if df >= 200:
        x = Z95
        x2 = x * x
        g1 = x * (x2 + 1) / 4
        g2 = x * ((5 * x2 + 16) * x2 + 3) / 96
        g3 = x * (((3 * x2 + 19) * x2 + 17) * x2 - 15) / 384
        g4 = x * ((((79 * x2 + 776) * x2 + 1482) * x2 - 1920) * x2 - 945) / 92160
        return x + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df
    t = Z95
    for _ in range(200):
        step = (_t_upper_tail(t, df) - _TAIL) / _t_density(t, df)
        t += step
        if abs(step) <= 1e-14 * t:
            break
    return t


Interval = tuple[float, float]


def t_interval(total: int, squares: int, count: int) -> tuple[float, Interval | None] | None:
    """The mean of `count` whole values from their sum and sum of squares, with its
    95 % t interval (None below two values); None when there are none."""
    if count <= 0:
        return None
    mean = total / count
    if count < 2:
        return mean, None
    # n Σx² − (Σx)² is a whole number: the variance without cancellation error.
    variance = (count * squares - total * total) / (count * (count - 1))
    half = t_quantile_975(count - 1) * math.sqrt(variance / count)
    return mean, (mean - half, mean + half)
