"""Schemas of the projection reads: programme summaries, clinic and network dashboards.

The read models store these bodies as JSON already (projections/), so the
views send them as they are; these schemas validate the query strings and
document the answers.
"""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf, Range

from projections.dashboards import STATUSES

#: The header every projection read answers with.
POSITION_HEADER = {
    "X-Projection-Position": {
        "description": "The position in the global log that this read reflects: every "
        "event up to it, none after it.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


class ProjectionQuerySchema(Schema):
    min_position = fields.Integer(validate=Range(min=0), metadata={
        "description": "Wait (up to 2 s by default) until the projection has processed this "
        "position, e.g. one from a POST receipt; 503 with Retry-After if it has not."
    })


class ProgrammeListQuerySchema(ProjectionQuerySchema):
    status = fields.String(validate=OneOf(STATUSES), metadata={
        "description": "Only programmes with this status."
    })
    cursor = fields.String(validate=Length(1, 200), metadata={
        "description": "The `next` of the previous page."
    })
    limit = fields.Integer(load_default=50, validate=Range(1, 500))


class AdverseEventCountsSchema(Schema):
    mild = fields.Integer(required=True)
    moderate = fields.Integer(required=True)
    severe = fields.Integer(required=True)


class ProgrammeSummarySchema(Schema):
    programme_id = fields.UUID(required=True)
    clinic_id = fields.String(required=True)
    patient_ref = fields.String(required=True)
    condition = fields.String(required=True)
    setting = fields.String(required=True)
    starting_modality = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf(STATUSES))
    outcome = fields.String(allow_none=True, required=True)
    started_at = fields.String(required=True)
    discharged_at = fields.String(allow_none=True, required=True)
    last_occurred_at = fields.String(required=True)
    baseline_pain = fields.Integer(required=True)
    latest_pain = fields.Integer(allow_none=True, required=True, metadata={
        "description": "pain_nrs of the report with the greatest occurred_at "
        "(ties: the later recorded)."
    })
    pain_change = fields.Integer(allow_none=True, required=True, metadata={
        "description": "latest_pain - baseline_pain; null without reports."
    })
    pain_reports = fields.Integer(required=True)
    responded = fields.Boolean(required=True, metadata={
        "description": "A report with pain <= baseline - 2 and <= 0.7 x baseline."
    })
    days_to_response = fields.Float(allow_none=True, required=True)
    sessions_completed = fields.Integer(required=True)
    sessions_missed = fields.Integer(required=True)
    minutes_completed = fields.Integer(required=True)
    prescribed_sessions = fields.Float(required=True, metadata={
        "description": "Sessions prescribed over the span, pauses and plan changes included."
    })
    adherence = fields.Float(allow_none=True, required=True, metadata={
        "description": "min(1, sessions_completed / prescribed); null when prescribed < 1."
    })
    adverse_events = fields.Nested(AdverseEventCountsSchema, required=True)
    corrections = fields.Integer(required=True)
    position = fields.Integer(required=True, metadata={
        "description": "The position of the programme's last event applied."
    })
    held_since_position = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Set while an event of this programme cannot be processed: the "
        "summary is as it was before that position."
    })


class PainPointSchema(Schema):
    event_id = fields.UUID(required=True)
    occurred_at = fields.String(required=True)
    pain_nrs = fields.Integer(required=True)
    odi_percent = fields.Integer(allow_none=True, required=True)
    sleep_quality_nrs = fields.Integer(allow_none=True, required=True)
    context = fields.String(allow_none=True, required=True)
    responder = fields.Boolean(required=True)


class ProgrammeSummaryDetailSchema(ProgrammeSummarySchema):
    pain_trajectory = fields.List(fields.Nested(PainPointSchema), required=True, metadata={
        "description": "The pain reports ordered by occurred_at, corrections applied."
    })


class ProgrammeSummaryPageSchema(Schema):
    programmes = fields.List(fields.Nested(ProgrammeSummarySchema), required=True)
    next = fields.String(allow_none=True, required=True, metadata={
        "description": "The cursor of the next page; null on the last one."
    })


class WeekSchema(Schema):
    week = fields.String(required=True, metadata={"description": "ISO week, e.g. 2026-W10."})
    sessions_completed = fields.Integer(required=True)
    pain_reports = fields.Integer(required=True)
    mean_pain = fields.Float(allow_none=True, required=True)


def _counts(description: str) -> fields.Dict:
    return fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                       metadata={"description": description})


class DashboardSchema(Schema):
    programmes = fields.Integer(required=True)
    by_status = _counts("Programmes by status.")
    discharged_by_outcome = _counts("Discharged programmes by outcome.")
    by_setting = _counts("Programmes by setting.")
    by_starting_modality = _counts("Programmes by the modality they started with.")
    sessions_completed = fields.Integer(required=True)
    minutes_completed = fields.Integer(required=True)
    adverse_events = fields.Nested(AdverseEventCountsSchema, required=True)
    mean_adherence = fields.Float(allow_none=True, required=True)
    programmes_with_adherence = fields.Integer(required=True)
    responder_rate = fields.Float(allow_none=True, required=True, metadata={
        "description": "responders / programmes_with_reports."
    })
    responders = fields.Integer(required=True)
    programmes_with_reports = fields.Integer(required=True)
    median_days_to_response = fields.Float(allow_none=True, required=True)
    mean_pain_change = fields.Float(allow_none=True, required=True)
    weekly = fields.List(fields.Nested(WeekSchema), required=True, metadata={
        "description": "By ISO week of occurred_at (in the offset the clinic sent)."
    })


class ClinicDashboardSchema(DashboardSchema):
    clinic_id = fields.String(required=True)


class NetworkDashboardSchema(Schema):
    clinics = fields.List(fields.Nested(ClinicDashboardSchema), required=True)
    totals = fields.Nested(DashboardSchema, required=True)
