"""Time to response by Kaplan–Meier (docs/metrics.md), as pure functions.

Every programme is followed from its start. A responder's time is its days
to response (an event); a non-responder is censored at its last pain
report (at 0 without reports). At each distinct event time `t` with `d`
responses and `n` programmes whose time is ≥ `t` (ties: events before
censorings), `S(t) = Π (n − d) / n` over event times ≤ `t`, and the
cumulative response is `1 − S(t)`.

The 95 % interval is the log-log one (exponential Greenwood, as lifelines
and R's survival compute it): `V = Σ d / (n (n − d))`, bounds
`S^exp(±z √V / ln S)`. Where that is undefined it is what lifelines says:
before the first response (S = 1) the interval is 1–1, and once every
programme at risk has responded (S = 0) it is 0–0.

The median is the smallest event time with `S ≤ 0.5`, decided exactly (S
as a fraction) when the floating-point product is within rounding of 0.5;
lifelines compares the rounded product, so where S is exactly 0.5 over an
interval it takes the next event time instead. Its interval
(Brookmeyer–Crowley) runs from the first event time where the lower bound
of S is ≤ 0.5 to the first where the upper bound is (None: not reached).

Times are whole microseconds, so the input is exact and two runs over the
same times give the same floats, whatever order the times were collected in.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist

from projections.metrics import US_PER_DAY

#: The normal quantile of a two-sided 95 % interval (what "1.96" stands for).
Z95 = NormalDist().inv_cdf(0.975)

#: Within this of 0.5 a floating-point S is checked exactly (the product of
#: a few thousand factors is off by far less).
_NEAR_HALF = 1e-9


@dataclass(frozen=True, slots=True)
class Estimate:
    """The Kaplan–Meier estimate of one group: its steps, one per distinct event time."""

    events: Sequence[int]  # event times (µs), ascending
    censored: Sequence[int]  # censoring times (µs), ascending
    times: list[int]  # the distinct event times
    responses: list[int]  # d at each
    at_risk: list[int]  # n at each
    survival: list[float]  # S just after each
    variance: list[float]  # V (the Greenwood sum) just after each

    @property
    def programmes(self) -> int:
        return len(self.events) + len(self.censored)

    def _step(self, t_us: int) -> int:
        """The index of the last step at or before t, or -1."""
        return bisect_right(self.times, t_us) - 1

    def survival_at(self, t_us: int) -> float:
        i = self._step(t_us)
        return self.survival[i] if i >= 0 else 1.0

    def interval_at(self, t_us: int, z: float = Z95) -> tuple[float, float]:
        """The log-log interval of S at t: (lower, upper)."""
        i = self._step(t_us)
        if i < 0:
            return 1.0, 1.0
        return log_log_interval(self.survival[i], self.variance[i], z)

    def at_risk_at(self, t_us: int) -> int:
        """Programmes whose time is ≥ t."""
        return (len(self.events) - bisect_left(self.events, t_us)
                + len(self.censored) - bisect_left(self.censored, t_us))

    def median(self) -> int | None:
        """The smallest event time with S ≤ 0.5 (µs), or None: not reached."""
        for i, s in enumerate(self.survival):
            if s < 0.5 - _NEAR_HALF or (s <= 0.5 + _NEAR_HALF and self._exactly_at_most_half(i)):
                return self.times[i]
        return None

    def _exactly_at_most_half(self, index: int) -> bool:
        survival = Fraction(1)
        for n, d in zip(self.at_risk[:index + 1], self.responses[:index + 1], strict=True):
            survival *= Fraction(n - d, n)
        return survival <= Fraction(1, 2)

    def median_interval(self, z: float = Z95) -> tuple[int | None, int | None]:
        """Brookmeyer–Crowley: the first event times where the lower and the upper
        bound of S reach 0.5 (µs; None: not reached)."""
        low = high = None
        for i, time in enumerate(self.times):
            lower, upper = log_log_interval(self.survival[i], self.variance[i], z)
            if low is None and lower <= 0.5:
                low = time
            if upper <= 0.5:
                high = time
                break
        return low, high


def log_log_interval(survival: float, variance: float, z: float = Z95) -> tuple[float, float]:
    """`S^exp(∓z √V / ln S)`: (lower, upper) of S; 1–1 at S = 1, 0–0 at S = 0."""
    if survival >= 1.0:
        return 1.0, 1.0
    if survival <= 0.0:
        return 0.0, 0.0
    log_s = math.log(survival)
    spread = z * math.sqrt(variance) / log_s  # negative: ln S < 0
    return survival ** math.exp(-spread), survival ** math.exp(spread)


def estimate(events: Sequence[int], censored: Sequence[int]) -> Estimate:
    """The Kaplan–Meier estimate from ascending event and censoring times (µs)."""
    times: list[int] = []
    responses: list[int] = []
    at_risk: list[int] = []
    survival: list[float] = []
    variance: list[float] = []
    total_events = len(events)
    total_censored = len(censored)
    s = 1.0
    v = 0.0
    i = 0
    while i < total_events:
        t = events[i]
        j = bisect_right(events, t, i)
        d = j - i
        # Censorings at t are still at risk at t (events come first).
        n = total_events - i + total_censored - bisect_left(censored, t)
        s *= (n - d) / n
        if n > d:
            v += d / (n * (n - d))
        times.append(t)
        responses.append(d)
        at_risk.append(n)
        survival.append(s)
        variance.append(v)
        i = j
    return Estimate(events, censored, times, responses, at_risk, survival, variance)


#: The days at which the cumulative response is reported (docs/metrics.md).
REPORT_DAYS = (7, 14, 28, 42, 56, 84)


def _round(value: float | None) -> float | None:
    return round(value, 6) if value is not None else None


def _days(value_us: int | None) -> float | None:
    return _round(value_us / US_PER_DAY) if value_us is not None else None


def _cumulative(estimate: Estimate, day: int) -> tuple[float, list[float]]:
    """Cumulative response by the end of `day`, and its interval (1 − the bounds of S)."""
    t = day * US_PER_DAY
    lower, upper = estimate.interval_at(t)
    return 1 - estimate.survival_at(t), [1 - upper, 1 - lower]


def time_to_response(events: Sequence[int], censored: Sequence[int]) -> dict[str, object]:
    """The figures the dashboards show for one group, from its ascending event and
    censoring times (µs): the median with its interval, the cumulative response
    at REPORT_DAYS with its interval and the number at risk (null where nobody
    is followed that long), and the curve.

    The curve is the estimate at the end of each whole day from 0 to the last
    day anyone is followed (at most the last of REPORT_DAYS), listed where it
    changes: a bounded size however many programmes there are. Each of its
    values is the estimate at its day, to 4 decimals (a hundredth of a
    percentage point: enough to draw); a step inside a day is drawn at the
    day's end. The table at REPORT_DAYS has 6 decimals, as every figure.
    """
    estimate_ = estimate(events, censored)
    median = estimate_.median()
    low, high = estimate_.median_interval()
    at_days = []
    for day in REPORT_DAYS:
        at_risk = estimate_.at_risk_at(day * US_PER_DAY)
        if at_risk == 0:  # nobody followed that long: no estimate (as R's summary)
            at_days.append({"day": day, "cumulative": None, "ci95": None, "at_risk": 0})
            continue
        cumulative, interval = _cumulative(estimate_, day)
        at_days.append({"day": day, "cumulative": _round(cumulative),
                        "ci95": [_round(v) for v in interval], "at_risk": at_risk})
    longest = max(events[-1] if events else 0, censored[-1] if censored else 0)
    last_day = min(REPORT_DAYS[-1], -(-longest // US_PER_DAY))
    curve: dict[str, list[float | None]] = {"day": [], "cumulative": [], "ci95_low": [],
                                            "ci95_high": []}
    previous = None
    for day in range(last_day + 1):
        cumulative, interval = _cumulative(estimate_, day)
        point = (round(cumulative, 4), round(interval[0], 4), round(interval[1], 4))
        if point != previous or day == last_day:
            curve["day"].append(day)
            curve["cumulative"].append(point[0])
            curve["ci95_low"].append(point[1])
            curve["ci95_high"].append(point[2])
            previous = point
    return {
        "programmes": estimate_.programmes,
        "responses": len(events),
        "censored": len(censored),
        "median_days": _days(median),
        "median_ci95": [_days(low), _days(high)],
        "at_days": at_days,
        "curve": curve,
    }
