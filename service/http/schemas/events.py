"""Schemas of the events that clinic systems post (domain.md, "Events").

Each event type has a schema for its `data`; the envelope schema picks the
right one by `type`. Unknown fields are rejected everywhere (marshmallow's
default, RAISE).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validates_schema
from marshmallow.validate import Length, OneOf, Range, Regexp

from domain.vocabulary import (
    CONDITIONS,
    MISSED_REASONS,
    MODALITIES,
    OUTCOMES,
    PAIN_CONTEXTS,
    SETTINGS,
    SEVERITIES,
)
from service.http.schemas.fields import (
    Rfc3339DateTime,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictString,
)

MAX_EVENTS_PER_POST = 500


PATIENT_REF = Regexp(r"^[A-Za-z0-9._-]{1,64}$", error="Must match {regex}.")
RECORDED_BY = Regexp(r"^[A-Za-z0-9._@-]{1,64}$", error="Must match {regex}.")


def nrs(**kwargs: Any) -> StrictInteger:
    """A 0-10 numeric rating scale score."""
    return StrictInteger(validate=Range(0, 10), **kwargs)


def force_field(**kwargs: Any) -> StrictNumber:
    return StrictNumber(validate=Range(0, 60), **kwargs)


def text(max_length: int, **kwargs: Any) -> StrictString:
    return StrictString(validate=Length(1, max_length), **kwargs)


def check_force_matches_modality(data: dict[str, Any]) -> None:
    """Force is given exactly when the modality is mechanical_table (rule 5)."""
    if "modality" not in data:
        return
    if data["modality"] == "mechanical_table" and "force_percent_body_weight" not in data:
        raise ValidationError(
            "Required when modality is mechanical_table.", "force_percent_body_weight"
        )
    if data["modality"] != "mechanical_table" and "force_percent_body_weight" in data:
        raise ValidationError(
            "Only allowed when modality is mechanical_table.", "force_percent_body_weight"
        )


class PlanSchema(Schema):
    modality = StrictString(required=True, validate=OneOf(MODALITIES))
    sessions_per_week = StrictInteger(required=True, validate=Range(1, 35))
    minutes_per_session = StrictInteger(required=True, validate=Range(1, 180))
    force_percent_body_weight = force_field()

    @validates_schema
    def force_matches_modality(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_force_matches_modality(data)


PLAN_FIELDS = set(PlanSchema._declared_fields)


class BaselineSchema(Schema):
    pain_nrs = nrs(required=True)
    odi_percent = StrictInteger(validate=Range(0, 100))


class ProgrammeStartedData(Schema):
    patient_ref = StrictString(required=True, validate=PATIENT_REF)
    condition = StrictString(required=True, validate=OneOf(CONDITIONS))
    setting = StrictString(required=True, validate=OneOf(SETTINGS))
    plan = fields.Nested(PlanSchema, required=True)
    baseline = fields.Nested(BaselineSchema, required=True)


class SessionCompletedData(Schema):
    modality = StrictString(required=True, validate=OneOf(MODALITIES))
    duration_minutes = StrictInteger(required=True, validate=Range(1, 240))
    supervised = StrictBoolean(required=True)
    force_percent_body_weight = force_field()
    discomfort_nrs = nrs()

    @validates_schema
    def force_matches_modality(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_force_matches_modality(data)


class SessionMissedData(Schema):
    reason = StrictString(required=True, validate=OneOf(MISSED_REASONS))


class PainReportedData(Schema):
    pain_nrs = nrs(required=True)
    odi_percent = StrictInteger(validate=Range(0, 100))
    sleep_quality_nrs = nrs()
    context = StrictString(validate=OneOf(PAIN_CONTEXTS))


class PlanAdjustedData(Schema):
    modality = StrictString(validate=OneOf(MODALITIES))
    sessions_per_week = StrictInteger(validate=Range(1, 35))
    minutes_per_session = StrictInteger(validate=Range(1, 180))
    force_percent_body_weight = force_field()
    reason = text(500, required=True)

    @validates_schema
    def changes_some_plan_field(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not set(data) & PLAN_FIELDS:
            raise ValidationError("Give at least one plan field to change.", "_schema")


class AdverseEventReportedData(Schema):
    severity = StrictString(required=True, validate=OneOf(SEVERITIES))
    description = text(1000, required=True)


class ProgrammePausedData(Schema):
    reason = text(500, required=True)


class ProgrammeResumedData(Schema):
    pass


class ProgrammeDischargedData(Schema):
    outcome = StrictString(required=True, validate=OneOf(OUTCOMES))
    notes = text(2000)


class EntryCorrectedData(Schema):
    corrects = fields.UUID(required=True)
    data = fields.Dict(required=True, metadata={
        "description": "The full corrected data of the SessionCompleted or PainReported "
        "named by `corrects`."
    })
    reason = text(500, required=True)

    @post_load
    def load_corrected_data(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # Which type it corrects is known only from the history; the data's
        # own shape says which it claims to be, and the aggregate checks that
        # claim against the corrected event.
        kind = "PainReported" if "pain_nrs" in data["data"] else "SessionCompleted"
        try:
            corrected = DATA_LOADERS[kind].load(data["data"])
        except ValidationError as error:
            raise ValidationError(error.messages, "data") from None
        return {**data, "corrects": str(data["corrects"]), "data": corrected}


DATA_SCHEMAS: dict[str, type[Schema]] = {
    "ProgrammeStarted": ProgrammeStartedData,
    "SessionCompleted": SessionCompletedData,
    "SessionMissed": SessionMissedData,
    "PainReported": PainReportedData,
    "PlanAdjusted": PlanAdjustedData,
    "AdverseEventReported": AdverseEventReportedData,
    "ProgrammePaused": ProgrammePausedData,
    "ProgrammeResumed": ProgrammeResumedData,
    "ProgrammeDischarged": ProgrammeDischargedData,
    "EntryCorrected": EntryCorrectedData,
}


#: One instance per type, made once: building a marshmallow schema costs far
#: more than loading with it, and loading does not change the instance.
DATA_LOADERS: dict[str, Schema] = {name: schema() for name, schema in DATA_SCHEMAS.items()}


class EventEnvelopeSchema(Schema):
    event_id = fields.UUID(required=True, metadata={"description": "The idempotency key."})
    type = StrictString(required=True, validate=OneOf(list(DATA_SCHEMAS)))
    occurred_at = Rfc3339DateTime(required=True, metadata={
        "description": "When it happened (RFC 3339 with offset)."
    })
    recorded_by = StrictString(required=True, validate=RECORDED_BY)
    data = fields.Dict(required=True, metadata={
        "description": "The event's data; its fields depend on `type` (see domain.md)."
    })

    @post_load
    def load_data(self, envelope: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        try:
            data = DATA_LOADERS[envelope["type"]].load(envelope["data"])
        except ValidationError as error:
            raise ValidationError(error.messages, "data") from None
        return {**envelope, "data": data}


class EventPostSchema(Schema):
    """One envelope, or a batch: `{"events": [...], "expected_version": n}`."""

    events = fields.List(
        fields.Nested(EventEnvelopeSchema),
        required=True,
        validate=Length(1, MAX_EVENTS_PER_POST),
    )
    expected_version = StrictInteger(validate=Range(min=0), metadata={
        "description": "The programme's version before this post (0 for a new programme); "
        "409 if it differs."
    })

    @pre_load
    def accept_single_envelope(self, body: Any, **kwargs: Any) -> Any:
        # A single envelope is the same as a batch of one.
        if isinstance(body, dict) and "events" not in body:
            envelope = dict(body)
            batch: dict[str, Any] = {"events": [envelope]}
            if "expected_version" in envelope:
                batch["expected_version"] = envelope.pop("expected_version")
            return batch
        return body

    @validates_schema
    def event_ids_are_distinct(self, data: dict[str, Any], **kwargs: Any) -> None:
        seen: set[Any] = set()
        for index, envelope in enumerate(data.get("events", [])):
            if envelope["event_id"] in seen:
                raise ValidationError(
                    {"events": {index: {"event_id": ["Appears twice in this batch."]}}}
                )
            seen.add(envelope["event_id"])


class SingleEventPostSchema(EventEnvelopeSchema):
    """One envelope posted alone, as a batch of one: `EventPostSchema` loads
    this form too (its pre_load). Only for the OpenAPI document."""

    expected_version = StrictInteger(validate=Range(min=0), metadata={
        "description": "The programme's version before this post (0 for a new programme); "
        "409 if it differs."
    })
