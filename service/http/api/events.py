"""Writing: clinic systems post events to a programme."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import current_app

from domain.application import EventEnvelope
from service.http import examples
from service.http.access import allow
from service.http.api.context import positions, programmes
from service.http.openapi import LedgerBlueprint, problems
from service.http.schemas.events import EventPostSchema
from service.http.schemas.responses import ReceiptSchema

blp = LedgerBlueprint("events", __name__, url_prefix="/v1", description="Post programme events")


@blp.route("/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>/events", methods=["POST"])
@blp.arguments(EventPostSchema(), examples=examples.EVENT_POSTS, description=(
    "One event envelope, or a batch `{\"events\": [...], \"expected_version\": n}` "
    "of 1-500 envelopes recorded atomically. Each event's `data` holds the fields of "
    "its `type` (the `...Data` schemas)."
))
@blp.response(201, ReceiptSchema, description="Recorded.", example=examples.RECEIPT)
@blp.alt_response(200, schema=ReceiptSchema, success=True, example=examples.RECEIPT,
                  description="Every event was already recorded with identical content: "
                  "the original receipt; nothing new recorded.")
@problems(blp, 400, 401, 403, 404, 408, 409, 413, 415)
@allow("writer")
def post_events(body: dict[str, Any], clinic_id: str, programme_id: UUID) -> Any:
    """Record events of a programme: one, or a batch recorded atomically.

    The first event of a new programme is its ProgrammeStarted. Programme ids and
    event ids are the clinic's own: another clinic's are never compared with
    them. Posting the same events again (same event_ids and content) answers 200
    with the original receipt and records nothing; an event_id of this clinic
    reused for other content is a 409, as is an `expected_version` that is not
    the programme's version. A refused
    rule is a 422 naming it (`rule`), with the refused event's index.
    """
    envelopes = [EventEnvelope(**envelope) for envelope in body["events"]]
    receipt = programmes().record_events(
        clinic_id, programme_id, envelopes, body.get("expected_version")
    )
    # The receipt is plain JSON already (ReceiptSchema documents it): sent as
    # it is, a 500-event receipt skips a marshmallow dump of every item.
    # With the clinic's positions (service/storage/clinic_positions.py): a writer's
    # token is always one clinic's.
    response = current_app.json.response(positions().receipt(receipt))
    response.status_code = 200 if receipt.replayed else 201
    return response

