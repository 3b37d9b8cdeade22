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
        "description": "The position this read reflects: every event up to it, none after "
        "it. To a token of one clinic, the clinic's own count of its events (its "
        "receipts' positions); to a token of all clinics, the position in the global log.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


class ProjectionQuerySchema(Schema):
    min_position = fields.Integer(validate=Range(min=0), metadata={
        "description": "Wait (up to 2 s by default) until the projection has processed this "
        "position, e.g. one from a POST receipt (for a token of one clinic, a position of "
        "the clinic's count: one beyond its events is answered 503 at once); 503 "
        "`projection-behind` with Retry-After if it has not. Waits are bounded per token "
        "and per server worker: a read that would wait beyond them is answered at once, "
        "503 `too-many-waits` with Retry-After."
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
    days_to_response = fields.Float(allow_none=True, required=True, metadata={
        "description": "Days from the start to the earliest qualifying report; null if none."
    })
    responded_substantially = fields.Boolean(required=True, metadata={
        "description": "A report with pain <= baseline - 2 and <= 0.5 x baseline."
    })
    days_to_substantial_response = fields.Float(allow_none=True, required=True, metadata={
        "description": "Days from the start to the earliest substantially qualifying report."
    })
    active_days = fields.Float(required=True, metadata={
        "description": "Days of the span (start to discharge, or to the latest event) not "
        "paused: the programme's exposure."
    })
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


def _interval(description: str) -> fields.List:
    return fields.List(fields.Float(allow_none=True), allow_none=True, required=True,
                       metadata={"description": description, "minItems": 2, "maxItems": 2})


class RateSchema(Schema):
    responders = fields.Integer(required=True)
    programmes = fields.Integer(required=True, metadata={"description": "The denominator."})
    rate = fields.Float(allow_none=True, required=True, metadata={
        "description": "responders / programmes; null when there are none."
    })
    ci95 = _interval("95 % Wilson interval [low, high]; null when there are no programmes.")


class DenominatorsSchema(Schema):
    among_reported = fields.Nested(RateSchema, required=True, metadata={
        "description": "Among programmes with at least one pain report."
    })
    among_discharged = fields.Nested(RateSchema, required=True, metadata={
        "description": "Among discharged programmes, a programme without any report counting "
        "as a non-responder (intention to treat, complete follow-up)."
    })


class ResponderRatesSchema(Schema):
    moderate = fields.Nested(DenominatorsSchema, required=True, metadata={
        "description": "A report with pain <= baseline - 2 and <= 0.7 x baseline."
    })
    substantial = fields.Nested(DenominatorsSchema, required=True, metadata={
        "description": "A report with pain <= baseline - 2 and <= 0.5 x baseline."
    })


class AtDaySchema(Schema):
    day = fields.Integer(required=True)
    cumulative = fields.Float(allow_none=True, required=True, metadata={
        "description": "1 - S(day): the share responded by the end of that day (Kaplan-Meier); "
        "null when nobody is followed that long."
    })
    ci95 = _interval("95 % log-log interval of the cumulative response.")
    at_risk = fields.Integer(required=True, metadata={
        "description": "Programmes whose time (response or censoring) is >= that day."
    })


class CurveSchema(Schema):
    day = fields.List(fields.Integer(), required=True, metadata={
        "description": "Whole days from 0 to the last day anyone is followed (at most 84), "
        "where the estimate changes."
    })
    cumulative = fields.List(fields.Float(), required=True, metadata={
        "description": "The cumulative response at the end of each of those days (4 decimals)."
    })
    ci95_low = fields.List(fields.Float(), required=True)
    ci95_high = fields.List(fields.Float(), required=True)


class TimeToResponseSchema(Schema):
    programmes = fields.Integer(required=True, metadata={"description": "Every programme."})
    responses = fields.Integer(required=True)
    censored = fields.Integer(required=True, metadata={
        "description": "Non-responders, censored at their last pain report (day 0 without one)."
    })
    median_days = fields.Float(allow_none=True, required=True, metadata={
        "description": "The first event time with S <= 0.5; null: not reached."
    })
    median_ci95 = _interval("Brookmeyer-Crowley: where the lower and the upper bound of S "
                            "reach 0.5; null bounds are not reached.")
    at_days = fields.List(fields.Nested(AtDaySchema), required=True, metadata={
        "description": "Days 7, 14, 28, 42, 56 and 84."
    })
    curve = fields.Nested(CurveSchema, required=True)


class TimesToResponseSchema(Schema):
    moderate = fields.Nested(TimeToResponseSchema, required=True)
    substantial = fields.Nested(TimeToResponseSchema, required=True)


class PainChangeSchema(Schema):
    programmes = fields.Integer(required=True, metadata={
        "description": "Programmes with at least one pain report."
    })
    mean = fields.Float(allow_none=True, required=True, metadata={
        "description": "Mean of latest_pain - baseline_pain."
    })
    ci95 = _interval("95 % Student t interval; null below two programmes.")


class PerHundredSchema(Schema):
    events = fields.Integer(required=True)
    rate = fields.Float(allow_none=True, required=True, metadata={
        "description": "Adverse events per 100 units of exposure; null without exposure."
    })
    ci95 = _interval("Exact Poisson 95 % interval.")


class AdverseEventRatesSchema(Schema):
    per_100_sessions = fields.Nested(PerHundredSchema, required=True)
    per_100_programme_weeks = fields.Nested(PerHundredSchema, required=True, metadata={
        "description": "Per 100 weeks of programmes being active (pauses excluded)."
    })


class CohortSchema(Schema):
    """The figures of one group of programmes (a clinic, a setting, a starting modality)."""

    programmes = fields.Integer(required=True)
    mean_baseline_pain = fields.Float(allow_none=True, required=True)
    conditions = _counts("Programmes by condition.")
    responder_rates = fields.Nested(ResponderRatesSchema, required=True)
    time_to_response = fields.Nested(TimesToResponseSchema, required=True, metadata={
        "description": "Kaplan-Meier: every programme followed from its start; a "
        "non-responder censored at its last pain report."
    })
    median_days_to_response_among_responders = fields.Float(
        allow_none=True, required=True, metadata={
            "description": "The median over responders only: it ignores everyone who has "
            "not (yet) responded, so it flatters; see time_to_response."
        })
    pain_change = fields.Nested(PainChangeSchema, required=True)
    mean_adherence = fields.Float(allow_none=True, required=True)
    programmes_with_adherence = fields.Integer(required=True)
    sessions_completed = fields.Integer(required=True)
    programme_weeks = fields.Float(required=True, metadata={
        "description": "Weeks the programmes were active (pauses excluded): the exposure."
    })
    adverse_events = fields.Nested(AdverseEventCountsSchema, required=True)
    adverse_event_rates = fields.Nested(AdverseEventRatesSchema, required=True)


class GroupSchema(CohortSchema):
    group = fields.String(required=True, metadata={
        "description": "The setting or starting modality."
    })


class BaselineDifferenceSchema(Schema):
    groups = fields.List(fields.String(), required=True, metadata={
        "description": "The two groups [a, b]."
    })
    measure = fields.String(required=True, validate=OneOf(("mean_baseline_pain",
                                                            "condition_share")))
    condition = fields.String(allow_none=True, required=True)
    difference = fields.Float(required=True, metadata={
        "description": "a minus b: points of mean baseline pain, or the difference of the "
        "condition's share (0.25 = 25 percentage points)."
    })


class ComparisonSchema(Schema):
    groups = fields.List(fields.Nested(GroupSchema), required=True, metadata={
        "description": "Each group with at least one programme."
    })
    differ_at_baseline = fields.Boolean(required=True, metadata={
        "description": "Two groups of at least 5 programmes differ by >= 1.0 point of mean "
        "baseline pain, or by >= 20 percentage points in the share of a condition: "
        "a difference in outcomes may come from who was treated, not how."
    })
    baseline_differences = fields.List(fields.Nested(BaselineDifferenceSchema),
                                       required=True)


class ComparisonsSchema(Schema):
    setting = fields.Nested(ComparisonSchema, required=True)
    starting_modality = fields.Nested(ComparisonSchema, required=True)


class ClinicGroupSchema(Schema):
    group = fields.String(required=True, metadata={"description": "The clinic_id."})
    programmes = fields.Integer(required=True)
    mean_baseline_pain = fields.Float(allow_none=True, required=True)
    conditions = _counts("Programmes by condition.")


class ClinicComparisonSchema(Schema):
    groups = fields.List(fields.Nested(ClinicGroupSchema), required=True)
    differ_at_baseline = fields.Boolean(required=True)
    baseline_differences = fields.List(fields.Nested(BaselineDifferenceSchema),
                                       required=True)


class NetworkComparisonsSchema(ComparisonsSchema):
    clinic = fields.Nested(ClinicComparisonSchema, required=True, metadata={
        "description": "Who was compared across clinics (each clinic's figures are in "
        "`clinics`)."
    })


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
    responder_rate_discharged = fields.Float(allow_none=True, required=True, metadata={
        "description": "responders_discharged / programmes_discharged: a discharged programme "
        "without any report counts as a non-responder."
    })
    responders_discharged = fields.Integer(required=True)
    programmes_discharged = fields.Integer(required=True)
    median_days_to_response = fields.Float(allow_none=True, required=True, metadata={
        "description": "Deprecated: the older name of "
        "median_days_to_response_among_responders; removed in the next release.",
        "deprecated": True,
    })
    median_days_to_response_among_responders = fields.Float(
        allow_none=True, required=True, metadata={
            "description": "The median over responders only: it ignores everyone who has "
            "not (yet) responded; see time_to_response."
        })
    mean_pain_change = fields.Float(allow_none=True, required=True)
    mean_baseline_pain = fields.Float(allow_none=True, required=True)
    conditions = _counts("Programmes by condition.")
    responder_rates = fields.Nested(ResponderRatesSchema, required=True)
    time_to_response = fields.Nested(TimesToResponseSchema, required=True)
    pain_change = fields.Nested(PainChangeSchema, required=True)
    programme_weeks = fields.Float(required=True)
    adverse_event_rates = fields.Nested(AdverseEventRatesSchema, required=True)
    comparisons = fields.Nested(ComparisonsSchema, required=True, metadata={
        "description": "Settings and starting modalities compared, with who was compared."
    })
    weekly = fields.List(fields.Nested(WeekSchema), required=True, metadata={
        "description": "By ISO week of occurred_at (in the offset the clinic sent)."
    })


class ClinicDashboardSchema(DashboardSchema):
    clinic_id = fields.String(required=True)


class NetworkTotalsSchema(DashboardSchema):
    comparisons = fields.Nested(NetworkComparisonsSchema, required=True, metadata={
        "description": "Settings, starting modalities and clinics compared."
    })


class NetworkDashboardSchema(Schema):
    clinics = fields.List(fields.Nested(ClinicDashboardSchema), required=True)
    totals = fields.Nested(NetworkTotalsSchema, required=True)
