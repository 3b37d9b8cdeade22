"""Auditing: the access log (and the global log and its verification)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from service.access import allow
from service.openapi import LedgerBlueprint, problems
from service.schemas.admin import AccessLogQuerySchema, AccessLogSchema

blp = LedgerBlueprint("audit", __name__, url_prefix="/v1/audit", description="Auditing")


@blp.route("/access-log", methods=["GET"])
@blp.arguments(AccessLogQuerySchema, location="query", as_kwargs=True)
@blp.response(200, AccessLogSchema)
@problems(blp, 401, 403)
@allow("auditor")
def access_log(after: int, limit: int) -> Any:
    """Recorded reads of patient-level data, and changes to clinics and tokens."""
    entries = current_app.extensions["traction.directory"].access_log(after, limit)
    return {
        "entries": entries,
        "next": entries[-1]["entry_id"] if len(entries) == limit else None,
    }
