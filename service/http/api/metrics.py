"""Operations: GET /metrics, the Prometheus text exposition (no auth, no patient data)."""

from __future__ import annotations

from flask import Response

from service.http import metrics as service_metrics
from service.http.access import public
from service.http.api.context import components
from service.http.openapi import LedgerBlueprint

blp = LedgerBlueprint("metrics", __name__, description="Operations: Prometheus metrics")


@blp.route("/metrics", methods=["GET"])
@blp.response(200, {"type": "string"}, content_type="text/plain",
              description="Prometheus text format 0.0.4, summed over every gunicorn worker.",
              example='traction_events_recorded_total{type="SessionCompleted"} 1184.0\n')
@public
def metrics() -> Response:
    """Request counts and latencies, events recorded, conflicts, replays, projection lag."""
    return Response(service_metrics.exposition(components()),
                    content_type=service_metrics.CONTENT_TYPE)
