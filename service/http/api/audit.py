"""Auditing: the global log, its verification, and the access log."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import g, url_for

from service.audit import log
from service.audit.jobs import Verifications, run_in_background
from service.audit.verify import verify_store
from service.http import examples
from service.http.access import allow
from service.http.api.context import components, directory, from_replica, programmes
from service.http.openapi import LedgerBlueprint, problems
from service.http.problems import not_found
from service.http.schemas.admin import AccessLogQuerySchema, AccessLogSchema
from service.http.schemas.audit import (
    GlobalLogQuerySchema,
    GlobalLogSchema,
    VerificationSchema,
    VerificationStartSchema,
    VerifyReportSchema,
)
from service.storage.replica import Replica

blp = LedgerBlueprint("audit", __name__, url_prefix="/v1/audit", description="Auditing")


@blp.route("/access-log", methods=["GET"])
@blp.arguments(AccessLogQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, AccessLogSchema, example=examples.ACCESS_LOG)
@problems(blp, 401, 403)
@allow("auditor")
def access_log(after: int, limit: int) -> Any:
    """Recorded reads of patient-level data, and changes to clinics and tokens.

    With a read replica the page is read from it: it ends where the replica's
    copy ends, and the next page goes on from its last entry."""
    def read(replica: Replica | None) -> list[dict[str, Any]]:
        copy = components().replica_directory if replica is not None else None
        return (copy or directory()).access_log(after, limit)

    entries = from_replica(read)
    return {
        "entries": entries,
        "next": entries[-1]["entry_id"] if len(entries) == limit else None,
    }


@blp.route("/events", methods=["GET"])
@blp.arguments(GlobalLogQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, GlobalLogSchema, example=examples.GLOBAL_LOG)
@problems(blp, 401, 403)
@allow("auditor", patient_data=True)
def global_log(after: int, limit: int) -> Any:
    """The global log: every clinic's events in position order.

    Positions run 1, 2, 3, ... with none skipped. Each event is shown as in its
    programme's history, plus `clinic_id`, `programme_id` and the entry's
    `chain_hash`. Page with `?after=` the previous page's `next`. With a read
    replica the page is read from it: it ends where the replica's copy ends (never
    with a gap in its middle), and the next page goes on from there.
    """
    events = from_replica(lambda replica: log.global_log(programmes(), after, limit, replica))
    return {"events": events, "next": events[-1]["position"] if len(events) == limit else None}


@blp.route("/verifications", methods=["POST"])
@blp.arguments(VerificationStartSchema(), location="query", as_kwargs=True)
@blp.response(202, VerificationSchema, example=examples.VERIFICATION_QUEUED, headers={
    "Location": {"description": "The job, to poll.", "schema": {"type": "string"}}})
@problems(blp, 401, 403)
@allow("auditor")
def start_verification(checkpoints: bool) -> Any:
    """Start verifying the whole log (the integrity chain, the signed checkpoints and
    the access log's chain) in the background; poll the job at `Location`.

    It runs in the worker that took this request, never in the request itself, so
    it finishes however long the log. One runs at a time: while one is queued or
    running, this answers that one. A job whose worker stops (a restart) is
    reported `abandoned`, and a new one can be started.
    """
    parts = components()
    jobs = Verifications(parts.database)
    token = g.get("token")
    job, new = jobs.start(token.label if token else None, checkpoints)
    if new:
        run_in_background(jobs, job["verification_id"], lambda progress: verify_store(
            log.audit_recorder(parts.programmes), parts.checkpoints, parts.checkpoint_keys,
            parts.checkpoint_log, progress=progress, use_checkpoints=checkpoints,
            access_log=parts.database))
    location = url_for("audit.verification", verification_id=job["verification_id"])
    return job, 202, {"Location": location}


@blp.route("/verifications/<uuid:verification_id>", methods=["GET"])
@blp.response(200, VerificationSchema, example=examples.VERIFICATION_DONE)
@problems(blp, 401, 403, 404)
@allow("auditor")
def verification(verification_id: UUID) -> Any:
    """A verification job: its state, progress and, once it has succeeded, its report."""
    job = Verifications(components().database).get(str(verification_id))
    if job is None:
        raise not_found()
    return job


@blp.route("/verify", methods=["GET"])
@blp.doc(deprecated=True)
@blp.response(200, VerifyReportSchema, example=examples.VERIFY_REPORT, headers={
    "Deprecation": {"description": "`true`: use POST /v1/audit/verifications.",
                    "schema": {"type": "string"}}})
@problems(blp, 401, 403)
@allow("auditor")
def verify_chain() -> Any:
    """Deprecated: verify within the request (removed in the next release).

    Use `POST /v1/audit/verifications`: at millions of events this request
    outlasts the worker's timeout. It answers as that job's report does.
    """
    parts = components()
    report = verify_store(log.audit_recorder(parts.programmes), parts.checkpoints,
                          parts.checkpoint_keys, parts.checkpoint_log,
                          access_log=parts.database)
    return report.as_dict(), 200, {
        "Deprecation": "true",
        "Link": '</v1/audit/verifications>; rel="successor-version"'}
