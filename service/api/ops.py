"""Operations: liveness (and, later, readiness and metrics)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from service.access import public
from service.openapi import LedgerBlueprint

blp = LedgerBlueprint("ops", __name__, description="Operations")


class HealthSchema(Schema):
    status = fields.String(required=True)


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthSchema)
@public
def healthz() -> Any:
    """The process is alive (no auth, touches no store)."""
    return {"status": "ok"}
