"""Auditing: the global log, its verification, and the access log."""

from __future__ import annotations

from typing import Any

from service.audit import log
from service.audit.verify import verify_store
from service.http import examples
from service.http.access import allow
from service.http.api.context import components, directory, from_replica, programmes
from service.http.openapi import LedgerBlueprint, problems
from service.http.schemas.admin import AccessLogQuerySchema, AccessLogSchema
from service.http.schemas.audit import GlobalLogQuerySchema, GlobalLogSchema, VerifyReportSchema
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


@blp.route("/verify", methods=["GET"])
@blp.response(200, VerifyReportSchema, example=examples.VERIFY_REPORT)
@problems(blp, 401, 403)
@allow("auditor")
def verify_chain() -> Any:
    """Check the integrity chain over the whole log.

    Recomputes every entry's chain hash from the stored events, streaming, and
    answers `ok`, or the first position where the store breaks and how
    (`changed`, `missing`, `inserted`, `reordered`, `truncated`, `rewritten`,
    `bad_checkpoint`). When the service has TRACTION_CHECKPOINT_KEY, a verified
    head is checkpointed (signed), and the log must still reach every
    checkpoint; without it a truncated tail cannot be detected (see `warnings`).
    """
    parts = components()
    report = verify_store(log.audit_recorder(parts.programmes), parts.checkpoints,
                          parts.checkpoint_keys, parts.checkpoint_log,
                          access_log=parts.database)
    return report.as_dict()
