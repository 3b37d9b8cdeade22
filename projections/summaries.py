"""Programme summaries: one row per programme, with its pain trajectory.

What it stores: for each programme, a compact *state* (JSON) holding just
what the metrics need — the plan and pause timelines, the current data of
every session and pain report (corrections applied), counts — and the
*summary* computed from that state by the pure functions below. How each
event changes the state is `apply_event`; what the summary says is
`measure` + `summary` (docs/metrics.md, per programme).

Events are applied in record order (position); everything clinical is then
ordered by `occurred_at`, ties broken by the later recorded (the higher
position), so late and out-of-order events land where they happened.
`status` follows record order, as the aggregate's does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from domain.events import EVENT_TYPES as CATALOGUE
from domain.personal import ERASED, ERASURE_TYPE
from domain.vocabulary import SEVERITIES
from projections import metrics

#: The layout version of the states, contributions and clinic totals; bump it
#: (and rebuild) when any of them changes. 2: substantial response, censoring
#: times, exposure and cohort cells (time to response, who was compared).
STATE_FORMAT = 2

#: A report in the state: [occurred_us, position, occurred_at, pain_nrs,
#: odi_percent, sleep_quality_nrs, context].
AT, POSITION, OCCURRED_AT, PAIN, ODI, SLEEP, CONTEXT = range(7)

State = dict[str, Any]
#: What events add to their clinic's totals in a batch (dashboards.new_delta).
Delta = dict[str, Any]


class ProjectionError(Exception):
    """An event this projection cannot apply (it is parked, see projections.engine)."""


class UnknownEventType(ProjectionError):
    pass


def apply_event(state: State | None, type_name: str, event: Any, position: int,
                delta: Delta) -> State:
    """Apply one recorded event to its programme's state (None before the start).

    Adds to `delta` what the event adds to its clinic's totals (sessions,
    minutes, adverse events, weekly series). Returns the state (a new one for
    ProgrammeStarted, else the same object, changed). Call `settle` before
    reading a state that events were applied to.
    """
    if type_name == "ProgrammeStarted":
        if state is not None:
            raise ProjectionError("a second ProgrammeStarted for this programme")
        return _started(event, position)
    if state is None:
        raise ProjectionError(f"{type_name} for a programme this projection has not seen start")
    handler = _HANDLERS.get(type_name)
    if handler is None:
        raise UnknownEventType(f"no rule for events of type {type_name}")
    handler(state, event, position, delta)
    if type_name == ERASURE_TYPE:
        # The service's time, not a clinical one: the programme's times stay as they were.
        state["position"] = position
        return state
    # The greatest occurred_at so far, kept as a datetime until `settle`
    # (converting every event's time would cost more than the event).
    occurred = event.occurred_at
    latest = state.get("_last")
    if latest is None or occurred > latest:
        state["_last"] = occurred
    state["position"] = position
    return state


def settle(state: State) -> State:
    """Fold what apply_event kept aside into the state's stored fields."""
    latest = state.pop("_last", None)
    if latest is not None:
        at = metrics.micros(latest)
        if at > state["last"]:
            state["last"] = at
            state["last_at"] = latest.isoformat()
    return state


def _started(event: Any, position: int) -> State:
    data = event.data
    plan = data["plan"]
    at = metrics.micros(event.occurred_at)
    iso = event.occurred_at.isoformat()
    return {
        "format": STATE_FORMAT,
        "programme_id": event.programme_id,
        "clinic_id": event.clinic_id,
        "patient_ref": data["patient_ref"],
        "condition": data["condition"],
        "setting": data["setting"],
        "modality": plan["modality"],
        "start": at,
        "started_at": iso,
        "baseline": data["baseline"]["pain_nrs"],
        "status": "active",
        "outcome": None,
        "end": None,
        "discharged_at": None,
        "last": at,
        "last_at": iso,
        "sessions": {},  # event_id hex -> duration_minutes (current data)
        "minutes": 0,
        "missed": 0,
        "reports": {},  # event_id hex -> report (see AT, POSITION, ...)
        "latest": None,  # event_id hex of the latest report
        "plan": [[at, position, plan["sessions_per_week"]]],
        "pauses": [],
        "adverse": {"mild": 0, "moderate": 0, "severe": 0},
        "corrections": 0,
        "position": position,
        "contrib": None,
    }


def _week(delta: Delta, week: str) -> list[int]:
    values = delta["weeks"].get(week)
    if values is None:
        values = delta["weeks"][week] = [0, 0, 0]
    return values


def _session_completed(state: State, event: Any, position: int, delta: Delta) -> None:
    minutes = event.data["duration_minutes"]
    state["sessions"][event.event_id] = minutes
    state["minutes"] += minutes
    delta["sessions"] += 1
    delta["minutes"] += minutes
    _week(delta, metrics.iso_week(event.occurred_at))[0] += 1


