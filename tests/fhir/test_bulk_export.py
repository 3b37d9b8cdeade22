"""Bulk Data export of a clinic: kick-off, polling, manifest, NDJSON files that
need the token, `_type`, `_since`, cancelling, one job per clinic, a job left
by a stopped worker, a job that fails; on both stores."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests import builders as b
from tests.fhir.checks import parse
from tests.fhir.test_programme_bundle import post

KICK_OFF = "/v1/clinics/{clinic}/fhir/$export"
ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def exports(app):
    runner = app.extensions["traction"].fhir_exports
    runner.beat_seconds = 0.0
    return runner


def path_of(url):
    return url.split("localhost", 1)[-1]


def kick_off(client, headers, query="", clinic="clinic-a"):
    return client.get(KICK_OFF.format(clinic=clinic) + query, headers={**headers, **ASYNC})


def finished(client, exports, headers, location):
    exports.wait(location.rsplit("/", 1)[-1], timeout=60)
    for _ in range(100):
        answer = client.get(path_of(location), headers=headers)
        if answer.status_code != 202:
            return answer
        time.sleep(0.1)
    raise AssertionError("the export did not finish")


def lines(client, headers, url):
    answer = client.get(path_of(url), headers=headers)
    text = answer.get_data(as_text=True)
    answer.close()  # the file it streamed
    assert answer.status_code == 200, text
    assert answer.mimetype == "application/fhir+ndjson"
    return [json.loads(line) for line in text.splitlines()]


def two_clinics(client, tokens):
    ours = [uuid.uuid4(), uuid.uuid4()]
    for pid in ours:
        post(client, tokens, pid, [b.started(), b.session(1), b.pain(5, 1), b.missed(2)])
    theirs = uuid.uuid4()
    post(client, tokens, theirs, [b.started(patient_ref="secret-b")], clinic="clinic-b",
         headers=tokens.writer_b)
    return ours, theirs


def test_an_export_runs_off_the_request_and_serves_its_files_with_the_token(
        client, tokens, exports):
    ours, theirs = two_clinics(client, tokens)
    answer = kick_off(client, tokens.viewer_a)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    location = answer.headers["Content-Location"]
    done = finished(client, exports, tokens.viewer_a, location)
    assert done.status_code == 200 and done.mimetype == "application/json"
    manifest = done.json
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"].endswith("/v1/clinics/clinic-a/fhir/$export")
    datetime.fromisoformat(manifest["transactionTime"])
    counts = {item["type"]: item["count"] for item in manifest["output"]}
    assert counts == {"Organization": 1, "EpisodeOfCare": 2, "Condition": 2, "CarePlan": 2,
                      "Procedure": 4, "Observation": 4}
    for item in manifest["output"]:
        resources = lines(client, tokens.viewer_a, item["url"])
        assert len(resources) == item["count"]
        for resource in resources:
            assert resource["resourceType"] == item["type"]
            parse(resource)
            assert "secret-b" not in json.dumps(resource)
            assert str(theirs) not in json.dumps(resource)
        # The files need the token, of this clinic.
        assert client.get(path_of(item["url"])).status_code == 401
        assert client.get(path_of(item["url"]).replace("clinic-a", "clinic-b"),
                          headers=tokens.viewer_b).status_code == 404
    # Another clinic's token never reaches the job.
    other = client.get(path_of(location).replace("clinic-a", "clinic-b"),
                       headers=tokens.viewer_b)
    assert other.status_code == 404 and other.json["resourceType"] == "OperationOutcome"
    assert client.get(path_of(location), headers=tokens.viewer_b).status_code == 404
    assert client.delete(path_of(location).replace("clinic-a", "clinic-b"),
                         headers=tokens.viewer_b).status_code == 404
    # Cancelling a finished export deletes it and its files.
    files = [item["url"] for item in manifest["output"]]
    assert client.delete(path_of(location), headers=tokens.viewer_a).status_code == 202
    assert client.get(path_of(location), headers=tokens.viewer_a).status_code == 404
    assert client.get(path_of(files[0]), headers=tokens.viewer_a).status_code == 404
    assert not exports.directory(location.rsplit("/", 1)[-1]).exists()


def test_type_and_since_choose_what_is_exported(client, tokens, exports):
    ours, _ = two_clinics(client, tokens)
    time.sleep(0.02)
    since = datetime.now(UTC)
    time.sleep(0.02)
    post(client, tokens, ours[0], [b.pain(3, 3)])
    location = kick_off(client, tokens.writer_a, "?_type=Observation,Procedure").headers[
        "Content-Location"]
    manifest = finished(client, exports, tokens.writer_a, location).json
    assert {item["type"] for item in manifest["output"]} == {"Observation", "Procedure"}
    query = "?_type=Observation,EpisodeOfCare&_since=" + since.isoformat().replace("+", "%2B")
    location = kick_off(client, tokens.writer_a, query).headers["Content-Location"]
    manifest = finished(client, exports, tokens.writer_a, location).json
    exported = {item["type"]: lines(client, tokens.writer_a, item["url"])
                for item in manifest["output"]}
    assert [o["valueInteger"] for o in exported["Observation"]] == [3]
    assert [e["id"] for e in exported["EpisodeOfCare"]] == [str(ours[0])]


def test_the_export_shows_the_clinic_as_at_its_transaction_time(client, tokens, exports):
    pid = uuid.uuid4()
    post(client, tokens, pid, [b.started()])
    job = exports.jobs.create("clinic-a", "http://localhost/x", ("Observation",), None)
    post(client, tokens, pid, [b.pain(2, 1)])
    assert exports.start(job)
    exports.wait(job.job_id, timeout=60)
    done = exports.jobs.get("clinic-a", job.job_id)
    assert done.status == "completed"
    assert done.output == [{"type": "Observation", "count": 1}]  # the baseline only


def test_bad_kick_offs_are_operation_outcomes(client, tokens, exports):
    cases = {"": ({}, "Prefer"), "?_type=Patient": (ASYNC, "_type"),
             "?_since=yesterday": (ASYNC, "_since"), "?_since=2026-03-01T00:00:00": (
                 ASYNC, "_since"), "?_typeFilter=x": (ASYNC, "_typeFilter"),
             "?_outputFormat=text/csv": (ASYNC, "_outputFormat")}
    for query, (prefer, where) in cases.items():
        answer = client.get(KICK_OFF.format(clinic="clinic-a") + query,
                            headers={**tokens.viewer_a, **prefer})
        assert answer.status_code == 400, query
        assert answer.json["resourceType"] == "OperationOutcome"
        assert answer.json["issue"][0]["expression"] == [where]
    assert kick_off(client, tokens.admin).status_code == 403
    assert kick_off(client, tokens.viewer_b).status_code == 404  # clinic-a, token of b


def test_one_export_per_clinic_at_a_time(client, tokens, exports):
    busy = exports.jobs.create("clinic-a", "http://localhost/x", ("Organization",), None)
    answer = kick_off(client, tokens.viewer_a)
    assert answer.status_code == 429 and answer.headers["Retry-After"]
    assert busy.job_id in answer.json["issue"][0]["diagnostics"]
    assert kick_off(client, tokens.viewer_b, clinic="clinic-b").status_code == 202
    location = f"/v1/clinics/clinic-a/fhir/export-jobs/{busy.job_id}"
    assert client.delete(location, headers=tokens.viewer_a).status_code == 202
    assert kick_off(client, tokens.viewer_a).status_code == 202


def test_a_job_left_by_a_stopped_worker_is_run_again(client, tokens, exports):
    pid = uuid.uuid4()
    post(client, tokens, pid, [b.started(), b.pain(4, 1)])
    # Accepted by a worker that stopped before it ran it: no thread, an old heartbeat.
    job = exports.jobs.create("clinic-a", "http://localhost/x", ("Observation",), None)
    location = f"/v1/clinics/clinic-a/fhir/export-jobs/{job.job_id}"
    assert client.get(location, headers=tokens.viewer_a).status_code == 202  # still fresh
    old = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    with exports.database.transaction() as cursor:
        cursor.execute("UPDATE fhir_export_jobs SET status = 'running', heartbeat_at = %s "
                       "WHERE job_id = %s", [old, job.job_id])
    done = finished(client, exports, tokens.viewer_a, location)
    assert done.status_code == 200
    assert done.json["output"][0]["count"] == 2


def test_a_job_that_fails_says_so(client, tokens, exports, tmp_path):
    post(client, tokens, uuid.uuid4(), [b.started()])
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the exports should go")
    exports.root = blocked
    location = kick_off(client, tokens.viewer_a).headers["Content-Location"]
    failed = finished(client, exports, tokens.viewer_a, location)
    assert failed.status_code == 500
    assert failed.json["resourceType"] == "OperationOutcome"
    assert "failed" in failed.json["issue"][0]["diagnostics"]
    assert kick_off(client, tokens.viewer_a).status_code == 202  # the clinic is free again
