"""Valid event envelopes for tests, with overridable fields."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

#: A fixed start well in the past, so later events are never "in the future".
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(days: float = 0) -> str:
    return (START + timedelta(days=days)).isoformat()


def envelope(type_: str, data: dict[str, Any], days: float = 0, **overrides: Any) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "occurred_at": at(days),
        "recorded_by": "physio.anna",
        "data": data,
        **overrides,
    }


def started(days: float = 0, modality: str = "mechanical_table", **data: Any) -> dict:
    plan: dict[str, Any] = {"modality": modality, "sessions_per_week": 3,
                            "minutes_per_session": 30}
    if modality == "mechanical_table":
        plan["force_percent_body_weight"] = 30
    return envelope("ProgrammeStarted", {
        "patient_ref": "pt-0001", "condition": "sciatica",
        "setting": "in_office" if modality == "mechanical_table" else "at_home",
        "plan": plan, "baseline": {"pain_nrs": 7, "odi_percent": 42}, **data,
    }, days)


def session(days: float = 1, modality: str = "mechanical_table", **data: Any) -> dict:
    body: dict[str, Any] = {"modality": modality, "duration_minutes": 30, "supervised": True}
    if modality == "mechanical_table":
        body["force_percent_body_weight"] = 30
    return envelope("SessionCompleted", {**body, **data}, days)


def missed(days: float = 1, reason: str = "schedule") -> dict:
    return envelope("SessionMissed", {"reason": reason}, days)


def pain(pain_nrs: int, days: float = 1, **data: Any) -> dict:
    return envelope("PainReported", {"pain_nrs": pain_nrs, **data}, days)


def adjusted(days: float = 1, **changes: Any) -> dict:
    return envelope("PlanAdjusted", {"reason": "progressing well", **changes}, days)


def adverse(severity: str = "mild", days: float = 1) -> dict:
    return envelope("AdverseEventReported",
                    {"severity": severity, "description": "soreness after session"}, days)


def paused(days: float = 1, reason: str = "travel") -> dict:
    return envelope("ProgrammePaused", {"reason": reason}, days)


def resumed(days: float = 1) -> dict:
    return envelope("ProgrammeResumed", {}, days)


def discharged(days: float = 30, outcome: str = "improved") -> dict:
    return envelope("ProgrammeDischarged", {"outcome": outcome}, days)


def corrected(target: dict, days: float = 2, **data: Any) -> dict:
    return envelope("EntryCorrected", {
        "corrects": target["event_id"], "data": {**target["data"], **data},
        "reason": "entered the wrong value",
    }, days)
