"""Clinic dashboards: one precomputed row per clinic.

What it stores: each clinic's *totals* (JSON) and the *dashboard* rendered
from them, so that a read is one row. How the totals change:

- each event adds its own share to a *delta* (a completed session, its
  minutes and its ISO week; a pain report in its week; an adverse event —
  summaries.apply_event);
- each programme adds a *contribution* (its status, outcome, condition,
  baseline, adherence, pain change, times to response or censoring,
  sessions, adverse events, exposure — summaries.contribution) to the
  *cell* of its setting and starting modality; when a programme changes, its
  old contribution is taken out of the delta and the new one put in;
- a batch's deltas are added to its clinics' totals and to the network's
  (`apply_delta`).

Every total is an integer, a count or a sorted list of integers, so taking
out and putting in is exact: the totals equal a recount from scratch, in any
order and with any batching. A *cohort* — the whole clinic, one setting, one
starting modality — is a sum of cells, so comparisons need no more storage
than the cells. The network keeps the cells' counts but not their lists of
times (they would make its row as big as every clinic's together): its time
to response is computed from the clinics' lists when it is rendered.

`dashboard` turns totals into the metrics of docs/metrics.md; rendering happens
once per written batch (engine.flush), never per request.
"""

from __future__ import annotations

import json
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

from domain.vocabulary import CONDITIONS, MODALITIES, OUTCOMES, SETTINGS, SEVERITIES, STATUSES
from projections import intervals, metrics, survival
from projections.metrics import in_order
from projections.summaries import STATE_FORMAT

Totals = dict[str, Any]
Cell = dict[str, Any]

#: A week's totals: [sessions completed, sum of reported pain, pain reports].
WEEK_SESSIONS, WEEK_PAIN_SUM, WEEK_REPORTS = range(3)

#: The lists of times in a cell: responses and censorings, moderate and substantial.
TIME_LISTS = ("moderate", "moderate_censored", "substantial", "substantial_censored")

#: A comparison's groups differ at baseline when two of at least this many
#: programmes differ by at least 1.0 point of mean baseline pain or by at
#: least 20 percentage points in the share of any condition (docs/metrics.md).
BASELINE_MIN_GROUP = 5


def new_totals() -> Totals:
    return {
        "format": STATE_FORMAT,
        "sessions": 0,
        "minutes": 0,
        "adverse": {},
        "weeks": {},  # "2026-W10" -> [sessions, pain sum, reports]
        "cells": {},  # "in_office/mechanical_table" -> a cell
    }


def new_cell() -> Cell:
    return {
        "programmes": 0,
        "status": {},
        "outcome": {},
        "condition": {},
        "baseline_sum": 0,
        "adherence_sum": 0,  # in millionths (metrics.ADHERENCE_SCALE)
        "adherence_n": 0,
        "reported": 0,
        "pain_change_sum": 0,
        "pain_change_squares": 0,
        "responders": 0,
        "substantial_responders": 0,
        "discharged_responders": 0,
        "discharged_substantial_responders": 0,
        "sessions": 0,
        "adverse": {},
        "exposure_us": 0,
        # Sorted: start -> response, or -> the last report for a non-responder (µs).
        "times": {name: [] for name in TIME_LISTS},
    }


def new_delta() -> Totals:
    """What a batch adds to one clinic's totals: totals-shaped; a delta cell's
    `times` hold the times it puts in (unsorted), `removed` those it takes out."""
    return new_totals()


def cell_key(setting: str, modality: str) -> str:
    return f"{setting}/{modality}"


def _count(counts: dict[str, int], key: str, amount: int) -> None:
    counts[key] = counts.get(key, 0) + amount


def _delta_cell(delta: Totals, key: str) -> Cell:
    cell = delta["cells"].get(key)
    if cell is None:
        cell = delta["cells"][key] = new_cell()
        cell["removed"] = {name: [] for name in TIME_LISTS}
    return cell


