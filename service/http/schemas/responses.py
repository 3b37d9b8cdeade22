"""Schemas of what the API answers (used to serialize and to document)."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Range

from service.http.schemas.fields import MAX_STORED_INTEGER, Rfc3339DateTime


class FieldErrorSchema(Schema):
    """One reason a request failed validation."""

    pointer = fields.String(required=True, metadata={
        "description": "A JSON pointer to the refused value in the body or query, e.g. "
        "/events/1/data/pain_nrs (a single posted event: /data/pain_nrs); / for the whole "
        "body."
    })
    detail = fields.String(required=True, metadata={"description": "What is wrong with it."})


class ProblemSchema(Schema):
    """An RFC 9457 problem document (application/problem+json).

    `type` says what went wrong, as `urn:traction-ledger:problem:<kind>`; the
    other members beyond the standard ones appear only for the kinds that
    name them.
    """

    type = fields.String(required=True, metadata={
        "description": "urn:traction-ledger:problem: followed by the kind, e.g. "
        "validation-failed, domain-rule, not-found, version-conflict, forbidden."
    })
    title = fields.String(required=True, metadata={
        "description": "A short summary of the kind of problem."
    })
    status = fields.Integer(required=True, metadata={"description": "The HTTP status."})
    detail = fields.String(required=True, metadata={
        "description": "What went wrong this time, in sentences."
    })
    errors = fields.List(fields.Nested(FieldErrorSchema), metadata={
        "description": "validation-failed: every field error, per event index in a batch."
    })
    rule = fields.String(metadata={
        "description": "domain-rule: the rule that refused the event, e.g. programme_paused."
    })
    event_index = fields.Integer(metadata={
        "description": "domain-rule: the refused event's index in the batch."
    })
    event_id = fields.String(metadata={"description": "domain-rule: the refused event's id."})
    event_ids = fields.List(fields.String(), metadata={
        "description": "event-id-conflict: the event ids this clinic already recorded with "
        "other content (event ids are unique per clinic)."
    })
    expected_version = fields.Integer(metadata={
        "description": "version-conflict: the expected_version that was sent."
    })
    current_version = fields.Integer(metadata={
        "description": "version-conflict, version-not-recorded, not-yet-recorded: the "
        "programme's version now."
    })
    first_recorded_at = fields.String(metadata={
        "description": "not-yet-recorded: when the programme's first event was recorded; "
        "an as_of from then on finds it."
    })
    allowed_roles = fields.List(fields.String(), metadata={
        "description": "forbidden: the roles that may call the endpoint."
    })
    all_clinics_only = fields.Boolean(metadata={
        "description": "forbidden: whether the endpoint needs a token for all clinics."
    })
    max_body_bytes = fields.Integer(metadata={
        "description": "request-entity-too-large: the largest body the service accepts."
    })


#: What a recorded event's `data` holds, wherever the API shows one.
EVENT_DATA = (
    "The event's data as it was posted: the fields of its `type` (the `{type}Data` schemas; "
    "docs/events.md). A corrected event shows its original data; the correction in force "
    "has the data that every metric uses. Fields added to a type after an event was "
    "recorded are absent from it."
)


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
    patient_ref = fields.String(required=True, metadata={
        "description": "As posted; `[erased]` once the programme's personal data was erased "
        "(also at every earlier version)."
    })
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


class HistoryQuerySchema(Schema):
    version = fields.Integer(validate=Range(1, MAX_STORED_INTEGER), metadata={
        "description": "The history as it stood after this version: its events up to it, "
        "with the corrections in force then. It never changes."
    })


class HistoryEventSchema(Schema):
    event_id = fields.UUID(required=True)
    type = fields.String(required=True, metadata={
        "description": "The event type (docs/events.md), or `ProgrammeErased`: recorded by "
        "the service when an administrator erased the programme's personal data (its "
        "`data` is `{\"reason\": ...}`). After it, every personal field of every event of "
        "the programme reads `[erased]`."
    })
    version = fields.Integer(required=True)
    position = fields.Integer(required=True)
    occurred_at = fields.String(required=True)
    recorded_at = fields.String(required=True)
    recorded_by = fields.String(required=True)
    data = fields.Dict(required=True, metadata={"description": EVENT_DATA})
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
