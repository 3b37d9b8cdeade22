"""Valid events for tests, with overridable fields: the one set of builders.

- The *data* builders (`plan_data`, `start_data`, `session_data`, `pain_data`,
  `adjustment_data`, `correction_data`, ...) make the `data` of each event type
  (docs/events.md), as plain dicts: the aggregate's tests pass them to its commands.
- The *envelope* builders (`started`, `session`, `pain`, ...) wrap that data as
  a clinic system posts it: JSON-ready dicts with str ids and RFC 3339 times,
  for the API tests.
- `event_envelope` turns a posted envelope into the domain's `EventEnvelope`
  (a UUID, an aware datetime), as the API hands it to the application, for the
  tests of `Programmes` in memory.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.application import EventEnvelope

#: A fixed start well in the past, so later events are never "in the future".
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

#: Who recorded the events the builders make.
RECORDED_BY = "physio.anna"


def moment(days: float = 0) -> datetime:
    """The moment `days` after START."""
    return START + timedelta(days=days)


def at(days: float = 0) -> str:
    """The moment `days` after START, in RFC 3339."""
    return moment(days).isoformat()


# ---- the data of each event type ----------------------------------------------


def plan_data(modality: str = "mechanical_table", **overrides: Any) -> dict[str, Any]:
    """Three 30-minute sessions a week; on the table at 30 % of body weight."""
    plan: dict[str, Any] = {"modality": modality, "sessions_per_week": 3,
                            "minutes_per_session": 30}
    if modality == "mechanical_table":
        plan["force_percent_body_weight"] = 30
    return {**plan, **overrides}


def mat_plan_data(**overrides: Any) -> dict[str, Any]:
    """The decompression mat at home, 15 minutes three times a day (21 a week)."""
    return plan_data("decompression_mat", sessions_per_week=21, minutes_per_session=15,
                     **overrides)


def start_data(modality: str = "mechanical_table", **data: Any) -> dict[str, Any]:
    """A sciatica patient with baseline pain 7 on `plan_data(modality)`; `plan=` replaces it."""
    return {
        "patient_ref": "pt-0001", "condition": "sciatica",
        "setting": "in_office" if modality == "mechanical_table" else "at_home",
        "plan": plan_data(modality), "baseline": {"pain_nrs": 7, "odi_percent": 42}, **data,
    }


def session_data(modality: str = "mechanical_table", **data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"modality": modality, "duration_minutes": 30, "supervised": True}
    if modality == "mechanical_table":
        body["force_percent_body_weight"] = 30
    return {**body, **data}


def missed_data(reason: str = "schedule") -> dict[str, Any]:
    return {"reason": reason}


def pain_data(pain_nrs: int = 5, **data: Any) -> dict[str, Any]:
    return {"pain_nrs": pain_nrs, **data}


def adjustment_data(**changes: Any) -> dict[str, Any]:
    return {"reason": "progressing well", **changes}


def adverse_data(severity: str = "mild",
                 description: str = "soreness after session") -> dict[str, Any]:
    return {"severity": severity, "description": description}


def pause_data(reason: str = "travel") -> dict[str, Any]:
    return {"reason": reason}


def discharge_data(outcome: str = "improved", **data: Any) -> dict[str, Any]:
    return {"outcome": outcome, **data}


def correction_data(corrects: uuid.UUID | str, data: dict[str, Any],
                    reason: str = "entered the wrong value") -> dict[str, Any]:
    """Corrects the event `corrects` to `data` (its full corrected data)."""
    return {"corrects": str(corrects), "data": data, "reason": reason}


# ---- envelopes as clinic systems post them (JSON) ------------------------------


def envelope(type_: str, data: dict[str, Any], days: float = 0, **overrides: Any) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "occurred_at": at(days),
        "recorded_by": RECORDED_BY,
        "data": data,
        **overrides,
    }


def started(days: float = 0, modality: str = "mechanical_table", **data: Any) -> dict:
    return envelope("ProgrammeStarted", start_data(modality, **data), days)


def session(days: float = 1, modality: str = "mechanical_table", **data: Any) -> dict:
    return envelope("SessionCompleted", session_data(modality, **data), days)


def missed(days: float = 1, reason: str = "schedule") -> dict:
    return envelope("SessionMissed", missed_data(reason), days)


def pain(pain_nrs: int, days: float = 1, **data: Any) -> dict:
    return envelope("PainReported", pain_data(pain_nrs, **data), days)


def adjusted(days: float = 1, **changes: Any) -> dict:
    return envelope("PlanAdjusted", adjustment_data(**changes), days)


def adverse(severity: str = "mild", days: float = 1) -> dict:
    return envelope("AdverseEventReported", adverse_data(severity), days)


def paused(days: float = 1, reason: str = "travel") -> dict:
    return envelope("ProgrammePaused", pause_data(reason), days)


def resumed(days: float = 1) -> dict:
    return envelope("ProgrammeResumed", {}, days)


def discharged(days: float = 30, outcome: str = "improved") -> dict:
    return envelope("ProgrammeDischarged", discharge_data(outcome), days)


def corrected(target: dict, days: float = 2, **data: Any) -> dict:
    return envelope("EntryCorrected",
                    correction_data(target["event_id"], {**target["data"], **data}), days)


# ---- the same envelopes as the application receives them ----------------------


def event_envelope(posted: dict[str, Any]) -> EventEnvelope:
    """The domain's envelope for a posted one, as the API hands it to the
    application: a UUID, an aware datetime, and a copy of the data of its own."""
    return EventEnvelope(
        event_id=uuid.UUID(posted["event_id"]),
        type=posted["type"],
        occurred_at=datetime.fromisoformat(posted["occurred_at"]),
        recorded_by=posted["recorded_by"],
        data=copy.deepcopy(posted["data"]),
    )


def event_envelopes(*posted: dict[str, Any]) -> list[EventEnvelope]:
    return [event_envelope(p) for p in posted]
