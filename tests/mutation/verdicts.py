"""The surviving mutants that no test could kill, each with why.

A mutant is *equivalent* when the changed code behaves exactly like the
original for every input the service can give it; a test cannot fail on it,
so it is listed here with its reason instead. Keys are
"file: function: before  ->  after", as MUTATION.md shows them; a key that no
longer matches a survivor is reported as stale by `make mutation`.
"""

from __future__ import annotations

_METRICS = "projections/metrics.py"
_SUMMARIES = "projections/summaries.py"
_PROGRAMME = "domain/programme.py"
_EVENTS = "domain/events.py"

EQUIVALENT: dict[str, str] = {
    # ---- projections/metrics.py
    f"{_METRICS}: iso_week: week = _WEEKS.get(day)  ->  week = None":
        "the cache of weeks is skipped: every week is computed afresh, to the same text",
    f"{_METRICS}: iso_week: week = _WEEKS.get(day)  ->  week = _WEEKS.get(None)":
        "no day is cached under None: every week is computed afresh, to the same text",
    f"{_METRICS}: prescribed_sessions: + [(at, position, 1, value) for at, position, value "
    "in pause_changes]  ->  + [(at, position, 2, value) for at, position, value in "
    "pause_changes]":
        "the kind only tells plans (0) from pauses (anything else); positions are unique, "
        "so it never decides the order",
    f"{_METRICS}: prescribed_sessions: per_week = 0  ->  per_week = None":
        "the start's plan is the first change (at the start, the lowest position): it "
        "replaces the initial value before any interval is added",
    f"{_METRICS}: prescribed_sessions: per_week = 0  ->  per_week = 1":
        "the start's plan is the first change (at the start, the lowest position): it "
        "replaces the initial value before any interval is added",
    f"{_METRICS}: prescribed_sessions: paused = False  ->  paused = None":
        "None is as false as False, and it is only ever tested for truth",
    f"{_METRICS}: prescribed_sessions: if at > cursor:  ->  if at >= cursor:":
        "at == cursor adds per_week x 0 and moves the cursor where it already is",
    f"{_METRICS}: prescribed_sessions: if end_us > cursor and not paused:  ->  "
    "if end_us >= cursor and not paused:":
        "end_us == cursor adds per_week x 0",
}
