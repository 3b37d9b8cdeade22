"""The FHIR R4 face (docs/fhir.md): a programme as a Bundle, the
CapabilityStatement. Media type application/fhir+json; errors on these routes
are OperationOutcomes (service/http/problems.py words them)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import metadata
from typing import Any
from uuid import UUID

from flask import Response, json, request, send_file

from service.fhir.bulk import EXPORT_TYPES
from service.fhir.capability import capability_statement
from service.fhir.export_jobs import ClinicBusy
from service.fhir.outcomes import FHIR_JSON
from service.fhir.reads import programme_bundle
from service.http.access import allow, public
from service.http.api.context import components, directory, programmes
from service.http.fhir_intake import MAX_ENTRIES, take_bundle
from service.http.openapi import LedgerBlueprint, outcomes
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


@blp.route("/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>/fhir",
           methods=["GET"])
@blp.arguments(ProgrammeQuerySchema(), location="query", as_kwargs=True)
@blp.doc(responses={"200": {"description": "A FHIR Bundle of type collection: the "
                            "programme's resources (docs/fhir.md).",
                            **fhir_body(COLLECTION_EXAMPLE)}})
@outcomes(blp, 401, 403, 404, 422)
@allow("writer", "viewer", "auditor", patient_data=True)
def get_programme_fhir(clinic_id: str, programme_id: UUID, version: int | None = None,
                       as_of: Any = None) -> Any:
    """The programme as FHIR resources, now, after `?version=N`, or as known `?as_of=`."""
    bundle = programme_bundle(programmes(), clinic_id, directory().clinic_name(clinic_id),
                              programme_id, clinic_base(clinic_id), version=version,
                              as_of=as_of)
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
@outcomes(blp, 400, 401, 403, 404, 409, 413, 415, 422)
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


# ---- Bulk Data export (the HL7 FHIR Bulk Data Access IG's asynchronous pattern) ----

#: The `_outputFormat`s that name NDJSON, the only one written.
NDJSON_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
FHIR_NDJSON = "application/fhir+ndjson"
EXPORT_PARAMETERS = ("_outputFormat", "_type", "_since")
READERS = ("writer", "viewer", "auditor")
_ONE_TYPE = "(" + "|".join(EXPORT_TYPES) + ")"
TYPES_PATTERN = f"^{_ONE_TYPE}(,{_ONE_TYPE})*$"


def exports() -> Any:
    return components().fhir_exports


def bad_parameter(name: str, detail: str) -> Problem:
    return Problem(400, "bad-export-parameter", "Bad Request", detail, expression=[name])


def export_request() -> tuple[tuple[str, ...], datetime | None]:
    """The kick-off's `_type` and `_since`, checked (400 naming the parameter)."""
    for name in request.args:
        if name not in EXPORT_PARAMETERS:
            raise bad_parameter(name, f"{name} is not supported; the parameters are "
                                f"{', '.join(EXPORT_PARAMETERS)}.")
    output_format = request.args.get("_outputFormat")
    if output_format is not None and output_format not in NDJSON_FORMATS:
        raise bad_parameter("_outputFormat", f"Only {FHIR_NDJSON} is written.")
    types: tuple[str, ...] = EXPORT_TYPES
    if "_type" in request.args:
        types = tuple(t.strip() for t in request.args["_type"].split(",") if t.strip())
        unknown = [t for t in types if t not in EXPORT_TYPES]
        if unknown or not types:
            raise bad_parameter("_type", f"Not exported: {', '.join(unknown) or 'none given'}; "
                                f"the types are {', '.join(EXPORT_TYPES)}.")
    since = None
    if "_since" in request.args:
        try:
            since = datetime.fromisoformat(request.args["_since"])
        except ValueError:
            since = None
        if since is None or since.tzinfo is None:
            raise bad_parameter("_since", "_since must be an instant with its UTC offset, "
                                "e.g. 2026-03-01T00:00:00Z.")
    return types, since


def status_url(clinic_id: str, job_id: str) -> str:
    return f"{request.host_url.rstrip('/')}/v1/clinics/{clinic_id}/fhir/export-jobs/{job_id}"


def no_such_job() -> Problem:
    return Problem(404, "not-found", "Not found", "No such export.")


@blp.route("/clinics/<clinic:clinic_id>/fhir/$export", methods=["GET"])
@blp.doc(parameters=[
    {"in": "header", "name": "Prefer", "required": True, "schema": {"type": "string",
     "enum": ["respond-async"]}, "description": "Must be respond-async."},
    {"in": "query", "name": "_type", "schema": {"type": "string", "pattern": TYPES_PATTERN},
     "description": "Comma-separated resource types (default: all exported types)."},
    {"in": "query", "name": "_since", "schema": {"type": "string", "format": "date-time"},
     "description": "Only resources changed after this instant."},
    {"in": "query", "name": "_outputFormat", "schema": {"type": "string",
                                                         "enum": list(NDJSON_FORMATS)},
     "description": "application/fhir+ndjson (the default and only format)."},
], responses={"202": {"description": "Accepted: poll the URL in Content-Location.",
                      "headers": {"Content-Location": {"schema": {"type": "string"},
                                  "description": "The export's status URL."}}}})
