"""The FHIR R4 face (docs/fhir.md): a programme as a Bundle, the
CapabilityStatement. Media type application/fhir+json; errors on these routes
are OperationOutcomes (service/http/problems.py words them)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import metadata
from typing import Any
from uuid import UUID

from flask import Response, json, request

from service.fhir.capability import capability_statement
from service.fhir.outcomes import FHIR_JSON
from service.fhir.reads import programme_bundle
from service.http.access import allow, public
from service.http.api.context import directory, programmes
from service.http.openapi import LedgerBlueprint, problems
from service.http.schemas.responses import ProgrammeQuerySchema

blp = LedgerBlueprint("fhir", __name__, url_prefix="/v1",
                      description="HL7 FHIR R4: programmes as resources (docs/fhir.md)")

FHIR_BODY = {"content": {FHIR_JSON: {"schema": {"type": "object"}}}}


def fhir_response(resource: dict[str, Any], status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(resource), status=status, mimetype=FHIR_JSON)
    response.headers.update(headers or {})
    return response


def clinic_base(clinic_id: str) -> str:
    """The clinic's FHIR base URL, as this request reached the service."""
    return f"{request.host_url.rstrip('/')}/v1/clinics/{clinic_id}/fhir"


def clinic_name(clinic_id: str) -> str | None:
    return next((c["name"] for c in directory().clinics() if c["clinic_id"] == clinic_id),
                None)


@blp.route("/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>/fhir",
           methods=["GET"])
@blp.arguments(ProgrammeQuerySchema(), location="query", as_kwargs=True)
@blp.doc(responses={"200": {"description": "A FHIR Bundle of type collection: the "
                            "programme's resources (docs/fhir.md).", **FHIR_BODY}})
@problems(blp, 401, 403, 404, 422)
@allow("writer", "viewer", "auditor", patient_data=True)
def get_programme_fhir(clinic_id: str, programme_id: UUID, version: int | None = None,
                       as_of: Any = None) -> Any:
    """The programme as FHIR resources, now, after `?version=N`, or as known `?as_of=`."""
    bundle = programme_bundle(programmes(), clinic_id, clinic_name(clinic_id), programme_id,
                              clinic_base(clinic_id), version=version, as_of=as_of)
    return fhir_response(bundle)


@blp.route("/fhir/metadata", methods=["GET"])
@blp.doc(responses={"200": {"description": "The CapabilityStatement.", **FHIR_BODY}})
@public
def get_fhir_metadata() -> Any:
    """What the FHIR face supports: a CapabilityStatement (no token needed, as FHIR
    servers publish theirs)."""
    statement = capability_statement(f"{request.host_url.rstrip('/')}/v1",
                                     metadata.version("traction-ledger"),
                                     datetime.now(UTC).date().isoformat())
    return fhir_response(statement)
