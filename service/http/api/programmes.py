"""Reading one programme from the event store (always current).

Every read answers with an ETag (a digest of its body) and `If-None-Match`
with 304. A read at an explicit `?version=` keeps its ETag until the
programme is erased, which changes its personal fields: so no programme read
is declared immutable (service/http/conditional.py, programme_reads.py).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from service.http import conditional, examples
from service.http.access import allow
from service.http.api.context import positions_of, programme_reads
from service.http.openapi import CONDITIONAL_HEADERS, LedgerBlueprint, problems, revalidated
from service.http.schemas.responses import (
    HistoryQuerySchema,
    HistorySchema,
    ProgrammeQuerySchema,
    ProgrammeStateSchema,
)

blp = LedgerBlueprint("programmes", __name__, url_prefix="/v1",
                      description="Read a programme's state and history")


@blp.route("/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>", methods=["GET"])
@blp.arguments(ProgrammeQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, ProgrammeStateSchema, headers=CONDITIONAL_HEADERS,
              example=examples.PROGRAMME_STATE)
@revalidated(blp)
@problems(blp, 401, 403, 404)
@allow("writer", "viewer", "auditor", patient_data=True)
def get_programme(clinic_id: str, programme_id: UUID, version: int | None = None,
                  as_of: Any = None) -> Any:
    """The programme now, after `?version=N`, or as known `?as_of=` a record time.

    A version the programme has not reached yet answers 404 `version-not-recorded`
    with its `current_version`; an `as_of` before its first event was recorded
    answers 404 `not-yet-recorded` with `first_recorded_at`.
    """
    body = programme_reads().state(clinic_id, programme_id, version=version, as_of=as_of)
    # Not immutable even at an explicit version: an erasure changes its personal fields.
    return conditional.answer(body.data, body.digest, patient_data=True)


@blp.route("/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>/events", methods=["GET"])
@blp.arguments(HistoryQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, HistorySchema, headers=CONDITIONAL_HEADERS, example=examples.HISTORY)
@revalidated(blp)
@problems(blp, 401, 403, 404)
@allow("writer", "viewer", "auditor", patient_data=True)
def get_history(clinic_id: str, programme_id: UUID, version: int | None = None) -> Any:
    """Every event of the programme in version order, or as they stood after `?version=N`
    (as current as the programme itself, whichever copy of the store answers)."""
    body = programme_reads().history(clinic_id, programme_id, version=version,
                                     clinic_positions=positions_of() is not None)
    return conditional.answer(body.data, body.digest, patient_data=True)