def _session_missed(state: State, event: Any, position: int, delta: Delta) -> None:
    state["missed"] += 1


def _pain_reported(state: State, event: Any, position: int, delta: Delta) -> None:
    data = event.data
    occurred = event.occurred_at
    at = metrics.micros(occurred)
    pain = data["pain_nrs"]
    report = [at, position, occurred.isoformat(), pain, data.get("odi_percent"),
              data.get("sleep_quality_nrs"), data.get("context")]
    eid = event.event_id
    reports = state["reports"]
    latest = state["latest"]
    reports[eid] = report
    if latest is None or (at, position) > (reports[latest][AT], reports[latest][POSITION]):
        state["latest"] = eid
    values = _week(delta, metrics.iso_week(occurred))
    values[1] += pain
    values[2] += 1


def _plan_adjusted(state: State, event: Any, position: int, delta: Delta) -> None:
    per_week = event.data.get("sessions_per_week")
    if per_week is not None:
        state["plan"].append([metrics.micros(event.occurred_at), position, per_week])


def _adverse_event(state: State, event: Any, position: int, delta: Delta) -> None:
    severity = event.data["severity"]
    adverse = state["adverse"]
    adverse[severity] = adverse.get(severity, 0) + 1
    delta["adverse"][severity] = delta["adverse"].get(severity, 0) + 1


def _paused(state: State, event: Any, position: int, delta: Delta) -> None:
    state["pauses"].append([metrics.micros(event.occurred_at), position, 1])
    state["status"] = "paused"


def _resumed(state: State, event: Any, position: int, delta: Delta) -> None:
    state["pauses"].append([metrics.micros(event.occurred_at), position, 0])
    state["status"] = "active"


def _discharged(state: State, event: Any, position: int, delta: Delta) -> None:
    outcome = event.data["outcome"]
    state["status"] = "discharged"
    state["outcome"] = outcome
    state["end"] = metrics.micros(event.occurred_at)
    state["discharged_at"] = event.occurred_at.isoformat()


def _entry_corrected(state: State, event: Any, position: int, delta: Delta) -> None:
    data = event.data
    target = UUID(str(data["corrects"])).hex
    corrected = data["data"]
    if target in state["sessions"]:
        minutes = corrected["duration_minutes"]
        change = minutes - state["sessions"][target]
        state["sessions"][target] = minutes
        state["minutes"] += change
        delta["minutes"] += change
    elif target in state["reports"]:
        old = state["reports"][target]
        # The report keeps its place in time; only its data is replaced.
        new = old[:PAIN] + [corrected["pain_nrs"], corrected.get("odi_percent"),
                            corrected.get("sleep_quality_nrs"), corrected.get("context")]
        state["reports"][target] = new
        if new[PAIN] != old[PAIN]:
            week = metrics.iso_week(datetime.fromisoformat(old[OCCURRED_AT]))
            _week(delta, week)[1] += new[PAIN] - old[PAIN]
    else:
        raise ProjectionError(f"EntryCorrected of {data['corrects']}, which is not a session "
                              "or pain report of this programme")
    state["corrections"] += 1


def _erased(state: State, event: Any, position: int, delta: Delta) -> None:
    # The read model held the patient_ref sealed; now not even that. No count changes.
    state["patient_ref"] = ERASED


#: How each event type changes a programme's state: every type of the catalogue
#: (domain.events) but ProgrammeStarted, which `_started` makes the state from, and
#: the erasure the service records (tests/domain/test_event_catalogue.py holds them
#: to each other).
_HANDLERS: dict[str, Callable[[State, Any, int, Delta], None]] = {
    "SessionCompleted": _session_completed,
    "SessionMissed": _session_missed,
    "PainReported": _pain_reported,
    "PlanAdjusted": _plan_adjusted,
    "AdverseEventReported": _adverse_event,
    "ProgrammePaused": _paused,
    "ProgrammeResumed": _resumed,
    "ProgrammeDischarged": _discharged,
    "EntryCorrected": _entry_corrected,
    ERASURE_TYPE: _erased,
}

#: Every event type this projection knows; any other is parked as poison.
EVENT_TYPES = (*CATALOGUE, ERASURE_TYPE)


class Measures(NamedTuple):
    """The per-programme metrics, unrounded."""

    latest_pain: int | None
    pain_change: int | None
    responded: bool
    response_us: int | None  # start -> earliest qualifying report
    substantial_us: int | None  # start -> earliest substantially qualifying report
    last_report_us: int | None  # start -> the last report (where a non-responder is censored)
    prescribed: float
    adherence: float | None
    active_us: int  # the span less its pauses: the programme's exposure