def apply_contribution(delta: Totals, contribution: list[Any], sign: int) -> None:
    """Put a programme's contribution in (sign 1) or take it out (sign -1) of a delta."""
    (status, outcome, setting, modality, condition, baseline, adherence_millionths, reported,
     pain_change, moderate_us, moderate, substantial_us, substantial, sessions, adverse,
     exposure_us) = contribution
    cell = _delta_cell(delta, cell_key(setting, modality))
    cell["programmes"] += sign
    _count(cell["status"], status, sign)
    if outcome is not None:
        _count(cell["outcome"], outcome, sign)
    _count(cell["condition"], condition, sign)
    cell["baseline_sum"] += sign * baseline
    if adherence_millionths is not None:
        cell["adherence_sum"] += sign * adherence_millionths
        cell["adherence_n"] += sign
    if reported:
        cell["reported"] += sign
        cell["pain_change_sum"] += sign * pain_change
        cell["pain_change_squares"] += sign * pain_change * pain_change
    discharged = status == "discharged"
    cell["responders"] += sign * moderate
    cell["substantial_responders"] += sign * substantial
    if discharged:
        cell["discharged_responders"] += sign * moderate
        cell["discharged_substantial_responders"] += sign * substantial
    cell["sessions"] += sign * sessions
    for severity, amount in zip(SEVERITIES, adverse, strict=True):
        if amount:
            _count(cell["adverse"], severity, sign * amount)
    cell["exposure_us"] += sign * exposure_us
    lists = cell["times"] if sign > 0 else cell["removed"]
    lists["moderate" if moderate else "moderate_censored"].append(moderate_us)
    lists["substantial" if substantial else "substantial_censored"].append(substantial_us)


_CELL_SCALARS = ("programmes", "baseline_sum", "adherence_sum", "adherence_n", "reported",
                 "pain_change_sum", "pain_change_squares", "responders",
                 "substantial_responders", "discharged_responders",
                 "discharged_substantial_responders", "sessions", "exposure_us")
_CELL_COUNTS = ("status", "outcome", "condition", "adverse")


def _add_counts(counts: dict[str, int], more: Mapping[str, int]) -> None:
    for name, amount in more.items():
        if amount:
            value = counts.get(name, 0) + amount
            if value:
                counts[name] = value
            else:  # a category counted out again leaves no trace: the same bytes as a recount
                del counts[name]


def _add_cell(into: Cell, cell: Cell) -> None:
    for key in _CELL_SCALARS:
        into[key] += cell[key]
    for key in _CELL_COUNTS:
        _add_counts(into[key], cell[key])


def _add_events(into: Totals, delta: Totals) -> None:
    into["sessions"] += delta["sessions"]
    into["minutes"] += delta["minutes"]
    _add_counts(into["adverse"], delta["adverse"])
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
    _add_events(into, delta)
    for key, cell in delta["cells"].items():
        target = _delta_cell(into, key)
        _add_cell(target, cell)
        for name in TIME_LISTS:
            target["times"][name].extend(cell["times"][name])
            target["removed"][name].extend(cell["removed"][name])


def apply_delta(totals: Totals, delta: Totals, *, times: bool = True) -> None:
    """Add a delta to totals (exact: counts and integer sums, sorted lists).

    `times=False` (the network) keeps the counts only, not the lists of times.
    """
    _add_events(totals, delta)
    cells = totals["cells"]
    for key, change in delta["cells"].items():
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = new_cell()
        _add_cell(cell, change)
        if not times:
            continue
        for name in TIME_LISTS:
            values = cell["times"][name]
            for value in change["removed"][name]:
                index = bisect_left(values, value)
                if index == len(values) or values[index] != value:
                    raise ValueError("taking out a time that was never put in")
                del values[index]
            added = change["times"][name]
            if len(added) > 16:
                values.extend(added)
                values.sort()
            else:
                for value in added:
                    insort(values, value)


# ---- rendering ------------------------------------------------------------------------


def _round(value: float | None) -> float | None:
    return round(value, 6) if value is not None else None


def _interval(bounds: Sequence[float] | None) -> list[float | None] | None:
    return [_round(bounds[0]), _round(bounds[1])] if bounds is not None else None


def _sum_cells(cells: Iterable[Cell]) -> Cell:
    total = new_cell()
    for cell in cells:
        _add_cell(total, cell)
    return total


def _merged(time_cells: Sequence[Cell], name: str) -> list[int]:
    lists = [cell["times"][name] for cell in time_cells if cell["times"][name]]
    if len(lists) == 1:
        return lists[0]
    return sorted(chain.from_iterable(lists))  # sorted runs: timsort merges them


@lru_cache(maxsize=64)
def _estimated(events: tuple[int, ...], censored: tuple[int, ...]) -> str:
    return json.dumps(survival.time_to_response(events, censored))


def _time_to_response(events: list[int], censored: list[int]) -> dict[str, Any]:
    """survival.time_to_response, remembered by its exact input: a batch that moved no
    cohort's times (sessions, say, or another clinic's reports) estimates nothing again.
    Kept as JSON, so no caller can change what the next one gets."""
    return json.loads(_estimated(tuple(events), tuple(censored)))


