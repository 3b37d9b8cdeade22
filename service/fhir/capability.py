"""The CapabilityStatement: exactly what our FHIR face does, and nothing more.

Written by hand from what the routes do (tests/fhir/test_metadata.py checks it
against them): there is no FHIR search, no read of a single resource by id and
no write other than the transaction/batch of the clinic's base.
"""

from __future__ import annotations

from typing import Any

#: FHIR R4 (the models that check what we emit are fhir.resources' R4B, whose
#: resources we use are the same as R4's).
FHIR_VERSION = "4.0.1"

#: The resources a programme is exported as, and what each carries.
EXPORTED = {
    "Organization": "The clinic.",
    "EpisodeOfCare": "The programme: status and its history, period, managing clinic.",
    "Condition": "What the programme treats.",
    "CarePlan": "The plan, one per revision; each replaces the one before.",
    "Procedure": "A session: completed, or not-done when it was missed.",
    "Observation": "A pain report (LOINC 72514-3), with the ODI and sleep quality as "
                   "components; also the baseline.",
    "AdverseEvent": "An adverse event and its severity.",
    "Provenance": "A correction: who, when, why, and what it corrected.",
}
#: The resources a clinic may post (each becomes an event).
ACCEPTED = {
    "Observation": "A pain report (LOINC 72514-3) of an existing programme, referred to by "
                   "its EpisodeOfCare identifier; becomes a PainReported.",
    "Procedure": "A completed session (or a not-done one: a missed session) of an existing "
                 "programme; becomes a SessionCompleted (or SessionMissed).",
}


def capability_statement(base: str, software_version: str, date: str) -> dict[str, Any]:
    resources = []
    for name, what in EXPORTED.items():
        resource: dict[str, Any] = {"type": name, "documentation": what}
        if name in ACCEPTED:
            resource["documentation"] += " Accepted in a transaction or batch: " + ACCEPTED[name]
            resource["interaction"] = [{"code": "create", "documentation": "Only as an entry "
                                        "of a transaction or batch Bundle posted to the "
                                        "clinic's base."}]
        resources.append(resource)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Traction Ledger",
        "kind": "instance",
        "software": {"name": "Traction Ledger", "version": software_version},
        "implementation": {"description": "Traction Ledger's FHIR face: one programme as a "
                           "Bundle; each clinic's base is {url}/v1/clinics/{clinic_id}/fhir.",
                           "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "documentation": "Every request but this one carries Authorization: Bearer "
            "<token>; a clinic's token reaches its own clinic only. Errors are "
            "OperationOutcomes. GET /v1/clinics/{clinic_id}/programmes/{programme_id}/fhir "
            "answers one programme as a Bundle of type collection (?version=N, ?as_of=time).",
            "security": {"service": [{"text": "Bearer token (OAuth-style bearer, issued "
                                              "by the service's administrators)"}],
                         "description": "Tokens have a role and a clinic: writers post, "
                         "viewers and auditors read."},
            "resource": resources,
            "operation": [{
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                "documentation": "GET {clinic base}/$export with Prefer: respond-async: the "
                "clinic's programmes as NDJSON files, one per type (the Bulk Data Access "
                "IG's asynchronous pattern); _type (the types above), _since (an instant), "
                "_outputFormat application/fhir+ndjson. One export per clinic at a time; "
                "the status URL answers 202 with X-Progress, then the manifest; DELETE "
                "cancels. The files need the token."}],
            "interaction": [
                {"code": "transaction", "documentation": "POST {clinic base} a transaction "
                 "Bundle: all or nothing per programme; nothing is recorded when an entry is "
                 "refused."},
                {"code": "batch", "documentation": "POST {clinic base} a batch Bundle: each "
                 "entry recorded or refused alone."},
            ],
        }],
    }

