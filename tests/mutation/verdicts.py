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
    # ---- projections/summaries.py
    f"{_SUMMARIES}: _pain_reported: if latest is None or (at, position) > "
    "(reports[latest][AT], reports[latest][POSITION]):  ->  if latest is None or "
    "(at, position) >= (reports[latest][AT], reports[latest][POSITION]):":
        "positions are unique, so two reports' (time, position) are never equal",
    **{
        f"{_SUMMARIES}: _adverse_event: {target} = {source}.get(severity, 0) + 1  ->  "
        f"{target} = {source}.get(severity, {default}) + 1":
            "the default is never used: the state's and the delta's counts start with every "
            "severity at 0, and severities are checked against that vocabulary"
        for target, source in (('adverse[severity]', 'adverse'),
                               ('delta["adverse"][severity]', 'delta["adverse"]'))
        for default in ("None", "", "1")
    },
    f"{_SUMMARIES}: _paused: state[\"pauses\"].append([metrics.micros(event.occurred_at), "
    "position, 1])  ->  state[\"pauses\"].append([metrics.micros(event.occurred_at), "
    "position, 2])":
        "prescribed_sessions reads it as bool(value): 2 is as paused as 1",
    f"{_SUMMARIES}: measure: first_response is None or report[AT] < first_response  ->  "
    "first_response is None or report[AT] <= first_response":
        "on equal times the earliest response time is replaced by the same time",
    f"{_SUMMARIES}: contribution: 1 if state[\"reports\"] else 0,  ->  "
    "2 if state[\"reports\"] else 0,":
        "dashboards.apply_contribution only tests the flag for truth",
    f"{_SUMMARIES}: contribution: 1 if measures.responded else 0,  ->  "
    "2 if measures.responded else 0,":
        "dashboards.apply_contribution only tests the flag for truth",
    # ---- domain/events.py (tests/mutation/ast_mutator.py)
    f"{_EVENTS}: number: required=True  ->  required=False":
        "the default is never used: the one number field, the force, is declared optional",
    f"{_EVENTS}: pattern: personal=False  ->  personal=True":
        "the default is never used: the one pattern field, patient_ref, is declared personal",
    **{
        f"{_EVENTS}: {function}: return Field(name, Kind.{kind}, description, required{rest})"
        f"  ->  return Field(name, Kind.{kind}, description{rest})":
            "every call leaves required at True, which is also Field's own default"
        for function, kind, rest in (
            ("boolean", "BOOLEAN", ""),
            ("pattern", "PATTERN", ", pattern=regex, personal=personal"),
            ("uuid_field", "UUID", ""),
            ("object_of", "OBJECT", ", fields=fields, checks=checks"),
        )
    },
}
