"""Clinic dashboards: one precomputed row per clinic.

What it stores: each clinic's *totals* (JSON) and the *dashboard* rendered
from them, so that a read is one row. How the totals change:

- each event adds its own share to a *delta* (a completed session, its
  minutes and its ISO week; a pain report in its week; an adverse event —
  summaries.apply_event);
- each programme adds a *contribution* (its status, outcome, setting,
  starting modality, adherence, whether it has reports and responded, days
  to response, pain change — summaries.contribution); when a programme
  changes, its old contribution is taken out of the delta and the new one
  put in;
- a batch's deltas are added to its clinics' totals and to the network's
  (`apply_delta`).

Every total is an integer, a count or a sorted list of integers, so taking
out and putting in is exact: the totals equal a recount from scratch, in any
order and with any batching. `dashboard` turns totals into the metrics of
domain.md, per clinic.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any

from domain.vocabulary import MODALITIES, OUTCOMES, SETTINGS, SEVERITIES, STATUSES
from projections import metrics

# The categories of domain.md are always shown (zero when there are none).

Totals = dict[str, Any]

#: A week's totals: [sessions completed, sum of reported pain, pain reports].
WEEK_SESSIONS, WEEK_PAIN_SUM, WEEK_REPORTS = range(3)


def new_totals() -> Totals:
    return {
        "programmes": 0,
        "status": dict.fromkeys(STATUSES, 0),
        "outcome": dict.fromkeys(OUTCOMES, 0),
        "setting": dict.fromkeys(SETTINGS, 0),
        "modality": dict.fromkeys(MODALITIES, 0),
        "sessions": 0,
        "minutes": 0,
        "adverse": dict.fromkeys(SEVERITIES, 0),
        "adherence_sum": 0,  # in millionths (metrics.ADHERENCE_SCALE)
        "adherence_n": 0,
        "reported": 0,
        "pain_change_sum": 0,
        "responders": 0,
        "response_us": [],  # sorted: start -> first qualifying report, per responder
        "weeks": {},  # "2026-W10" -> [sessions, pain sum, reports]
    }


def new_delta() -> Totals:
    """What a batch adds to one clinic's totals: totals-shaped, plus the response
    times it takes out (`response_us` then holds those it puts in, unsorted)."""
    delta = new_totals()
    delta["response_us_removed"] = []
    return delta


def _count(counts: dict[str, int], key: str, amount: int) -> None:
    counts[key] = counts.get(key, 0) + amount


def apply_contribution(delta: Totals, contribution: list[Any], sign: int) -> None:
    """Put a programme's contribution in (sign 1) or take it out (sign -1) of a delta."""
    (status, outcome, setting, modality, adherence_millionths, reported, responded,
     response_us, pain_change) = contribution
    delta["programmes"] += sign
    _count(delta["status"], status, sign)
    if outcome is not None:
        _count(delta["outcome"], outcome, sign)
    _count(delta["setting"], setting, sign)
    _count(delta["modality"], modality, sign)
    if adherence_millionths is not None:
        delta["adherence_sum"] += sign * adherence_millionths
        delta["adherence_n"] += sign
    if reported:
        delta["reported"] += sign
        delta["pain_change_sum"] += sign * pain_change
    if responded:
        delta["responders"] += sign
        delta["response_us" if sign > 0 else "response_us_removed"].append(response_us)


_SCALARS = ("programmes", "sessions", "minutes", "adherence_sum", "adherence_n", "reported",
            "pain_change_sum", "responders")
_COUNTS = ("status", "outcome", "setting", "modality", "adverse")


def _add_common(into: Totals, delta: Totals) -> None:
    for key in _SCALARS:
        into[key] += delta[key]
    for key in _COUNTS:
        counts = into[key]
        for name, amount in delta[key].items():
            if amount:
                counts[name] = counts.get(name, 0) + amount
    weeks = into["weeks"]
    for week, values in delta["weeks"].items():
        target = weeks.get(week)
        if target is None:
            weeks[week] = list(values)
        else:
            target[0] += values[0]
            target[1] += values[1]
            target[2] += values[2]


def combine(into: Totals, delta: Totals) -> None:
    """Add one delta to another."""
    _add_common(into, delta)
    into["response_us"].extend(delta["response_us"])
    into["response_us_removed"].extend(delta["response_us_removed"])


def apply_delta(totals: Totals, delta: Totals) -> None:
    """Add a delta to totals (exact: counts and integer sums, a sorted list)."""
    _add_common(totals, delta)
    values = totals["response_us"]
    for value in delta["response_us_removed"]:
        index = bisect_left(values, value)
        if index == len(values) or values[index] != value:
            raise ValueError("taking out a response time that was never put in")
        del values[index]
    added = delta["response_us"]
    if len(added) > 16:
        values.extend(added)
        values.sort()
    else:
        for value in added:
            insort(values, value)


def _round(value: float | None) -> float | None:
    return round(value, 6) if value is not None else None


def in_order(counts: dict[str, int], known: tuple[str, ...]) -> dict[str, int]:
    """Counts in domain.md's order (any other category after, sorted): the same
    totals always render to the same bytes, however they were built or stored."""
    ordered = {key: counts.get(key, 0) for key in known}
    ordered.update(sorted((k, v) for k, v in counts.items() if k not in ordered))
    return ordered


def dashboard(totals: Totals) -> dict[str, Any]:
    """The metrics of domain.md for one clinic (or the network), from its totals."""
    median_us = metrics.median(totals["response_us"])
    return {
        "programmes": totals["programmes"],
        "by_status": in_order(totals["status"], STATUSES),
        "discharged_by_outcome": in_order(totals["outcome"], OUTCOMES),
        "by_setting": in_order(totals["setting"], SETTINGS),
        "by_starting_modality": in_order(totals["modality"], MODALITIES),
        "sessions_completed": totals["sessions"],
        "minutes_completed": totals["minutes"],
        "adverse_events": in_order(totals["adverse"], SEVERITIES),
        "mean_adherence": _round(
            metrics.mean(totals["adherence_sum"] / metrics.ADHERENCE_SCALE,
                         totals["adherence_n"])
        ),
        "programmes_with_adherence": totals["adherence_n"],
        "responder_rate": _round(metrics.rate(totals["responders"], totals["reported"])),
        "responders": totals["responders"],
        "programmes_with_reports": totals["reported"],
        "median_days_to_response": _round(
            metrics.days(median_us) if median_us is not None else None  # type: ignore[arg-type]
        ),
        "mean_pain_change": _round(metrics.mean(totals["pain_change_sum"], totals["reported"])),
        "weekly": [
            {
                "week": week,
                "sessions_completed": values[WEEK_SESSIONS],
                "pain_reports": values[WEEK_REPORTS],
                "mean_pain": _round(metrics.mean(values[WEEK_PAIN_SUM], values[WEEK_REPORTS])),
            }
            for week, values in sorted(totals["weeks"].items())
        ],
    }


def clinic_dashboard(clinic_id: str, totals: Totals) -> dict[str, Any]:
    return {"clinic_id": clinic_id, **dashboard(totals)}
