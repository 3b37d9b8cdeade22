"""Examples for the OpenAPI document: one realistic programme, followed through the API.

North Physio starts a sciatica patient (pt-0042) on the mechanical table,
records a session and a pain report in one batch, then corrects the report.
Every request and answer below is what the service takes and gives for that
programme; tests/api/test_openapi_examples.py posts the requests to a real
app and checks each example against its schema and against the real answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from domain.events import EVENT_TYPES
from domain.programme import with_scale

CLINIC = "north-physio"
PROGRAMME = "6f1c2b9e-3d4a-4b7e-9f10-2a5c8d7e4b31"
STARTED = "0b7f7f0e-2a44-4b4b-8f3c-0d5e2f1a9c01"
SESSION = "5d2a6c1e-7b3f-4e0a-9c8d-1f2e3a4b5c02"
REPORT = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c03"
CORRECTION = "c4b3a291-8f7e-4d6c-9b5a-4f3e2d1c0b04"
RECORDED_BY = "physio.anna"

PLAN = {"modality": "mechanical_table", "sessions_per_week": 3, "minutes_per_session": 30,
        "force_percent_body_weight": 30}
BASELINE = {"pain_nrs": 7, "odi_percent": 44}

START = {
    "event_id": STARTED, "type": "ProgrammeStarted",
    "occurred_at": "2026-03-02T09:00:00+01:00", "recorded_by": RECORDED_BY,
    "data": {"patient_ref": "pt-0042", "condition": "sciatica", "setting": "in_office",
             "plan": PLAN, "baseline": BASELINE},
    "expected_version": 0,
}
SESSION_COMPLETED = {
    "event_id": SESSION, "type": "SessionCompleted",
    "occurred_at": "2026-03-04T09:00:00+01:00", "recorded_by": RECORDED_BY,
    "data": {"modality": "mechanical_table", "duration_minutes": 30, "supervised": True,
             "force_percent_body_weight": 30, "discomfort_nrs": 3},
}
PAIN_REPORTED = {
    "event_id": REPORT, "type": "PainReported",
    "occurred_at": "2026-03-04T09:40:00+01:00", "recorded_by": RECORDED_BY,
    "data": {"pain_nrs": 5, "context": "after_session"},
}
BATCH = {"expected_version": 1, "events": [SESSION_COMPLETED, PAIN_REPORTED]}
ENTRY_CORRECTED = {
    "event_id": CORRECTION, "type": "EntryCorrected",
    "occurred_at": "2026-03-04T10:15:00+01:00", "recorded_by": RECORDED_BY,
    "data": {"corrects": REPORT, "reason": "entered 5, the patient said 4",
             "data": {"pain_nrs": 4, "context": "after_session"}},
}

#: The events POST's request bodies, in the order they are posted.
EVENT_POSTS: dict[str, dict[str, Any]] = {
    "start": {"summary": "Start a programme (one event, expected_version 0: a new one)",
              "value": START},
    "batch": {"summary": "A session and a pain report, recorded atomically",
              "value": BATCH},
    "correction": {"summary": "Correct the pain report (its data is replaced whole)",
                   "value": ENTRY_CORRECTED},
}


def _recorded(event_id: str, type_: str, version: int) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "version": version, "position": 1040 + version}


RECEIPT = {"programme_id": PROGRAMME, "clinic_id": CLINIC, "version": 3,
           "recorded": [_recorded(SESSION, "SessionCompleted", 2),
                        _recorded(REPORT, "PainReported", 3)]}

ERASURE = {"reason": "Erasure request ER-2026-0117 (GDPR Art. 17)"}

ERASURE_RECEIPT = {"programme_id": PROGRAMME, "clinic_id": CLINIC, "version": 4,
                   "recorded": [{"event_id": "6d1b2a9e-2f0c-5b7a-9e43-0c1d2e3f4a5b",
                                 "type": "ProgrammeErased", "version": 4, "position": 1044}]}

PATIENT_ERASURE = {"patient_ref": "pt-0042",
                   "reason": "Erasure request ER-2026-0117 (GDPR Art. 17)"}

PATIENT_ERASED = {"erased": [ERASURE_RECEIPT]}

PROGRAMME_STATE = {
    "programme_id": PROGRAMME, "clinic_id": CLINIC, "patient_ref": "pt-0042",
    "condition": "sciatica", "setting": "in_office", "status": "active",
    "paused_reason": None, "plan": PLAN, "baseline": BASELINE,
    "started_at": "2026-03-02T09:00:00+01:00", "discharged_at": None, "outcome": None,
    "sessions_completed": 1, "sessions_missed": 0, "minutes_completed": 30,
    "pain_reports": 1, "adverse_events": {"mild": 0, "moderate": 0, "severe": 0},
    "plan_adjustments": 0, "corrections": 1, "last_occurred_at": "2026-03-04T10:15:00+01:00",
    "version": 4,
}


def _recorded(envelope: dict[str, Any]) -> dict[str, Any]:
    """An envelope's data as the programme records it (a pain report with its scale)."""
    data = envelope["data"]
    if envelope["type"] == "PainReported":
        return with_scale(data)
    if envelope["type"] == "EntryCorrected" and "pain_nrs" in data["data"]:
        return {**data, "data": with_scale(data["data"])}
    return data