def _rate(part: int, whole: int) -> dict[str, Any]:
    return {"responders": part, "programmes": whole,
            "rate": _round(metrics.rate(part, whole)),
            "ci95": _interval(intervals.wilson(part, whole))}


def _per_100(events: int, exposure: float) -> dict[str, Any]:
    rated = intervals.poisson_rate(events, exposure)
    return {"events": events,
            "rate": _round(rated[0]) if rated else None,
            "ci95": _interval(rated[1]) if rated else None}


def cohort(cells: Sequence[Cell], time_cells: Sequence[Cell]) -> dict[str, Any]:
    """The figures of one cohort: the sum of `cells`, with its times from `time_cells`
    (the same cells for a clinic; the clinics' cells for the network)."""
    c = _sum_cells(cells)
    n = c["programmes"]
    discharged = c["status"].get("discharged", 0)
    adverse = sum(c["adverse"].values())
    weeks = c["exposure_us"] / metrics.US_PER_WEEK
    moderate = _merged(time_cells, "moderate")
    pain_change = intervals.t_interval(c["pain_change_sum"], c["pain_change_squares"],
                                       c["reported"])
    return {
        "programmes": n,
        "mean_baseline_pain": _round(metrics.mean(c["baseline_sum"], n)),
        "conditions": in_order(c["condition"], CONDITIONS),
        "responder_rates": {
            "moderate": {"among_reported": _rate(c["responders"], c["reported"]),
                         "among_discharged": _rate(c["discharged_responders"], discharged)},
            "substantial": {
                "among_reported": _rate(c["substantial_responders"], c["reported"]),
                "among_discharged": _rate(c["discharged_substantial_responders"], discharged)},
        },
        "time_to_response": {
            "moderate": _time_to_response(moderate, _merged(time_cells, "moderate_censored")),
            "substantial": _time_to_response(_merged(time_cells, "substantial"),
                                             _merged(time_cells, "substantial_censored")),
        },
        "median_days_to_response_among_responders": _round(
            metrics.days(m) if (m := metrics.median(moderate)) is not None else None),
        "pain_change": {
            "programmes": c["reported"],
            "mean": _round(pain_change[0]) if pain_change else None,
            "ci95": _interval(pain_change[1]) if pain_change else None,
        },
        "mean_adherence": _round(metrics.mean(c["adherence_sum"] / metrics.ADHERENCE_SCALE,
                                              c["adherence_n"])),
        "programmes_with_adherence": c["adherence_n"],
        "sessions_completed": c["sessions"],
        "programme_weeks": _round(weeks),
        "adverse_events": in_order(c["adverse"], SEVERITIES),
        "adverse_event_rates": {
            "per_100_sessions": _per_100(adverse, c["sessions"]),
            "per_100_programme_weeks": _per_100(adverse, weeks),
        },
    }


def baseline_check(groups: Sequence[tuple[str, Cell]]) -> dict[str, Any]:
    """Who was compared: do the groups (of at least BASELINE_MIN_GROUP programmes)
    differ at baseline? Compared exactly, in whole numbers."""
    eligible = [(name, c) for name, c in groups if c["programmes"] >= BASELINE_MIN_GROUP]
    differences = []
    for i, (a, ca) in enumerate(eligible):
        for b, cb in eligible[i + 1:]:
            na, nb = ca["programmes"], cb["programmes"]
            # |sa/na − sb/nb| ≥ 1  ⇔  |sa·nb − sb·na| ≥ na·nb
            gap = ca["baseline_sum"] * nb - cb["baseline_sum"] * na
            if abs(gap) >= na * nb:
                differences.append({"groups": [a, b], "measure": "mean_baseline_pain",
                                    "condition": None, "difference": _round(gap / (na * nb))})
            for condition in in_order({**ca["condition"], **cb["condition"]}, CONDITIONS):
                # |ka/na − kb/nb| ≥ 0.2  ⇔  5·|ka·nb − kb·na| ≥ na·nb
                ka, kb = ca["condition"].get(condition, 0), cb["condition"].get(condition, 0)
                gap = ka * nb - kb * na
                if 5 * abs(gap) >= na * nb:
                    differences.append({"groups": [a, b], "measure": "condition_share",
                                        "condition": condition,
                                        "difference": _round(gap / (na * nb))})
    return {"differ_at_baseline": bool(differences), "baseline_differences": differences}