def measure(state: State) -> Measures:
    """The per-programme metrics of docs/metrics.md, from a programme's state."""
    baseline = state["baseline"]
    reports = state["reports"]
    start = state["start"]
    latest = reports[state["latest"]] if state["latest"] is not None else None
    first_response: int | None = None
    first_substantial: int | None = None
    for report in reports.values():
        pain, at = report[PAIN], report[AT]
        if metrics.is_responder(pain, baseline):
            if first_response is None or at < first_response:
                first_response = at
            if metrics.is_substantial_responder(pain, baseline) and (
                first_substantial is None or at < first_substantial
            ):
                first_substantial = at
    end = state["end"] if state["end"] is not None else state["last"]
    prescribed = metrics.prescribed_sessions(start, end, state["plan"], state["pauses"])
    return Measures(
        latest_pain=latest[PAIN] if latest is not None else None,
        pain_change=latest[PAIN] - baseline if latest is not None else None,
        responded=first_response is not None,
        response_us=first_response - start if first_response is not None else None,
        substantial_us=first_substantial - start if first_substantial is not None else None,
        last_report_us=latest[AT] - start if latest is not None else None,
        prescribed=prescribed,
        adherence=metrics.adherence(len(state["sessions"]), prescribed),
        active_us=metrics.active_micros(start, end, state["pauses"]),
    )


def _round(value: float | None) -> float | None:
    return round(value, 6) if value is not None else None


def _days(interval_us: int | None) -> float | None:
    return _round(metrics.days(interval_us)) if interval_us is not None else None


def summary(state: State, measures: Measures) -> dict[str, Any]:
    """A programme's summary as the API shows it (without the trajectory)."""
    return {
        "programme_id": state["programme_id"],
        "clinic_id": state["clinic_id"],
        "patient_ref": state["patient_ref"],
        "condition": state["condition"],
        "setting": state["setting"],
        "starting_modality": state["modality"],
        "status": state["status"],
        "outcome": state["outcome"],
        "started_at": state["started_at"],
        "discharged_at": state["discharged_at"],
        "last_occurred_at": state["last_at"],
        "baseline_pain": state["baseline"],
        "latest_pain": measures.latest_pain,
        "pain_change": measures.pain_change,
        "pain_reports": len(state["reports"]),
        "responded": measures.responded,
        "days_to_response": _days(measures.response_us),
        "responded_substantially": measures.substantial_us is not None,
        "days_to_substantial_response": _days(measures.substantial_us),
        "active_days": _days(measures.active_us),
        "sessions_completed": len(state["sessions"]),
        "sessions_missed": state["missed"],
        "minutes_completed": state["minutes"],
        "prescribed_sessions": _round(measures.prescribed),
        "adherence": _round(measures.adherence),
        "adverse_events": metrics.in_order(state["adverse"], SEVERITIES),
        "corrections": state["corrections"],
        "position": state["position"],
        "held_since_position": state.get("held"),
    }


def trajectory(state: State) -> list[dict[str, Any]]:
    """The programme's pain reports ordered by occurred_at (ties: the later recorded last)."""
    ordered = sorted(state["reports"].items(), key=lambda item: (item[1][AT], item[1][POSITION]))
    return [
        {
            "event_id": str(UUID(eid)),
            "occurred_at": report[OCCURRED_AT],
            "pain_nrs": report[PAIN],
            "odi_percent": report[ODI],
            "sleep_quality_nrs": report[SLEEP],
            "context": report[CONTEXT],
            "responder": metrics.is_responder(report[PAIN], state["baseline"]),
        }
        for eid, report in ordered
    ]


def _time_to(response_us: int | None, censored_us: int | None) -> tuple[int, int]:
    """(time, 1) for a response; (time, 0) for a censoring at the last report (0 without)."""
    if response_us is not None:
        return response_us, 1
    return (censored_us or 0), 0


def contribution(state: State, measures: Measures) -> list[Any]:
    """What the programme adds to its clinic's programme-level totals.

    A list of plain values (it is stored in the state, as JSON), so the
    clinic's totals can take the old one out and put the new one in
    (dashboards.apply_contribution reads it).
    """
    adherence = measures.adherence
    adverse = state["adverse"]
    return [
        state["status"],
        state["outcome"],
        state["setting"],
        state["modality"],
        state["condition"],
        state["baseline"],
        round(adherence * metrics.ADHERENCE_SCALE) if adherence is not None else None,
        1 if state["reports"] else 0,
        measures.pain_change,
        *_time_to(measures.response_us, measures.last_report_us),
        *_time_to(measures.substantial_us, measures.last_report_us),
        len(state["sessions"]),
        [adverse.get(severity, 0) for severity in SEVERITIES],
        measures.active_us,
    ]
