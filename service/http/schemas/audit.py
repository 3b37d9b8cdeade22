"""Schemas of the audit endpoints: the global log and its verification."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Range

from service.http.schemas.fields import MAX_STORED_INTEGER
from service.http.schemas.responses import EVENT_DATA


class GlobalLogQuerySchema(Schema):
    # One less than the largest stored integer: the log is read from after + 1.
    after = fields.Integer(load_default=0, validate=Range(0, MAX_STORED_INTEGER - 1), metadata={
        "description": "Return events after this position (the previous page's `next`)."
    })
    limit = fields.Integer(load_default=100, validate=Range(1, 1000))


class LogEventSchema(Schema):
    """An event as in a programme's history, plus where it sits in the global log.

    Fields other than `position` are null only where the store is damaged
    (`GET /v1/audit/verify` says where and how)."""

    position = fields.Integer(required=True, metadata={
        "description": "The event's place in the gap-free global log (1, 2, 3, ...)."
    })
    event_id = fields.UUID(required=True, allow_none=True)
    type = fields.String(required=True, allow_none=True)
    version = fields.Integer(required=True, allow_none=True)
    programme_id = fields.UUID(required=True, allow_none=True)
    clinic_id = fields.String(required=True, allow_none=True)
    occurred_at = fields.String(required=True, allow_none=True)
    recorded_at = fields.String(required=True, allow_none=True)
    recorded_by = fields.String(required=True, allow_none=True)
    data = fields.Dict(required=True, allow_none=True, metadata={"description": EVENT_DATA})
    schema_version = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The version of its type's schema the event was recorded under; "
        "`data` is shown in this release's version (older events are upcast, the stored "
        "bytes never change)."
    })
    newer_release = fields.Boolean(required=True, allow_none=True, metadata={
        "description": "True for an event recorded by a newer release of the service than "
        "this one (during a rolling upgrade): its `data` is shown as stored."
    })
    chain_hash = fields.String(required=True, allow_none=True, metadata={
        "description": "The entry's integrity chain hash: SHA-256 over the previous "
        "entry's hash and this entry's stored content."
    })


class GlobalLogSchema(Schema):
    events = fields.List(fields.Nested(LogEventSchema), required=True)
    next = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Pass as ?after= for the next page; null when this page reached "
        "the end of the log (poll again with the last position to follow it)."
    })


class ChainHeadSchema(Schema):
    position = fields.Integer(required=True)
    chain_hash = fields.String(required=True)


class ChainBreakSchema(Schema):
    position = fields.Integer(required=True, metadata={
        "description": "The first position where the store no longer matches its chain."
    })
    kind = fields.String(required=True, metadata={
        "description": "changed, missing, inserted, reordered, truncated, rewritten "
        "(differs from a signed checkpoint), bad_checkpoint (a checkpoint forged, altered, "
        "signed by an unknown key or out of its chain) or missing_checkpoint (checkpoint "
        "rows deleted)."
    })
    detail = fields.String(required=True)


class CheckpointSchema(Schema):
    position = fields.Integer(required=True)
    chain_hash = fields.String(required=True)
    signed_at = fields.String(required=True)
    signature = fields.String(required=True)
    previous = fields.String(required=True, allow_none=True, metadata={
        "description": "The signature of the checkpoint before it, which it signs too."
    })
    access_log_head = fields.Dict(allow_none=True, metadata={
        "description": "The access log's newest entry when it was signed (`entry_id`, "
        "`chain_hash`), as the checkpoint log records it."
    })


class CheckpointStatusSchema(Schema):
    checked = fields.Boolean(required=True, metadata={
        "description": "False when the chain alone was checked, on request."
    })
    key_configured = fields.Boolean(required=True, metadata={
        "description": "Whether TRACTION_CHECKPOINT_KEY is set (the key that signs); "
        "without any key the log cannot be shown whole."
    })
    log_configured = fields.Boolean(required=True, metadata={
        "description": "Whether TRACTION_CHECKPOINT_LOG is set (the copy of the "
        "checkpoints outside the database); without it the log cannot be shown whole."
    })
    stored = fields.Integer(required=True)
    logged = fields.Integer(required=True, metadata={
        "description": "Checkpoints in the checkpoint log outside the database."
    })
    authenticated = fields.Integer(required=True)
    latest_authenticated = fields.Integer(required=True, allow_none=True)
    written = fields.Nested(CheckpointSchema, required=True, allow_none=True, metadata={
        "description": "The checkpoint this verification signed at the head, if any."
    })
    write_error = fields.String(required=True, allow_none=True, metadata={
        "description": "Why no checkpoint could be written (the checkpoint log could not "
        "be appended to); null otherwise."
    })


class AccessLogBreakSchema(Schema):
    entry_id = fields.Integer(required=True)
    detail = fields.String(required=True)


class AccessLogCheckSchema(Schema):
    entries_checked = fields.Integer(required=True)
    failure = fields.Nested(AccessLogBreakSchema, required=True, allow_none=True)


class VerifyReportSchema(Schema):
    ok = fields.Boolean(required=True)
    events_checked = fields.Integer(required=True)
    head = fields.Nested(ChainHeadSchema, required=True, allow_none=True, metadata={
        "description": "The last verified entry; null for an empty log."
    })
    failure = fields.Nested(ChainBreakSchema, required=True, allow_none=True)
    unverifiable = fields.String(required=True, allow_none=True, metadata={
        "description": "Why the log cannot be shown whole although no break was found "
        "(no checkpoint key, no checkpoint log); `ok` is then false."
    })
    access_log = fields.Nested(AccessLogCheckSchema, required=True, allow_none=True, metadata={
        "description": "The access log's own chain, checked with the events' chain."
    })
    checkpoints = fields.Nested(CheckpointStatusSchema, required=True)
    warnings = fields.List(fields.String(), required=True)
    rewrites = fields.List(fields.Dict(), required=True, metadata={
        "description": "Each recorded rewrite of stored events: `traction migrate` sealing "
        "personal fields an earlier release stored in the clear (when, positions, "
        "events sealed, old and new chain head, superseded checkpoints, signature and "
        "`signature_check`: valid, invalid, unknown-key or unsigned). An invalid one fails "
        "the verification."
    })


class VerificationStartSchema(Schema):
    checkpoints = fields.Boolean(load_default=True, metadata={
        "description": "false: check the chain alone, without the signed checkpoints "
        "(the report then says so, and cannot show a truncated tail)."
    })


class VerificationSchema(Schema):
    verification_id = fields.String(required=True)
    state = fields.String(required=True, metadata={
        "description": "queued, running, succeeded (the verification ran to its end: read "
        "`report.ok` for its verdict), failed (it could not run: `error`) or abandoned "
        "(the worker running it stopped: start a new one)."
    })
    checkpoints = fields.Boolean(required=True)
    requested_at = fields.String(required=True)
    started_at = fields.String(required=True, allow_none=True)
    finished_at = fields.String(required=True, allow_none=True)
    events_checked = fields.Integer(required=True, metadata={
        "description": "Progress: the events verified so far (updated every few seconds)."
    })
    events_total = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The events to verify, once the walk has begun."
    })
    report = fields.Nested(VerifyReportSchema, required=True, allow_none=True, metadata={
        "description": "The verification's report, once it has succeeded."
    })
    error = fields.String(required=True, allow_none=True)
