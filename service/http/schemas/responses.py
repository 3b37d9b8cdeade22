"""Schemas of what the API answers (used to serialize and to document)."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Range

from service.http.schemas.fields import MAX_STORED_INTEGER, Rfc3339DateTime


class ProblemSchema(Schema):
    """An RFC 9457 problem document."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    instance = fields.String()
    errors = fields.List(fields.Dict(), metadata={
        "description": "Validation errors, each with a JSON `pointer` into the body "
        "(per event index in a batch) and a `detail`."
    })
    rule = fields.String(metadata={"description": "The domain rule that refused the event."})
    event_index = fields.Integer()
    event_id = fields.String()
    event_ids = fields.List(fields.String())
    expected_version = fields.Integer()
    current_version = fields.Integer()


class RecordedEventSchema(Schema):
    event_id = fields.UUID(required=True)
    type = fields.String(required=True)
    version = fields.Integer(required=True)
    position = fields.Integer(required=True, metadata={
        "description": "The event's place in the global gap-free log; a consistency token."
    })


class ReceiptSchema(Schema):
    programme_id = fields.UUID(required=True)
    clinic_id = fields.String(required=True)
    version = fields.Integer(required=True, metadata={
        "description": "The programme's version after the save."
    })
    recorded = fields.List(fields.Nested(RecordedEventSchema), required=True)


class ProgrammeStateSchema(Schema):
    programme_id = fields.UUID(required=True)
    clinic_id = fields.String(required=True)
    patient_ref = fields.String(required=True)
    condition = fields.String(required=True)
    setting = fields.String(required=True)
    status = fields.String(required=True)
    paused_reason = fields.String(allow_none=True)
    plan = fields.Dict(required=True)
    baseline = fields.Dict(required=True)
    started_at = fields.String(required=True)
    discharged_at = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    sessions_completed = fields.Integer(required=True)
    sessions_missed = fields.Integer(required=True)
    minutes_completed = fields.Integer(required=True)
    pain_reports = fields.Integer(required=True)
    adverse_events = fields.Dict(required=True)
    plan_adjustments = fields.Integer(required=True)
    corrections = fields.Integer(required=True)
    last_occurred_at = fields.String(required=True)
    version = fields.Integer(required=True)


class ProgrammeQuerySchema(Schema):
    version = fields.Integer(validate=Range(1, MAX_STORED_INTEGER), metadata={
        "description": "The state as it was after this version."
    })
    as_of = Rfc3339DateTime(metadata={
        "description": "The state as the service knew it at this record time (RFC 3339)."
    })


class HistoryEventSchema(Schema):
    event_id = fields.UUID(required=True)
    type = fields.String(required=True)
    version = fields.Integer(required=True)
    position = fields.Integer(required=True)
    occurred_at = fields.String(required=True)
    recorded_at = fields.String(required=True)
    recorded_by = fields.String(required=True)
    data = fields.Dict(required=True)
    corrected_by = fields.UUID(allow_none=True, metadata={
        "description": "The EntryCorrected now in force for this event, if any."
    })
    schema_version = fields.Integer(required=True, metadata={
        "description": "The version of its type's schema the event was recorded under; "
        "`data` is shown in this release's version (older events are upcast, the stored "
        "bytes never change)."
    })
    newer_release = fields.Boolean(required=True, metadata={
        "description": "True for an event recorded by a newer release of the service than "
        "this one (during a rolling upgrade): its `data` is shown as stored."
    })


class HistorySchema(Schema):
    programme_id = fields.UUID(required=True)
    clinic_id = fields.String(required=True)
    version = fields.Integer(required=True)
    events = fields.List(fields.Nested(HistoryEventSchema), required=True)
