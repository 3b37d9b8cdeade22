"""Verification as a job: POST /v1/audit/verifications starts it off the request
thread; polling shows its progress and its report; a job whose worker stopped
is reported abandoned, and a new one can start. GET /v1/audit/verify still
answers, marked deprecated."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.audit.conftest import EVENTS, cli_verify

#: Generous: the job is a few dozen events; the loop ends as soon as it is done.
PATIENCE = 60.0


def _finished(client, tokens, location: str) -> dict:
    deadline = time.monotonic() + PATIENCE
    while True:
        job = client.get(location, headers=tokens.auditor)
        assert job.status_code == 200
        if job.json["state"] not in ("queued", "running"):
            return job.json
        assert time.monotonic() < deadline, job.json
        time.sleep(0.05)


def test_a_verification_job_runs_and_reports(client, tokens, recorded):
    started = client.post("/v1/audit/verifications", headers=tokens.auditor)
    assert started.status_code == 202
    location = started.headers["Location"]
    job_id = started.json["verification_id"]
    assert location.endswith(f"/v1/audit/verifications/{job_id}")
    assert started.json["state"] in ("queued", "running", "succeeded")

    done = _finished(client, tokens, location)
    assert done["state"] == "succeeded" and done["error"] is None
    assert done["events_checked"] == done["events_total"] == EVENTS
    report = done["report"]
    assert report["ok"] is True and report["events_checked"] == EVENTS
    assert report["head"]["position"] == EVENTS
    assert report["checkpoints"]["written"]["position"] == EVENTS  # it signed the head
    assert report["access_log"]["failure"] is None
    assert done["started_at"] <= done["finished_at"]
    assert cli_verify(recorded)["head"] == report["head"]


def test_a_job_finds_a_break(client, tokens, store_sql):
    store_sql.change_one_byte(7)
    started = client.post("/v1/audit/verifications", headers=tokens.auditor)
    done = _finished(client, tokens, started.headers["Location"])
    assert done["state"] == "succeeded"
    assert done["report"]["ok"] is False
    assert (done["report"]["failure"]["kind"], done["report"]["failure"]["position"]) == (
        "changed", 7)


def test_the_chain_alone_on_request(client, tokens):
    started = client.post("/v1/audit/verifications?checkpoints=false", headers=tokens.auditor)
    done = _finished(client, tokens, started.headers["Location"])
    assert done["checkpoints"] is False
    assert done["report"]["ok"] and done["report"]["checkpoints"]["checked"] is False
    bad = client.post("/v1/audit/verifications?checkpoints=perhaps", headers=tokens.auditor)
    assert bad.status_code == 422
    assert bad.headers["Content-Type"] == "application/problem+json"


def _plant(store_sql, state: str, heartbeat_age: timedelta) -> str:
    job_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    store_sql.sql(
        "INSERT INTO audit_verifications (verification_id, state, requested_at, "
        "requested_by, checkpoints, started_at, heartbeat_at, events_checked) "
        "VALUES (%s, %s, %s, 'an auditor', 1, %s, %s, 1200)",
        (job_id, state, (now - heartbeat_age).isoformat(), (now - heartbeat_age).isoformat(),
         (now - heartbeat_age).isoformat()))
    return job_id


def test_starting_a_job_retires_one_whose_worker_stopped(client, tokens, store_sql):
    stopped = _plant(store_sql, "running", timedelta(minutes=5))
    new = client.post("/v1/audit/verifications", headers=tokens.auditor)
    assert new.json["verification_id"] != stopped
    state, error = store_sql.sql("SELECT state, error FROM audit_verifications "
                                 "WHERE verification_id = %s", (stopped,))[0]
    assert state == "abandoned" and "stopped (a restart or a crash)" in error
    _finished(client, tokens, new.headers["Location"])


def test_one_job_at_a_time(client, tokens, store_sql):
    alive = _plant(store_sql, "running", timedelta(seconds=1))
    again = client.post("/v1/audit/verifications", headers=tokens.auditor)
    assert again.status_code == 202
    assert again.json["verification_id"] == alive and again.json["events_checked"] == 1200


def test_a_job_whose_worker_stopped_is_abandoned_and_says_so(client, tokens, store_sql):
    stopped = _plant(store_sql, "running", timedelta(minutes=5))
    job = client.get(f"/v1/audit/verifications/{stopped}", headers=tokens.auditor).json
    assert job["state"] == "abandoned" and job["finished_at"] is not None
    assert "stopped (a restart or a crash)" in job["error"] and "1200 events" in job["error"]
    # Recorded so, and a new one starts in its place.
    assert store_sql.sql("SELECT state FROM audit_verifications WHERE verification_id = %s",
                         (stopped,)) == [("abandoned",)]
    new = client.post("/v1/audit/verifications", headers=tokens.auditor)
    assert new.json["verification_id"] != stopped
    assert _finished(client, tokens, new.headers["Location"])["state"] == "succeeded"


@pytest.mark.parametrize("role", ["viewer_a", "viewer_all", "writer_a", "admin"])
def test_only_auditors_start_or_read_jobs(client, tokens, role):
    started = client.post("/v1/audit/verifications", headers=tokens.auditor)
    location = started.headers["Location"]
    headers = getattr(tokens, role)
    assert client.post("/v1/audit/verifications", headers=headers).status_code == 403
    assert client.get(location, headers=headers).status_code == 403
    assert client.post("/v1/audit/verifications").status_code == 401
    assert client.get(location).status_code == 401
    _finished(client, tokens, location)


def test_an_unknown_job_is_not_found(client, tokens):
    for path in (f"/v1/audit/verifications/{uuid.uuid4()}", "/v1/audit/verifications/nope"):
        missing = client.get(path, headers=tokens.auditor)
        assert missing.status_code == 404
        assert missing.headers["Content-Type"] == "application/problem+json"


def test_the_old_verify_still_answers_marked_deprecated(client, tokens):
    answer = client.get("/v1/audit/verify", headers=tokens.auditor)
    assert answer.status_code == 200 and answer.json["ok"] is True
    assert answer.headers["Deprecation"] == "true"
    assert "/v1/audit/verifications" in answer.headers["Link"]


def test_the_jobs_are_in_the_openapi_document(client):
    spec = client.get("/openapi.json").json
    assert spec["paths"]["/v1/audit/verify"]["get"]["deprecated"] is True
    post = spec["paths"]["/v1/audit/verifications"]["post"]
    assert "202" in post["responses"] and "Location" in post["responses"]["202"]["headers"]
    assert "get" in spec["paths"]["/v1/audit/verifications/{verification_id}"]
