"""POST /v1/clinics/{clinic}/fhir: transaction and batch Bundles of pain reports
and sessions become events by the normal path; bad input is an OperationOutcome
and records nothing (transaction) or only the valid entries (batch)."""

from __future__ import annotations

import copy
import uuid

from service.fhir import terms
from tests import builders as b
from tests.fhir.checks import check_bundle, parse
from tests.fhir.test_programme_bundle import by_type, fhir, post
from tests.stores import RunnerAt


def send(client, headers, bundle, clinic="clinic-a", content_type="application/fhir+json"):
    import json

    return client.post(f"/v1/clinics/{clinic}/fhir", data=json.dumps(bundle),
                       content_type=content_type, headers=headers)


def bundle_of(kind, *resources):
    return {"resourceType": "Bundle", "type": kind, "entry": [
        {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
        for r in resources]}


def episode(pid):
    return {"url": terms.EPISODE, "valueReference": {
        "identifier": {"system": terms.PROGRAMME_IDS, "value": str(pid)}}}


def observation(pid, pain=4, key="obs-1", days=1, **extra):
    return {"resourceType": "Observation", "status": "final", "extension": [episode(pid)],
            "identifier": [{"system": "urn:ehr:observations", "value": key}],
            "code": {"coding": [terms.PAIN_NRS]},
            "effectiveDateTime": b.at(days), "valueInteger": pain, **extra}


def procedure(pid, key="proc-1", days=1, minutes=30):
    return {"resourceType": "Procedure", "status": "completed",
            "identifier": [{"system": "urn:ehr:sessions", "value": key}],
            "extension": [episode(pid), {"url": terms.SUPERVISED, "valueBoolean": True},
                          {"url": terms.FORCE, "valueQuantity": {
                              "value": 30, "unit": "%", "system": terms.UCUM, "code": "%"}}],
            "code": {"coding": [terms.LUMBAR_TRACTION]},
            "subject": {"identifier": {"system": terms.patient_ids("clinic-a"),
                                       "value": "pt-0001"}},
            "performedPeriod": {"start": b.at(days), "end": b.at(days + minutes / 1440)},
            "usedCode": [{"coding": [{"system": terms.MODALITY, "code": "mechanical_table"}]}]}


def history(client, tokens, pid):
    return client.get(f"/v1/clinics/clinic-a/programmes/{pid}/events",
                      headers=tokens.writer_a).json["events"]


def test_a_transaction_records_each_resource_once(client, tokens):
    pid = uuid.uuid4()
    post(client, tokens, pid, [b.started()])
    bundle = bundle_of("transaction",
                       observation(pid, component=[{"code": {"coding": [terms.ODI_PERCENT]},
                                                    "valueQuantity": {"value": 35}}]),
                       procedure(pid))
    first = send(client, tokens.writer_a, bundle)
    assert first.status_code == 200, first.json
    assert first.mimetype == "application/fhir+json"
    parse(first.json)
    assert first.json["type"] == "transaction-response"
    assert [e["response"]["status"] for e in first.json["entry"]] == ["201 Created"] * 2
    events = history(client, tokens, pid)
    assert [e["type"] for e in events] == ["ProgrammeStarted", "PainReported",
                                           "SessionCompleted"]
    assert events[1]["data"] == {"pain_nrs": 4, "odi_percent": 35, "scale": "nrs_11"}
    assert events[2]["data"] == {"modality": "mechanical_table", "duration_minutes": 30,
                                 "supervised": True, "force_percent_body_weight": 30}
    # The location is the resource as the programme's Bundle now shows it.
    located = {e["response"]["location"] for e in first.json["entry"]}
    exported = check_bundle(fhir(client, tokens.writer_a, pid).json)
    assert located <= {f"{r['resourceType']}/{r['id']}" for r in exported}
    again = send(client, tokens.writer_a, bundle)
    assert [e["response"]["status"] for e in again.json["entry"]] == ["200 OK"] * 2
    assert len(history(client, tokens, pid)) == 3


def test_round_trip_gives_the_same_metrics(client, tokens, store_url):
    original, fresh = uuid.uuid4(), uuid.uuid4()
    start = b.started()
    post(client, tokens, original, [
        start, b.session(1), b.pain(6, 1, context="after_session", odi_percent=40),
        b.session(3, duration_minutes=20, discomfort_nrs=2), b.missed(5, "illness"),
        b.pain(4, 6, sleep_quality_nrs=7), b.session(8, "stretching_exercises",
                                                     supervised=False, device="Band 2"),
        b.pain(3, 9)])
    post(client, tokens, fresh, [{**copy.deepcopy(start), "event_id": str(uuid.uuid4())}])
    exported = check_bundle(fhir(client, tokens.writer_a, original).json)
    moved = []
    for resource in exported:
        if resource["resourceType"] not in ("Observation", "Procedure"):
            continue
        if resource["id"].endswith("-baseline"):
            continue  # recorded with the fresh programme's start
        resource = copy.deepcopy(resource)
        resource["extension"] = [episode(fresh) if e["url"] == terms.EPISODE else e
                                 for e in resource["extension"]]
        moved.append(resource)
    answer = send(client, tokens.writer_a, bundle_of("transaction", *moved))
    assert answer.status_code == 200, answer.json
    assert len(answer.json["entry"]) == 7
    RunnerAt(store_url).run(once=True)

    def summary(pid):
        found = client.get(f"/v1/clinics/clinic-a/programmes/{pid}/summary",
                           headers=tokens.writer_a).json
        return {k: v for k, v in found.items()
                if k not in ("programme_id", "version", "position", "pain_trajectory")}

    assert summary(original)["sessions_completed"] == 3
    assert summary(original)["sessions_missed"] == 1
    assert summary(fresh) == summary(original)
    trajectory = [(p["occurred_at"], p["pain_nrs"]) for p in client.get(
        f"/v1/clinics/clinic-a/programmes/{fresh}/summary",
        headers=tokens.writer_a).json["pain_trajectory"]]
    assert [pain for _, pain in trajectory] == [6, 4, 3]


def outcome_of(response, status):
    assert response.status_code == status, response.json
    assert response.mimetype == "application/fhir+json"
    assert response.json["resourceType"] == "OperationOutcome"
    parse(response.json)
    return response.json["issue"]


def test_bad_input_is_an_operation_outcome_and_records_nothing(client, tokens):
    pid, theirs = uuid.uuid4(), uuid.uuid4()
    post(client, tokens, pid, [b.started()])
    post(client, tokens, theirs, [b.started()], clinic="clinic-b", headers=tokens.writer_b)
    good = observation(pid, key="good")
    cases = {
        "not valid FHIR": (observation(pid, key="x", valueInteger="seven"), 400,
                           "Bundle.entry[1].resource.valueInteger"),
        "a type we do not take": ({"resourceType": "Patient", "id": "p"}, 422,
                                  "Bundle.entry[1].resource.resourceType"),
        "an Observation without a value": (
            {k: v for k, v in observation(pid, key="y").items() if k != "valueInteger"},
            422, "Bundle.entry[1].resource.value[x]"),
        "another clinic's programme": (observation(theirs, key="z"), 404,
                                       "Bundle.entry[1].resource.extension"),
        "no identifier": ({k: v for k, v in observation(pid).items() if k != "identifier"},
                          422, "Bundle.entry[1].resource.identifier"),
        "the same identifier twice": (observation(pid, key="good", pain=2), 422,
                                      "Bundle.entry[1].resource.identifier"),
        "a rule refuses it": (observation(pid, key="early", days=-3), 422,
                              "Bundle.entry[1].resource"),
    }
    for case, (resource, status, where) in cases.items():
        issues = outcome_of(send(client, tokens.writer_a,
                                 bundle_of("transaction", good, resource)), status)
        assert where in issues[0]["expression"], (case, issues)
        assert len(history(client, tokens, pid)) == 1, case
    assert len(history(client, tokens, pid)) == 1
    too_many = bundle_of("transaction", *[observation(pid, key=f"k{i}") for i in range(501)])
    assert outcome_of(send(client, tokens.writer_a, too_many), 413)[0]["code"] == "too-long"
    huge = bundle_of("transaction", observation(pid, note=[{"text": "x" * 2_000_000}]))
    assert outcome_of(send(client, tokens.writer_a, huge), 413)[0]["code"] == "too-long"
    assert outcome_of(send(client, tokens.writer_a, {"resourceType": "Patient"}), 400)
    assert outcome_of(send(client, tokens.writer_a, bundle_of("transaction", good),
                           content_type="text/plain"), 415)
    assert outcome_of(send(client, tokens.viewer_a, bundle_of("transaction", good)), 403)
    assert outcome_of(send(client, tokens.writer_b, bundle_of("transaction", good)), 404)
    assert len(history(client, tokens, pid)) == 1
    assert len(client.get(f"/v1/clinics/clinic-b/programmes/{theirs}/events",
                          headers=tokens.writer_b).json["events"]) == 1


def test_a_batch_records_the_valid_entries_and_answers_each(client, tokens):
    pid, theirs = uuid.uuid4(), uuid.uuid4()
    post(client, tokens, pid, [b.started()])
    post(client, tokens, theirs, [b.started()], clinic="clinic-b", headers=tokens.writer_b)
    bundle = bundle_of("batch", observation(pid, key="a"), {"resourceType": "Patient"},
                       {k: v for k, v in observation(pid, key="b").items()
                        if k != "valueInteger"},
                       observation(theirs, key="c"), procedure(pid, key="d"))
    answer = send(client, tokens.writer_a, bundle)
    assert answer.status_code == 200
    parse(answer.json)
    assert answer.json["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in answer.json["entry"]]
    assert statuses == ["201 Created", "422 Unprocessable Entity",
                        "422 Unprocessable Entity", "404 Not Found", "201 Created"]
    refused = answer.json["entry"][3]["response"]["outcome"]["issue"][0]
    assert refused["expression"] == ["Bundle.entry[3].resource"]
    assert str(theirs) not in answer.get_data(as_text=True)
    assert [e["type"] for e in history(client, tokens, pid)] == [
        "ProgrammeStarted", "PainReported", "SessionCompleted"]
    exported = check_bundle(fhir(client, tokens.writer_a, pid).json)
    assert len(by_type(exported, "Procedure")) == 1
