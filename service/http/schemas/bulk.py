"""Schemas of bulk ingest: the lines clinic systems send, the lines they get back."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Range

from service.http.schemas.events import EventEnvelopeSchema
from service.http.schemas.fields import MAX_STORED_INTEGER, StrictInteger
from service.http.schemas.responses import ProblemSchema, ReceiptSchema


class BulkLineSchema(EventEnvelopeSchema):
    """One line of a bulk upload: an event envelope and the programme it is for."""

    programme_id = fields.UUID(required=True, metadata={
        "description": "The programme this event is for (of the clinic in the path)."
    })
    expected_version = StrictInteger(validate=Range(0, MAX_STORED_INTEGER), metadata={
        "description": "The programme's version before this line (0 for a new programme), "
        "after the lines before it; the line's result is 409 if it differs."
    })


class BulkSummarySchema(Schema):
    lines = fields.Integer(required=True, metadata={"description": "Lines answered."})
    recorded = fields.Integer(required=True, metadata={"description": "Answered 201."})
    replayed = fields.Integer(required=True, metadata={
        "description": "Answered 200: recorded before, with identical content."})
    failed = fields.Integer(required=True, metadata={"description": "Answered with a problem."})
    complete = fields.Boolean(required=True, metadata={
        "description": "False when the upload was cut (its size limit, a stalled or broken "
        "body): the lines after the last one answered were not read."})


class BulkResultSchema(Schema):
    """One line of the answer: a line's result, or the summary that ends the answer."""

    line = fields.Integer(metadata={"description": "The upload's line (1 = the first)."})
    status = fields.Integer(metadata={
        "description": "What a single post of this line would have been answered: 201, 200, "
        "or the problem's status."})
    receipt = fields.Nested(ReceiptSchema, metadata={
        "description": "201 or 200: as the single post's receipt."})
    problem = fields.Nested(ProblemSchema, metadata={
        "description": "Why this line was not recorded (RFC 9457)."})
    summary = fields.Nested(BulkSummarySchema, metadata={
        "description": "The last line of every complete answer."})
