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
from service.http.fhir_intake import MAX_ENTRIES, take_bundle
from service.http.openapi import LedgerBlueprint, problems
from service.http.problems import Problem
from service.http.schemas.responses import ProgrammeQuerySchema

blp = LedgerBlueprint("fhir", __name__, url_prefix="/v1",
                      description="HL7 FHIR R4: programmes as resources (docs/fhir.md)")

def fhir_body(example: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI body of FHIR JSON (any resource: FHIR's own schemas define them)."""
    return {"content": {FHIR_JSON: {"schema": {"type": "object"}, "example": example}}}


_EPISODE = {"url": "https://traction-ledger.org/fhir/StructureDefinition/episode-of-care",
            "valueReference": {"identifier": {
                "system": "https://traction-ledger.org/fhir/programme",
                "value": "3f2b8c1e-5d4a-4f6b-9c2d-7e8f9a0b1c2d"}}}
_OBSERVATION = {
    "resourceType": "Observation", "status": "final", "extension": [_EPISODE],
    "identifier": [{"system": "urn:ehr:pain-reports", "value": "r-1042"}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
    "effectiveDateTime": "2026-03-09T09:30:00+01:00", "valueInteger": 4,
}
TRANSACTION_EXAMPLE = {"resourceType": "Bundle", "type": "transaction", "entry": [
    {"resource": _OBSERVATION, "request": {"method": "POST", "url": "Observation"}}]}
RESPONSE_EXAMPLE = {"resourceType": "Bundle", "type": "transaction-response", "entry": [
    {"response": {"status": "201 Created",
                  "location": "Observation/0b6f4f0e-1c1d-5b8e-9a51-2f3c0d9e8a77",
                  "etag": 'W/"4"'}}]}
COLLECTION_EXAMPLE = {"resourceType": "Bundle", "type": "collection",
                      "timestamp": "2026-03-09T10:00:00+00:00", "entry": [
                          {"fullUrl": "https://ledger.example/v1/clinics/north-physio/fhir/"
                                      "Organization/north-physio",
                           "resource": {"resourceType": "Organization", "id": "north-physio",
                                        "name": "North Physio", "active": True}}]}
METADATA_EXAMPLE = {"resourceType": "CapabilityStatement", "status": "active",
                    "date": "2026-03-09", "kind": "instance", "fhirVersion": "4.0.1",
                    "format": ["application/fhir+json"]}


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
                            "programme's resources (docs/fhir.md).",
                            **fhir_body(COLLECTION_EXAMPLE)}})
@problems(blp, 401, 403, 404, 422)
@allow("writer", "viewer", "auditor", patient_data=True)
def get_programme_fhir(clinic_id: str, programme_id: UUID, version: int | None = None,
                       as_of: Any = None) -> Any:
    """The programme as FHIR resources, now, after `?version=N`, or as known `?as_of=`."""
    bundle = programme_bundle(programmes(), clinic_id, clinic_name(clinic_id), programme_id,
                              clinic_base(clinic_id), version=version, as_of=as_of)
    return fhir_response(bundle)


#: The media types a posted Bundle may come as.
FHIR_BODY_TYPES = (FHIR_JSON, "application/json")


@blp.route("/clinics/<clinic:clinic_id>/fhir", methods=["POST"])
@blp.doc(requestBody={
    "required": True,
    "description": "A FHIR Bundle of type transaction or batch (at most "
    f"{MAX_ENTRIES} entries) of Observation (pain reports) and Procedure (sessions) of the "
    "clinic's existing programmes, each naming its programme by the EpisodeOfCare "
    "identifier (docs/fhir.md).",
    **fhir_body(TRANSACTION_EXAMPLE),
}, responses={"200": {"description": "A transaction-response or batch-response Bundle: "
                      "per entry `201 Created` (or `200 OK`: recorded before) and its "
                      "location, or (batch) its refusal as an OperationOutcome.",
                      **fhir_body(RESPONSE_EXAMPLE)}})
@problems(blp, 400, 401, 403, 404, 409, 413, 415, 422)
@allow("writer")
def post_fhir_bundle(clinic_id: str) -> Any:
    """Record pain reports and sessions sent as FHIR resources."""
    if request.mimetype not in FHIR_BODY_TYPES:
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      f"Send the Bundle as {FHIR_JSON}.", expression=["Bundle"])
    try:
        body = json.loads(request.get_data())
    except ValueError:
        raise Problem(400, "invalid-json", "Bad Request", "The body is not JSON.",
                      expression=["Bundle"]) from None
    return fhir_response(take_bundle(programmes(), clinic_id, body))


@blp.route("/fhir/metadata", methods=["GET"])
@blp.doc(responses={"200": {"description": "The CapabilityStatement.",
                            **fhir_body(METADATA_EXAMPLE)}})
@public
def get_fhir_metadata() -> Any:
    """What the FHIR face supports: a CapabilityStatement (no token needed, as FHIR
    servers publish theirs)."""
    statement = capability_statement(f"{request.host_url.rstrip('/')}/v1",
                                     metadata.version("traction-ledger"),
                                     datetime.now(UTC).date().isoformat())
    return fhir_response(statement)
