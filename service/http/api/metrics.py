"""Operations: GET /metrics, the Prometheus text exposition (no patient data, but the
whole network's activity: for the scrape token or an admin token only)."""

from __future__ import annotations

from flask import Response

from service.http import metrics as service_metrics
from service.http.access import allow
from service.http.api.context import components
from service.http.openapi import LedgerBlueprint, problems

blp = LedgerBlueprint("metrics", __name__, description="Operations: Prometheus metrics")


@blp.route("/metrics", methods=["GET"])
@blp.response(200, {"type": "string"}, content_type="text/plain",
              description="Prometheus text format 0.0.4, summed over every gunicorn worker.",
              example='traction_events_recorded_total{type="SessionCompleted"} 1184.0\n')
@problems(blp, 401, 403)
@allow("admin", scrape=True)
def metrics() -> Response:
    """Request counts and latencies, events recorded, conflicts, replays, projection lag.

    `Authorization: Bearer <TRACTION_METRICS_TOKEN>` (what a Prometheus scrape sends), or an
    admin token: the counts are the whole network's, which no clinic may see."""
    return Response(service_metrics.exposition(components()),
                    content_type=service_metrics.CONTENT_TYPE)