def _comparison(groups: Sequence[tuple[str, list[Cell], list[Cell]]]) -> dict[str, Any]:
    present = [(name, cells, time_cells) for name, cells, time_cells in groups
               if sum(cell["programmes"] for cell in cells)]
    return {
        "groups": [{"group": name, **cohort(cells, time_cells)}
                   for name, cells, time_cells in present],
        **baseline_check([(name, _sum_cells(cells)) for name, cells, _ in present]),
    }


def _grouped(cells: Mapping[str, Cell], side: int, names: tuple[str, ...]) -> dict[str, list[str]]:
    """Cell keys by setting (side 0) or by starting modality (side 1), in the docs' order."""
    keys: dict[str, list[str]] = {name: [] for name in names}
    for key in sorted(cells):
        keys.setdefault(key.split("/")[side], []).append(key)
    return keys


def dashboard(totals: Totals, time_sources: Sequence[Totals] | None = None) -> dict[str, Any]:
    """The metrics of docs/metrics.md for one clinic (or the network), from its totals.

    `time_sources`: the totals whose cells hold the lists of times (the clinics,
    for the network); a clinic's own by default.
    """
    sources = [totals] if time_sources is None else list(time_sources)
    cells = totals["cells"]

    def time_cells(keys: Iterable[str]) -> list[Cell]:
        wanted = set(keys)
        return [cell for source in sources for key, cell in sorted(source["cells"].items())
                if key in wanted]

    every = cohort([cells[key] for key in sorted(cells)], time_cells(cells))
    whole = _sum_cells(cells.values())
    comparisons = {}
    for field, side, names in (("setting", 0, SETTINGS), ("starting_modality", 1, MODALITIES)):
        grouped = _grouped(cells, side, names)
        comparisons[field] = _comparison([
            (name, [cells[key] for key in keys], time_cells(keys))
            for name, keys in grouped.items()
        ])
    moderate = every["responder_rates"]["moderate"]
    return {
        "programmes": whole["programmes"],
        "by_status": in_order(whole["status"], STATUSES),
        "discharged_by_outcome": in_order(whole["outcome"], OUTCOMES),
        "by_setting": {name: sum(cells[key]["programmes"] for key in keys)
                       for name, keys in _grouped(cells, 0, SETTINGS).items()},
        "by_starting_modality": {name: sum(cells[key]["programmes"] for key in keys)
                                 for name, keys in _grouped(cells, 1, MODALITIES).items()},
        "sessions_completed": totals["sessions"],
        "minutes_completed": totals["minutes"],
        "adverse_events": in_order(totals["adverse"], SEVERITIES),
        "mean_adherence": every["mean_adherence"],
        "programmes_with_adherence": every["programmes_with_adherence"],
        "responder_rate": moderate["among_reported"]["rate"],
        "responders": whole["responders"],
        "programmes_with_reports": whole["reported"],
        "responder_rate_discharged": moderate["among_discharged"]["rate"],
        "responders_discharged": whole["discharged_responders"],
        "programmes_discharged": whole["status"].get("discharged", 0),
        # The older name of the median over responders, kept one release (deprecated).
        "median_days_to_response": every["median_days_to_response_among_responders"],
        "median_days_to_response_among_responders":
            every["median_days_to_response_among_responders"],
        "mean_pain_change": every["pain_change"]["mean"],
        "mean_baseline_pain": every["mean_baseline_pain"],
        "conditions": every["conditions"],
        "responder_rates": every["responder_rates"],
        "time_to_response": every["time_to_response"],
        "pain_change": every["pain_change"],
        "programme_weeks": every["programme_weeks"],
        "adverse_event_rates": every["adverse_event_rates"],
        "comparisons": comparisons,
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


def network_dashboard(totals: Totals, clinics: Mapping[str, Totals]) -> dict[str, Any]:
    """The network's metrics: its own totals, the times from every clinic, and the
    clinics compared (who was compared: each clinic's n, baseline pain and conditions)."""
    rendered = dashboard(totals, [clinics[clinic_id] for clinic_id in sorted(clinics)])
    groups = []
    for clinic_id in sorted(clinics):
        whole = _sum_cells(clinics[clinic_id]["cells"].values())
        if whole["programmes"]:
            groups.append((clinic_id, whole))
    rendered["comparisons"]["clinic"] = {
        "groups": [{"group": clinic_id, "programmes": c["programmes"],
                    "mean_baseline_pain": _round(metrics.mean(c["baseline_sum"],
                                                              c["programmes"])),
                    "conditions": in_order(c["condition"], CONDITIONS)}
                   for clinic_id, c in groups],
        **baseline_check(groups),
    }
    return rendered