def _history_item(envelope: dict[str, Any], version: int, recorded_at: str,
                  corrected_by: str | None = None) -> dict[str, Any]:
    return {"event_id": envelope["event_id"], "type": envelope["type"], "version": version,
            "position": 1040 + version, "occurred_at": envelope["occurred_at"],
            "recorded_at": recorded_at, "recorded_by": envelope["recorded_by"],
            "data": _recorded(envelope), "corrected_by": corrected_by,
            "schema_version": EVENT_TYPES[envelope["type"]].version, "newer_release": False}


HISTORY = {
    "programme_id": PROGRAMME, "clinic_id": CLINIC, "version": 4,
    "events": [
        _history_item(START, 1, "2026-03-02T08:00:03.412000+00:00"),
        _history_item(SESSION_COMPLETED, 2, "2026-03-04T08:41:10.077000+00:00"),
        _history_item(PAIN_REPORTED, 3, "2026-03-04T08:41:10.077000+00:00", CORRECTION),
        _history_item(ENTRY_CORRECTED, 4, "2026-03-04T09:15:52.930000+00:00"),
    ],
}

SUMMARY = {
    "programme_id": PROGRAMME, "clinic_id": CLINIC, "patient_ref": "pt-0042",
    "condition": "sciatica", "setting": "in_office", "starting_modality": "mechanical_table",
    "status": "active", "outcome": None, "started_at": "2026-03-02T09:00:00+01:00",
    "discharged_at": None, "last_occurred_at": "2026-03-04T10:15:00+01:00",
    "baseline_pain": 7, "latest_pain": 4, "pain_change": -3, "pain_reports": 1,
    "responded": True, "days_to_response": 2.027778, "responded_substantially": False,
    "days_to_substantial_response": None, "sessions_completed": 1,
    "sessions_missed": 0, "minutes_completed": 30, "prescribed_sessions": 0.879464,
    "adherence": None, "active_days": 2.052083,
    "adverse_events": {"mild": 0, "moderate": 0, "severe": 0},
    "corrections": 1, "position": 1044, "held_since_position": None,
}
SUMMARY_DETAIL = {**SUMMARY, "pain_trajectory": [{
    "event_id": REPORT, "occurred_at": "2026-03-04T09:40:00+01:00", "pain_nrs": 4,
    "odi_percent": None, "sleep_quality_nrs": None, "context": "after_session",
    "responder": True,
}]}
SUMMARY_PAGE = {"programmes": [SUMMARY], "next": None}

#: A clinic's dashboard as the projection renders it: the demo's Harbour Spine Clinic
#: (40 programmes), with its lists cut to their first entries to keep it short.
DASHBOARD = json.loads((Path(__file__).parent / "example_data" / "dashboard.json").read_text())
CLINIC_DASHBOARD = {"clinic_id": CLINIC, **DASHBOARD}
#: The network view of the same demo store (its one clinic, and the totals).
NETWORK_DASHBOARD = json.loads(
    (Path(__file__).parent / "example_data" / "network.json").read_text())

CLINIC_CREATE = {"clinic_id": CLINIC, "name": "North Physio"}
CLINIC_RECORD = {**CLINIC_CREATE, "registered_at": "2026-02-27T16:02:11.512000+00:00",
                 "deactivated_at": None}
CLINIC_DEACTIVATED = {**CLINIC_RECORD, "deactivated_at": "2026-12-01T09:00:00.000000+00:00"}
CLINIC_LIST = {"clinics": [CLINIC_RECORD]}
TOKEN_CREATE = {"role": "writer", "clinic_id": CLINIC, "label": "EHR bridge",
                "expires_at": "2027-03-01T00:00:00Z"}
TOKEN = {"token_id": "3f2a9c0d1e2b4a5f", "role": "writer", "clinic_id": CLINIC,
         "label": "EHR bridge", "revoked": False,
         "issued_at": "2026-12-01T09:00:00.000000+00:00",
         "expires_at": "2027-03-01T00:00:00.000000+00:00", "revoked_at": None}
ISSUED_TOKEN = {**TOKEN, "token": "tl_3f2a9c0d1e2b4a5f_" + "x" * 43}
REVOKED_TOKEN = {**TOKEN, "revoked": True, "revoked_at": "2026-12-02T10:00:00.000000+00:00"}
TOKEN_LIST = {"tokens": [TOKEN, {**TOKEN, "token_id": "9a8b7c6d5e4f3a2b", "role": "auditor",
                                 "clinic_id": None, "label": "external audit 2026",
                                 "expires_at": None}]}