@outcomes(blp, 400, 401, 403, 404, 429)
@allow(*READERS, patient_data=True)
def export_clinic(clinic_id: str) -> Any:
    """Start a Bulk Data export of the clinic's programmes (asynchronous)."""
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise Problem(400, "respond-async-required", "Bad Request",
                      "Send Prefer: respond-async: an export runs in the background.",
                      expression=["Prefer"])
    types, since = export_request()
    runner = exports()
    try:
        job = runner.jobs.create(clinic_id, request.url, types, since)
    except ClinicBusy as busy:
        raise Problem(429, "export-in-progress", "Too Many Requests",
                      "This clinic's export in progress must end (or be cancelled) first: "
                      f"{status_url(clinic_id, busy.job_id)}",
                      headers={"Retry-After": "10"}) from None
    runner.start(job)
    return Response(status=202, headers={"Content-Location": status_url(clinic_id, job.job_id)})


@blp.route("/clinics/<clinic:clinic_id>/fhir/export-jobs/<job_id>", methods=["GET"])
@blp.doc(responses={
    "202": {"description": "In progress: X-Progress says how far.",
            "headers": {"X-Progress": {"schema": {"type": "string"}},
                        "Retry-After": {"schema": {"type": "string"}}}},
    "200": {"description": "Done: the manifest (transactionTime, request, "
            "requiresAccessToken, output: one file per type).",
            "content": {"application/json": {"schema": {"type": "object"}, "example": {
                "transactionTime": "2026-03-09T10:00:00+00:00",
                "request": "https://ledger.example/v1/clinics/north-physio/fhir/$export",
                "requiresAccessToken": True, "error": [], "output": [
                    {"type": "Observation", "count": 120,
                     "url": "https://ledger.example/v1/clinics/north-physio/fhir/export-jobs/"
                            "4c1d…/Observation.ndjson"}]}}}}})
@outcomes(blp, 401, 403, 404, 500)
@allow(*READERS, patient_data=True)
def export_status(clinic_id: str, job_id: str) -> Any:
    """An export's status: 202 while it runs, its manifest once done."""
    runner = exports()
    job = runner.jobs.get(clinic_id, job_id)
    if job is not None and runner.revive_if_stale(job, datetime.now(UTC)):
        job = runner.jobs.get(clinic_id, job_id)
    if job is None or job.status == "cancelled":
        raise no_such_job()
    if job.status == "failed":
        raise Problem(500, "export-failed", "Export failed",
                      f"The export failed: {job.error}. Start a new one.")
    if job.status != "completed":
        progress = (f"{job.programmes_done} of {job.programmes_total} programmes"
                    if job.programmes_total else job.status)
        return Response(status=202, headers={"X-Progress": progress, "Retry-After": "2"})
    base = status_url(clinic_id, job_id)
    manifest = {
        "transactionTime": job.transaction_time.isoformat(),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [{"type": item["type"], "url": f"{base}/{item['type']}.ndjson",
                    "count": item["count"]} for item in job.output],
        "error": [],
    }
    return Response(json.dumps(manifest), status=200, mimetype="application/json")


@blp.route("/clinics/<clinic:clinic_id>/fhir/export-jobs/<job_id>", methods=["DELETE"])
@blp.doc(responses={"202": {"description": "Cancelled; its files are deleted."}})
@outcomes(blp, 401, 403, 404)
@allow(*READERS)
def cancel_export(clinic_id: str, job_id: str) -> Any:
    """Cancel an export (running or done): it stops and its files are deleted."""
    if not exports().cancel(clinic_id, job_id):
        raise no_such_job()
    return Response(status=202)


@blp.route("/clinics/<clinic:clinic_id>/fhir/export-jobs/<job_id>/<resource_type>.ndjson",
           methods=["GET"])
@blp.doc(responses={"200": {"description": "One resource per line (NDJSON)."}})
@outcomes(blp, 401, 403, 404)
@allow(*READERS, patient_data=True)
def export_file(clinic_id: str, job_id: str, resource_type: str) -> Any:
    """One file of a completed export (needs the token, as every route)."""
    runner = exports()
    job = runner.jobs.get(clinic_id, job_id)
    if job is None or job.status != "completed" or resource_type not in {
            item["type"] for item in job.output}:
        raise no_such_job()
    path = runner.directory(job_id) / f"{resource_type}.ndjson"
    if not path.is_file():
        raise no_such_job()
    return send_file(path, mimetype=FHIR_NDJSON, conditional=False)


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
