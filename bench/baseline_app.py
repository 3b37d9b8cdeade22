"""The baseline of P1, P4 and P5: a trivial Flask app under the same gunicorn settings.

- `POST /v1/clinics/<c>/programmes/<p>/events` parses the same JSON body as
  the service (one envelope or a batch) and answers 201 with a receipt of the
  same shape: no validation, no store.
- `GET /body/<name>` answers the JSON object saved in
  `$BENCH_BODIES_DIR/<name>.json` (a copy of one of our real responses, so
  the same size and shape), serialized on every request.

Run by bench/common.py as
`gunicorn -c deploy/gunicorn.conf.py "bench.baseline_app:create_app()"`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)
    bodies_dir = Path(os.environ.get("BENCH_BODIES_DIR", "bench/data/bodies"))
    bodies: dict[str, Any] = {}

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    @app.post("/v1/clinics/<clinic_id>/programmes/<programme_id>/events")
    def post_events(clinic_id: str, programme_id: str) -> Any:
        body = request.get_json()
        events = body["events"] if "events" in body else [body]
        receipt = {
            "programme_id": programme_id,
            "clinic_id": clinic_id,
            "version": len(events),
            "recorded": [
                {"event_id": e["event_id"], "type": e["type"], "version": n, "position": n}
                for n, e in enumerate(events, start=1)
            ],
        }
        return jsonify(receipt), 201

    @app.get("/body/<name>")
    def body(name: str) -> Any:
        if name not in bodies:
            path = bodies_dir / f"{name}.json"
            if not name.replace("-", "").isalnum() or not path.exists():
                abort(404)
            bodies[name] = json.loads(path.read_text())
        return jsonify(bodies[name])

    return app
