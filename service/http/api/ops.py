"""Operations: liveness and readiness."""

from __future__ import annotations

import logging
from typing import Any

from marshmallow import Schema, fields

from projections.status import all_statuses
from service.http import examples
from service.http.access import is_operator, public
from service.http.api.context import components
from service.http.openapi import LedgerBlueprint

log = logging.getLogger(__name__)

blp = LedgerBlueprint("ops", __name__, description="Operations")


class HealthSchema(Schema):
    status = fields.String(required=True)


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthSchema, example=examples.HEALTH)
@public
def healthz() -> Any:
    """The process is alive (no auth, touches no store)."""
    return {"status": "ok"}


class ProjectionReadinessSchema(Schema):
    name = fields.String(required=True)
    live_version = fields.Integer(required=True)
    position = fields.Integer(required=True)
    head = fields.Integer(required=True, metadata={"description": "The log's last position."})
    lag_events = fields.Integer(required=True)
    lag_seconds = fields.Float(required=True, metadata={
        "description": "How long ago the oldest event not yet processed was recorded."
    })
    poison_events = fields.Integer(required=True, metadata={
        "description": "Events parked because they cannot be processed (not ready while > 0)."
    })
    held_events = fields.Integer(required=True)


class ReplicaReadinessSchema(Schema):
    state = fields.String(required=True, metadata={
        "description": "streaming, unreachable, or primary (the read URL names the primary)"})
    serving_reads = fields.Boolean(required=True, metadata={
        "description": "Whether this worker sends reads to the replica now (false: to the "
                       "primary, until a probe reaches the replica again)."})
    head = fields.Integer(allow_none=True, metadata={
        "description": "The last position the replica has replayed."})
    lag_events = fields.Integer(allow_none=True, metadata={
        "description": "Events recorded on the primary that the replica does not have yet."})
    lag_seconds = fields.Float(allow_none=True, metadata={
        "description": "How long ago the oldest event the replica lacks was recorded."})
    lag_bytes = fields.Integer(allow_none=True, metadata={
        "description": "WAL the replica has not replayed yet (events, read models, "
                       "everything)."})


class ReadinessSchema(Schema):
    status = fields.String(required=True, metadata={"description": "ready or not_ready"})
    store = fields.String(required=True, metadata={"description": "reachable or unreachable"})
    projections = fields.List(fields.Nested(ProjectionReadinessSchema), metadata={
        "description": "Each projection's position, the log's head and the lag: shown only "
                       "to operators (the scrape token, or a token for all clinics), since "
                       "they tell the whole network's activity."})
    replica = fields.Nested(ReplicaReadinessSchema, allow_none=True, metadata={
        "description": "The read replica (TRACTION_READ_DATABASE_URL; null without one), "
                       "shown only to operators, as `projections`. One that cannot be "
                       "reached does not make the service unready: its reads go to the "
                       "primary."})


@blp.route("/readyz", methods=["GET"])
@blp.response(200, ReadinessSchema, description="Ready.", example=examples.READINESS)
@blp.alt_response(503, schema=ReadinessSchema, description=(
    "Not ready: the store is unreachable, or a projection has a parked poison event."
))
@public
def readyz() -> Any:
    """The store is reachable and nothing is parked (no token needed); to operators
    (the scrape token, or a token for all clinics) also each projection's position and
    lag, and the read replica's: the network's activity, which no clinic may see."""
    parts = components()
    operator = is_operator()
    try:
        statuses = all_statuses(parts.programmes, parts.read_models)
        replica = parts.replica.status().as_dict() if parts.replica else None
    except Exception as error:  # whatever the driver raises, the answer is "not ready"
        log.warning("readiness: the store cannot be read: %s", type(error).__name__)
        return ({"status": "not_ready", "store": "unreachable", "projections": [],
                 "replica": None} if operator else
                {"status": "not_ready", "store": "unreachable"}), 503
    projections = [
        {
            "name": s.name, "live_version": s.live_version, "position": s.position,
            "head": s.head, "lag_events": s.lag_events, "lag_seconds": s.lag_seconds,
            "poison_events": len(s.poison), "held_events": s.held,
        }
        for s in statuses
    ]
    ready = all(p["poison_events"] == 0 for p in projections)
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "store": "reachable"}
    if operator:
        body.update(projections=projections, replica=replica)
    return body, 200 if ready else 503