ACCESS_LOG = {"entries": [{
    "entry_id": 812, "at": "2026-03-05T11:20:31.004000+00:00", "action": "read",
    "token_id": "9a8b7c6d5e4f3a2b", "token_label": "external audit 2026", "role": "auditor",
    "method": "GET", "route": "/v1/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>",
    "clinic_id": CLINIC, "programme_id": PROGRAMME, "remote_addr": "10.0.0.7",
    "detail": "status 200; version=2",
    "chain_hash": "9c1185a5c5e9fc54612808977ee8f548b2258d31e4f0d8b5a3f2c1d0e9b8a7c6",
}], "next": None}
CHAIN_HASH = "5f0c3d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f10"
_FIRST = _history_item(START, 1, "2026-03-02T08:00:03.412000+00:00")
GLOBAL_LOG = {"events": [{
    **{name: value for name, value in _FIRST.items() if name != "corrected_by"},
    "programme_id": PROGRAMME, "clinic_id": CLINIC, "chain_hash": CHAIN_HASH,
}], "next": 1041}
VERIFY_REPORT = {
    "ok": True, "events_checked": 1044, "head": {"position": 1044, "chain_hash": CHAIN_HASH},
    "failure": None, "unverifiable": None,
    "access_log": {"entries_checked": 322, "failure": None},
    "checkpoints": {"checked": True, "key_configured": True, "log_configured": True,
                    "stored": 12, "logged": 12, "authenticated": 12,
                    "latest_authenticated": 1044,
                    "written": {"position": 1044, "chain_hash": CHAIN_HASH,
                                "signed_at": "2026-03-05T12:00:00.120000+00:00",
                                "signature": "v2:3f2a9c1e:" + "b1946ac924" * 6 + "b194",
                                "previous": "v2:3f2a9c1e:" + "5e884898da" * 6 + "5e88"},
                    "write_error": None},
    "warnings": [],
    "rewrites": [],
}
VERIFICATION_QUEUED = {
    "verification_id": "3b1f6a52-8c1e-4d7a-9f0b-2e6c5d4a3b21", "state": "queued",
    "checkpoints": True, "requested_at": "2026-03-05T12:00:00.004000+00:00",
    "started_at": None, "finished_at": None, "events_checked": 0, "events_total": None,
    "report": None, "error": None,
}
VERIFICATION_DONE = {
    **VERIFICATION_QUEUED, "state": "succeeded",
    "started_at": "2026-03-05T12:00:00.011000+00:00",
    "finished_at": "2026-03-05T12:00:31.402000+00:00",
    "events_checked": 1044, "events_total": 1044, "report": VERIFY_REPORT,
}
HEALTH = {"status": "ok"}
READINESS = {"status": "ready", "store": "reachable", "projections": [{
    "name": "summaries", "live_version": 1, "position": 1044, "head": 1044, "lag_events": 0,
    "lag_seconds": 0.0, "poison_events": 0, "held_events": 0,
}]}

#: Problem documents, by the status of the shared response they illustrate.
PROBLEMS: dict[int, dict[str, Any]] = {
    400: {"type": "urn:traction-ledger:problem:malformed-json", "title": "Malformed JSON",
          "status": 400, "detail": "Expecting ',' delimiter at line 3 column 5."},
    401: {"type": "urn:traction-ledger:problem:unauthorized", "title": "Unauthorized",
          "status": 401, "detail": "The token is not valid (unknown or revoked)."},
    403: {"type": "urn:traction-ledger:problem:forbidden", "title": "Forbidden", "status": 403,
          "detail": "A writer token may not call this endpoint: it needs a viewer or auditor "
          "token.", "allowed_roles": ["viewer", "auditor"], "all_clinics_only": False},
    404: {"type": "urn:traction-ledger:problem:not-found", "title": "Not found", "status": 404,
          "detail": "No such resource."},
    409: {"type": "urn:traction-ledger:problem:version-conflict",
          "title": "expected_version does not match", "status": 409,
          "detail": "expected_version is 1 but the programme is at version 3",
          "expected_version": 1, "current_version": 3},
    413: {"type": "urn:traction-ledger:problem:request-entity-too-large",
          "title": "Request Entity Too Large", "status": 413,
          "detail": "The body is larger than 2000000 bytes, the most this service accepts; "
          "send fewer events per post.", "max_body_bytes": 2000000},
    415: {"type": "urn:traction-ledger:problem:unsupported-media-type",
          "title": "Unsupported media type", "status": 415,
          "detail": "Send the body as application/json."},
    422: {"type": "urn:traction-ledger:problem:validation-failed",
          "title": "The request does not pass validation", "status": 422,
          "detail": "/events/1/data/pain_nrs: Must be greater than or equal to 0 and less "
          "than or equal to 10.",
          "errors": [{"pointer": "/events/1/data/pain_nrs", "detail": "Must be greater than "
                      "or equal to 0 and less than or equal to 10."}]},
    503: {"type": "urn:traction-ledger:problem:store-unavailable",
          "title": "The event store is unavailable", "status": 503,
          "detail": "The database cannot be reached right now; retry shortly."},
}

#: One line of a bulk upload's answer (the answer is one such line per line sent,
#: then a line with the summary).
BULK_RESULT = {"line": 1, "status": 201,
               "receipt": {**RECEIPT, "version": 2, "recorded": RECEIPT["recorded"][:1]}}
