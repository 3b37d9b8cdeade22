"""GET .../programmes/{id}/fhir: one programme as a FHIR collection Bundle, on
both stores; every resource parsed by fhir.resources, every reference resolved."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from service.fhir import terms
from tests import builders as b
from tests.fhir.checks import check_bundle


def post(client, tokens, pid, events, clinic="clinic-a", headers=None):
    response = client.post(f"/v1/clinics/{clinic}/programmes/{pid}/events",
                           json={"events": events}, headers=headers or tokens.writer_a)
    assert response.status_code == 201, response.json
    return response


def fhir(client, headers, pid, query="", clinic="clinic-a"):
    return client.get(f"/v1/clinics/{clinic}/programmes/{pid}/fhir{query}", headers=headers)


def whole_programme():
    """Every event type once (and a correction of a session and of a report)."""
    session, report = b.session(1, discomfort_nrs=3, device="Mat 2"), b.pain(
        5, 1, odi_percent=30, sleep_quality_nrs=6, context="after_session")
    events = [
        b.started(), session, report, b.missed(2, "pain"),
        b.adjusted(3, modality="decompression_mat", sessions_per_week=21),
        b.adverse("moderate", 4), b.paused(5), b.resumed(6),
        b.corrected(report, 7, pain_nrs=4), b.corrected(session, 7, duration_minutes=25),
        b.discharged(8, "goals_met"),
    ]
    return events, session, report


def by_type(resources, kind):
    return [r for r in resources if r["resourceType"] == kind]


def test_every_event_type_as_valid_resources_that_resolve(client, tokens):
    pid = uuid.uuid4()
    events, session, report = whole_programme()
    post(client, tokens, pid, events)
    response = fhir(client, tokens.viewer_a, pid)
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    bundle = response.json
    assert bundle["type"] == "collection"
    resources = check_bundle(bundle)
    kinds = [r["resourceType"] for r in resources]
    assert kinds.count("Organization") == kinds.count("EpisodeOfCare") == 1
    assert kinds.count("CarePlan") == 2  # the start's plan, and its one revision
    assert kinds.count("Procedure") == 2  # the session and the missed one
    assert kinds.count("Observation") == 2  # the baseline and the report
    assert kinds.count("AdverseEvent") == 1 and kinds.count("Provenance") == 2

    episode = by_type(resources, "EpisodeOfCare")[0]
    assert episode["identifier"] == [{"system": terms.PROGRAMME_IDS, "value": str(pid)}]
    assert episode["status"] == "finished"
    assert [h["status"] for h in episode["statusHistory"]] == [
        "active", "onhold", "active", "finished"]
    assert episode["patient"] == {"identifier": {"system": terms.patient_ids("clinic-a"),
                                                 "value": "pt-0001"}}
    assert by_type(resources, "Organization")[0]["name"] == "Clinic A"

    old_plan, plan = by_type(resources, "CarePlan")
    assert (old_plan["status"], plan["status"]) == ("revoked", "completed")
    assert plan["replaces"] == [{"reference": f"CarePlan/{old_plan['id']}"}]
    assert plan["activity"][0]["detail"]["scheduledTiming"]["repeat"]["frequency"] == 21
    assert [p["activity"][0]["detail"]["status"] for p in (old_plan, plan)] == [
        "stopped", "completed"]
    assert plan["note"] == [{"text": "progressing well"}]

    done, missed = by_type(resources, "Procedure")
    assert done["id"] == session["event_id"] and done["status"] == "completed"
    # The corrected data is in force: 25 minutes, not 30.
    assert done["performedPeriod"]["start"] == session["occurred_at"]
    assert datetime.fromisoformat(done["performedPeriod"]["end"]) - datetime.fromisoformat(
        done["performedPeriod"]["start"]) == __import__("datetime").timedelta(minutes=25)
    extensions = {e["url"]: e for e in done["extension"]}
    assert extensions[terms.FORCE]["valueQuantity"]["value"] == 30
    assert extensions[terms.SUPERVISED]["valueBoolean"] is True
    assert extensions[terms.DISCOMFORT]["valueInteger"] == 3
    assert missed["status"] == "not-done"
    assert missed["statusReason"]["coding"][0]["code"] == "pain"

    baseline, observation = by_type(resources, "Observation")
    assert baseline["valueInteger"] == 7
    assert observation["id"] == report["event_id"]
    assert observation["code"]["coding"][0]["code"] == "72514-3"
    assert (observation["status"], observation["valueInteger"]) == ("amended", 4)
    components = {c["code"]["coding"][0]["code"]: c for c in observation["component"]}
    assert components["97909-6"]["valueQuantity"]["value"] == 30
    assert components["sleep-quality-nrs"]["valueInteger"] == 6

    provenances = by_type(resources, "Provenance")
    assert {p["target"][0]["reference"] for p in provenances} == {
        f"Observation/{report['event_id']}", f"Procedure/{session['event_id']}"}
    assert all(p["reason"] == [{"text": "entered the wrong value"}] for p in provenances)
    severity = by_type(resources, "AdverseEvent")[0]["severity"]["coding"][0]["code"]
    assert severity == "moderate"


def test_at_a_version_and_as_of_a_record_time(client, tokens):
    pid = uuid.uuid4()
    report = b.pain(5, 1)
    post(client, tokens, pid, [b.started(), report])
    time.sleep(0.02)
    between = datetime.now(UTC).isoformat().replace("+", "%2B")
    time.sleep(0.02)
    post(client, tokens, pid, [b.corrected(report, 2, pain_nrs=3)])
    now = check_bundle(fhir(client, tokens.writer_a, pid).json)
    assert [o["status"] for o in by_type(now, "Observation")] == ["final", "amended"]
    for query in ("?version=2", f"?as_of={between}"):
        then = check_bundle(fhir(client, tokens.writer_a, pid, query).json)
        observation = by_type(then, "Observation")[1]
        assert (observation["status"], observation["valueInteger"]) == ("final", 5), query
        assert not by_type(then, "Provenance")
    assert len(by_type(check_bundle(fhir(client, tokens.writer_a, pid, "?version=1").json),
                       "Observation")) == 1


def test_errors_are_operation_outcomes(client, tokens):
    pid = uuid.uuid4()
    post(client, tokens, pid, [b.started()])
    beyond = fhir(client, tokens.writer_a, pid, "?version=9")
    assert beyond.status_code == 404 and beyond.mimetype == "application/fhir+json"
    assert beyond.json["resourceType"] == "OperationOutcome"
    bad = fhir(client, tokens.writer_a, pid, "?version=zero")
    assert bad.status_code == 422
    assert bad.json["issue"][0]["expression"] == ["version"]
    assert bad.json["issue"][0]["code"] == "invalid"
    # Another clinic's programme answers exactly as a missing one.
    foreign = fhir(client, tokens.writer_b, pid, clinic="clinic-b")
    missing = fhir(client, tokens.writer_b, uuid.uuid4(), clinic="clinic-b")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.get_data() == missing.get_data()
    assert str(pid) not in foreign.get_data(as_text=True)
    assert fhir(client, tokens.writer_a, pid, clinic="clinic-b").status_code == 404
