"""Schemas for clinics, tokens and the access log."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import Length, OneOf, Range, Regexp

from service.http.schemas.fields import MAX_STORED_INTEGER, Rfc3339DateTime, StrictString
from service.http.schemas.responses import ReceiptSchema
from service.storage.directory import ROLES
from service.storage.names import SHOWN_TEXT_PATTERN, why_not_shown_text

CLINIC_ID = Regexp(r"^[a-z0-9][a-z0-9-]{1,62}$", error="Must match {regex}.")


def shown_text(value: str) -> None:
    """Names and labels are printable text (service/storage/names.py)."""
    if value and (unsafe := why_not_shown_text(value)) is not None:
        raise ValidationError(unsafe[0].upper() + unsafe[1:] + ".")



class ClinicCreateSchema(Schema):
    clinic_id = StrictString(required=True, validate=CLINIC_ID)
    name = StrictString(required=True, validate=[Length(1, 200), shown_text], metadata={
        "pattern": SHOWN_TEXT_PATTERN,
        "description": "Shown on dashboards: printable text, without control, bidirectional "
                       "or zero-width characters, and no space at either end."})


class ClinicSchema(Schema):
    clinic_id = fields.String(required=True)
    name = fields.String(required=True)
    registered_at = fields.String(required=True)
    deactivated_at = fields.String(allow_none=True, metadata={
        "description": "When the clinic was deactivated (its tokens stopped working; its "
                       "records stay, for auditors); null while it is active."})


class ClinicListSchema(Schema):
    clinics = fields.List(fields.Nested(ClinicSchema), required=True)


class TokenCreateSchema(Schema):
    role = StrictString(required=True, validate=OneOf(ROLES))
    clinic_id = StrictString(load_default=None, allow_none=True, validate=CLINIC_ID)
    label = StrictString(load_default="", validate=[Length(0, 200), shown_text], metadata={
        "pattern": SHOWN_TEXT_PATTERN,
        "description": "Who or what uses it, shown in the access log: printable text, as a "
                       "clinic's name."})
    expires_at = Rfc3339DateTime(load_default=None, allow_none=True, metadata={
        "description": "When the token stops working (in the future); none: it does not "
                       "expire. Prefer tokens that expire, and issue the next before."})


class TokenSchema(Schema):
    token_id = fields.String(required=True)
    role = fields.String(required=True)
    clinic_id = fields.String(allow_none=True)
    label = fields.String(required=True)
    revoked = fields.Boolean(required=True)
    issued_at = fields.String(allow_none=True)
    expires_at = fields.String(allow_none=True, metadata={
        "description": "When it stops working; null: never."})
    revoked_at = fields.String(allow_none=True)


class TokenListQuerySchema(Schema):
    clinic_id = StrictString(validate=CLINIC_ID, metadata={
        "description": "Only the tokens of this clinic."})


class TokenListSchema(Schema):
    tokens = fields.List(fields.Nested(TokenSchema), required=True, metadata={
        "description": "Every token, in the order issued, without its secret (which is "
                       "never stored)."})


class IssuedTokenSchema(TokenSchema):
    token = fields.String(required=True, metadata={
        "description": "The bearer token. Shown only this once: store it now."
    })


class AccessLogQuerySchema(Schema):
    after = fields.Integer(load_default=0, validate=Range(0, MAX_STORED_INTEGER))
    limit = fields.Integer(load_default=100, validate=Range(1, 1000))


class AccessLogEntrySchema(Schema):
    entry_id = fields.Integer(required=True)
    at = fields.String(required=True)
    action = fields.String(required=True)
    token_id = fields.String(allow_none=True)
    token_label = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    method = fields.String(allow_none=True)
    route = fields.String(allow_none=True)
    clinic_id = fields.String(allow_none=True)
    programme_id = fields.String(allow_none=True)
    remote_addr = fields.String(allow_none=True)
    detail = fields.String(allow_none=True, metadata={
        "description": "What was asked: the status, and the query parameters the route "
        "accepts with their values when they are plain numbers, times or statuses; any "
        "other value, and any other parameter, is not recorded."
    })
    chain_hash = fields.String(allow_none=True, metadata={
        "description": "The entry's link in the access log's own integrity chain (null "
        "for entries written before it existed); `GET /v1/audit/verify` checks it."
    })


class AccessLogSchema(Schema):
    entries = fields.List(fields.Nested(AccessLogEntrySchema), required=True)
    next = fields.Integer(allow_none=True, metadata={
        "description": "Pass as ?after= for the next page; null at the end."
    })


class ErasureRequestSchema(Schema):
    reason = StrictString(required=True, validate=Length(1, 500), metadata={
        "description": "Why the personal data is erased (recorded, and shown to auditors): "
        "name the request, e.g. its reference, never the patient."
    })


class PatientErasureRequestSchema(ErasureRequestSchema):
    patient_ref = StrictString(required=True, validate=Regexp(
        r"^[A-Za-z0-9._-]{1,64}$", error="Must be a patient_ref as the clinic posted it."),
        metadata={"description": "The clinic's pseudonymous key of the patient whose every "
                  "programme at this clinic is erased."})


class PatientErasureSchema(Schema):
    erased = fields.List(fields.Nested(ReceiptSchema), required=True, metadata={
        "description": "The receipt of each programme's erasure (a programme erased before "
                       "answers its first erasure's receipt)."
    })
