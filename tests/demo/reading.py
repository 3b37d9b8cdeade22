"""Reading a programme's history the way docs/metrics.md defines its metrics.

Shared by the demo tests: they check the simulated histories (as posted, and
as stored) against the domain's own definitions, not the simulation's intent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any


def is_response(pain_nrs: int, baseline: int) -> bool:
    """docs/metrics.md: pain <= baseline - 2 and pain <= 0.7 x baseline."""
    return pain_nrs <= baseline - 2 and pain_nrs <= 0.7 * baseline


def current_pain_reports(events: Iterable[dict[str, Any]]) -> list[tuple[datetime, int]]:
    """Each PainReported's (occurred_at, pain_nrs), with corrections applied."""
    events = list(events)
    reports = {e["event_id"]: e for e in events if e["type"] == "PainReported"}
    pain = {event_id: e["data"]["pain_nrs"] for event_id, e in reports.items()}
    for e in events:
        if e["type"] == "EntryCorrected" and str(e["data"]["corrects"]) in pain:
            pain[str(e["data"]["corrects"])] = e["data"]["data"]["pain_nrs"]
    return sorted((datetime.fromisoformat(reports[i]["occurred_at"]), p) for i, p in pain.items())


def responded(events: Sequence[dict[str, Any]]) -> bool | None:
    """Whether any report qualifies as a response; None without reports."""
    baseline = events[0]["data"]["baseline"]["pain_nrs"]
    reports = current_pain_reports(events)
    if not reports:
        return None
    return any(is_response(pain, baseline) for _, pain in reports)


def late_events(events_in_posting_order: Iterable[dict[str, Any]]) -> int:
    """Events whose occurred_at is earlier than that of an event posted before them."""
    latest: datetime | None = None
    late = 0
    for event in events_in_posting_order:
        moment = datetime.fromisoformat(event["occurred_at"])
        if latest is not None and moment < latest:
            late += 1
        latest = moment if latest is None else max(latest, moment)
    return late
