"""GET /v1/fhir/metadata: a valid CapabilityStatement that says exactly what the
FHIR face does."""

from __future__ import annotations

import uuid

from tests.fhir.checks import check_bundle, parse
from tests.fhir.test_programme_bundle import fhir, post, whole_programme


def test_the_statement_names_what_is_exported_and_taken(client, tokens):
    answer = client.get("/v1/fhir/metadata")  # no token: FHIR servers publish theirs
    assert answer.status_code == 200 and answer.mimetype == "application/fhir+json"
    statement = answer.json
    parse(statement)
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["format"] == ["application/fhir+json"]
    rest = statement["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch"}
    assert [o["name"] for o in rest["operation"]] == ["export"]
    described = {r["type"]: r for r in rest["resource"]}
    pid = uuid.uuid4()
    post(client, tokens, pid, whole_programme()[0])
    emitted = {r["resourceType"] for r in check_bundle(fhir(client, tokens.writer_a, pid).json)}
    # Every type a programme is exported as is described; none that is not.
    assert set(described) == emitted
    creatable = {t for t, r in described.items()
                 if any(i["code"] == "create" for i in r.get("interaction", []))}
    assert creatable == {"Observation", "Procedure"}
    assert not any(i["code"] in ("read", "search-type", "update", "delete")
                   for r in described.values() for i in r.get("interaction", []))
