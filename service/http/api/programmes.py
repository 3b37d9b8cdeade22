"""Reading one programme from the event store (always current)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from flask import Response

from service.http import examples
from service.http.access import allow
from service.http.api.context import programmes, replica
from service.http.openapi import LedgerBlueprint, problems
from service.http.schemas.responses import HistorySchema, ProgrammeQuerySchema, ProgrammeStateSchema
from service.storage.replica import read_history

blp = LedgerBlueprint("programmes", __name__, url_prefix="/v1",
                description="Read a programme's state and history")


@blp.route("/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>", methods=["GET"])
@blp.arguments(ProgrammeQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, ProgrammeStateSchema, example=examples.PROGRAMME_STATE)
@problems(blp, 401, 403, 404)
@allow("writer", "viewer", "auditor", patient_data=True)
def get_programme(clinic_id: str, programme_id: UUID, version: int | None = None,
                  as_of: Any = None) -> Any:
    """The programme now, after `?version=N`, or as known `?as_of=` a record time.

    A version the programme has not reached yet answers 404 `version-not-recorded`
    with its `current_version`; an `as_of` before its first event was recorded
    answers 404 `not-yet-recorded` with `first_recorded_at`.
    """
    return programmes().programme(clinic_id, programme_id, version=version, as_of=as_of).state()


@blp.route("/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>/events", methods=["GET"])
@blp.response(200, HistorySchema, example=examples.HISTORY)
@problems(blp, 401, 403, 404)
@allow("writer", "viewer", "auditor", patient_data=True)
def get_history(clinic_id: str, programme_id: UUID) -> Any:
    """Every event of the programme in version order (as current as the programme
    itself, whichever copy of the store answers)."""
    events = read_history(programmes(), replica(), clinic_id, programme_id)
    # The items are plain JSON already: sending them as they are saves a
    # marshmallow dump of every event (HistorySchema documents the shape).
    return Response(json.dumps({
        "programme_id": str(programme_id),
        "clinic_id": clinic_id,
        "version": events[-1]["version"],
        "events": events,
    }), mimetype="application/json")
