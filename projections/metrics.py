"""The metric formulas of docs/metrics.md, as pure functions.

Each is a function of recorded values alone (never of the wall clock), so a
rebuild from history gives the same numbers. Times are whole microseconds
since the Unix epoch, so that sums of intervals are exact integers and do
not depend on the order in which they were added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

US_PER_DAY = 86_400_000_000
US_PER_WEEK = 7 * US_PER_DAY
#: Per-programme adherence enters clinic sums in millionths, so that the sums
#: are exact integers (a rebuild and an incremental update agree to the bit).
ADHERENCE_SCALE = 1_000_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch (its instant)."""
    return (moment - _EPOCH) // _ONE_US


def iso_week(moment: datetime) -> str:
    """The ISO week of an event, e.g. "2026-W10".

    Taken in the offset the clinic sent: the week the patient lived it.
    """
    day = moment.toordinal()  # of its own (local) date
    week = _WEEKS.get(day)
    if week is None:
        year, number, _ = moment.isocalendar()
        week = _WEEKS[day] = f"{year}-W{number:02d}"
    return week


#: ISO weeks by day (a few thousand days at most): formatting one costs more
#: than the rest of applying a session.
_WEEKS: dict[int, str] = {}


def is_responder(pain_nrs: int, baseline_pain: int) -> bool:
    """A report that counts as a response: at least 2 points and at least 30% below
    baseline (`pain ≤ baseline − 2` and `pain ≤ 0.7 × baseline`, compared exactly)."""
    return pain_nrs <= baseline_pain - 2 and 10 * pain_nrs <= 7 * baseline_pain


def is_substantial_responder(pain_nrs: int, baseline_pain: int) -> bool:
    """A substantial response: at least 2 points and at least 50% below baseline
    (`pain ≤ baseline − 2` and `pain ≤ 0.5 × baseline`, compared exactly)."""
    return pain_nrs <= baseline_pain - 2 and 2 * pain_nrs <= baseline_pain


def active_micros(start_us: int, end_us: int, pause_changes: Iterable[Sequence[int]]) -> int:
    """Time in the span [start_us, end_us] that the programme was not paused (µs):
    its exposure. `pause_changes` as for `prescribed_sessions`."""
    paused = False
    cursor = start_us
    active = 0
    for at, _position, value in sorted(pause_changes):
        at = min(max(at, start_us), end_us)
        if at > cursor:
            if not paused:
                active += at - cursor
            cursor = at
        paused = bool(value)
    if end_us > cursor and not paused:
        active += end_us - cursor
    return active


def prescribed_sessions(
    start_us: int,
    end_us: int,
    plan_changes: Iterable[Sequence[int]],
    pause_changes: Iterable[Sequence[int]],
) -> float:
    """Sessions prescribed over the span [start_us, end_us].

    `plan_changes` are `(occurred_us, position, sessions_per_week)`, the
    start's plan among them; `pause_changes` are `(occurred_us, position,
    paused)` with paused 1 for a pause and 0 for a resume. Each takes effect at
    its occurred time; changes at the same moment apply in record order
    (position). For every interval with one plan in force and no pause, add
    `sessions_per_week × interval_days / 7`.
    """
    timeline = sorted(
        [(at, position, 0, value) for at, position, value in plan_changes]
        + [(at, position, 1, value) for at, position, value in pause_changes]
    )
    per_week = 0
    paused = False
    cursor = start_us
    session_micros = 0  # sessions_per_week × microseconds, summed exactly
    for at, _position, kind, value in timeline:
        at = min(max(at, start_us), end_us)
        if at > cursor:
            if not paused:
                session_micros += per_week * (at - cursor)
            cursor = at
        if kind == 0:
            per_week = value
        else:
            paused = bool(value)
    if end_us > cursor and not paused:
        session_micros += per_week * (end_us - cursor)
    return session_micros / US_PER_WEEK


def adherence(sessions_completed: int, prescribed: float) -> float | None:
    """`min(1, completed / prescribed)`; None when fewer than one session was prescribed."""
    if prescribed < 1:
        return None
    return min(1.0, sessions_completed / prescribed)


def days(interval_us: int) -> float:
    """An interval in days (a real number)."""
    return interval_us / US_PER_DAY


def mean(total: float, count: int) -> float | None:
    return total / count if count else None


def median(ordered: Sequence[float]) -> float | None:
    """The median of values already in ascending order; None when there are none."""
    n = len(ordered)
    if n == 0:
        return None
    middle = n // 2
    if n % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def in_order(counts: Mapping[str, int], known: tuple[str, ...]) -> dict[str, int]:
    """Counts in docs/metrics.md's order (any other category after, sorted): the same
    totals always render to the same bytes, however they were built or stored."""
    ordered = {key: counts.get(key, 0) for key in known}
    ordered.update(sorted((k, v) for k, v in counts.items() if k not in ordered))
    return ordered
