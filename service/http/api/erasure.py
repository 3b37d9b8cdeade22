"""Erasure of a patient's personal data (GDPR Art. 17): crypto-shredding, by an admin.

`POST .../programmes/{id}/erasure` records the programme's ProgrammeErased
event (who, when, why: nothing personal) and destroys its data key
(`Programmes.erase`). From then on every read shows each personal field as
the fixed marker `[erased]` (domain.personal.ERASED), the coded clinical
values and the metrics stay as they were, and later posts are refused. A
repeated erasure answers the first one's receipt (200). The access log
records every erasure; auditors see that it happened, when and why.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import request

from service.http import examples
from service.http.access import actor, allow
from service.http.api.context import components, programmes
from service.http.openapi import LedgerBlueprint, problems
from service.http.problems import not_found
from service.http.schemas.admin import (
    ErasureRequestSchema,
    PatientErasureRequestSchema,
    PatientErasureSchema,
)
from service.http.schemas.responses import ReceiptSchema

blp = LedgerBlueprint("erasure", __name__, url_prefix="/v1",
                      description="Erasing a patient's personal data (crypto-shredding)")


@blp.route("/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>/erasure",
           methods=["POST"])
@blp.arguments(ErasureRequestSchema(), example=examples.ERASURE)
@blp.response(201, ReceiptSchema, example=examples.ERASURE_RECEIPT,
              description="Erased: the receipt of its ProgrammeErased event.")
@blp.alt_response(200, schema=ReceiptSchema, success=True, example=examples.ERASURE_RECEIPT,
                  description="Erased before: the first erasure's receipt, unchanged.")
@problems(blp, 400, 401, 403, 404, 408, 413, 415, 422)
@allow("admin")
def erase_programme(body: dict[str, Any], clinic_id: str, programme_id: UUID) -> Any:
    """Erase the patient's personal data in this programme: its data key is destroyed.

    Afterwards `patient_ref` and every free-text field (PlanAdjusted.reason,
    AdverseEventReported.description, ProgrammePaused.reason,
    ProgrammeDischarged.notes, EntryCorrected.reason) read as `[erased]` in the
    programme's state, its history at every version, its summary and the global log;
    scores, durations, modalities, outcomes and dates stay, and so do the metrics.
    Later posts to the programme are refused (422, rule `programme_erased`).
    Admin only; written to the access log.
    """
    # The docstring names the marker as domain.personal.ERASED spells it (a test checks).
    receipt = _erase(clinic_id, programme_id, body["reason"])
    return receipt.body(), 200 if receipt.replayed else 201


@blp.route("/clinics/<clinic:clinic_id>/patients/erasure", methods=["POST"])
@blp.arguments(PatientErasureRequestSchema(), example=examples.PATIENT_ERASURE)
@blp.response(200, PatientErasureSchema, example=examples.PATIENT_ERASED)
@problems(blp, 400, 401, 403, 404, 408, 413, 415, 422)
@allow("admin")
def erase_patient(body: dict[str, Any], clinic_id: str) -> Any:
    """Erase the personal data of every programme of one patient at this clinic.

    The patient is found by a keyed hash of their `patient_ref` at the clinic
    (the store never holds it in the clear); each of their programmes is erased
    as by `.../programmes/{programme_id}/erasure`, and reads `[erased]` after.
    A patient with no programme whose data is still held here: 404, as for any
    other not-found.
    """
    keyring = components().keyring
    targets = keyring.programmes_of(clinic_id, body["patient_ref"]) if keyring else []
    if not targets:
        raise not_found()
    # The keyring knows the programmes by their stored ids: each is erased, and
    # answered, under the clinic's own programme_id (domain/programme_aliases.py).
    named = programmes().clinic_programme_ids(targets)
    return {"erased": [_erase(clinic_id, named.get(programme_id, programme_id),
                              body["reason"]).body()
                       for programme_id in targets]}


def _erase(clinic_id: str, programme_id: UUID, reason: str) -> Any:
    """Erase one programme for the admin making this request, and log it."""
    who = actor()
    receipt = programmes().erase(clinic_id, programme_id,
                                 f"{who['token_label'] or 'admin'} ({who['token_id']})", reason)
    components().directory.record_access(
        "erasure", who, method=request.method, route=request.url_rule.rule
        if request.url_rule else request.path, clinic_id=clinic_id,
        programme_id=str(programme_id),
        detail=f"erasure at position {receipt.recorded[0]['position']}"
        + (" (repeated: first receipt)" if receipt.replayed else ""))
    return receipt
