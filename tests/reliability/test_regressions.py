"""Regression tests for the defects the fuzzing (R3) and hostile bodies (R8)
found, through the Flask test client on both stores. The ones that need real
sockets (chunked bodies, stalled uploads) are in test_hostile_http.py, the
cache race in test_concurrent_reads.py.
"""

from __future__ import annotations

import json
import uuid

import pytest

from service.storage.names import SHOWN_TEXT_PATTERN
from tests import builders as b

pytestmark = pytest.mark.usefixtures("tokens")
HUGE = 10**30  # SQLite's driver could not bind it: OverflowError, a 500
PROBLEM = "urn:traction-ledger:problem:"


@pytest.fixture
def programme(client, tokens) -> str:
    path = f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}"
    assert client.post(path + "/events", json=b.started(), headers=tokens.writer_a
                       ).status_code == 201
    return path


def assert_validation_problem(response, pointer: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.json["type"] == PROBLEM + "validation-failed"
    assert pointer in [e["pointer"] for e in response.json["errors"]]


@pytest.mark.parametrize("version", [HUGE, 2**63])
def test_a_version_beyond_64_bits_is_422_not_500(client, tokens, programme, version):
    response = client.get(f"{programme}?version={version}", headers=tokens.writer_a)
    assert_validation_problem(response, "/version")


@pytest.mark.parametrize("after", [HUGE, 2**63 - 1])
def test_a_log_cursor_beyond_64_bits_is_422_not_500(client, tokens, after):
    # The log is read from after + 1: 2**63 - 1 overflowed too.
    response = client.get(f"/v1/audit/events?after={after}", headers=tokens.auditor)
    assert_validation_problem(response, "/after")
    response = client.get(f"/v1/audit/access-log?after={HUGE}", headers=tokens.auditor)
    assert_validation_problem(response, "/after")


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_with_no_utc_form_is_422_not_500(client, tokens, programme, moment):
    response = client.post(f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}/events",
                           json={**b.started(), "occurred_at": moment},
                           headers=tokens.writer_a)
    assert_validation_problem(response, "/occurred_at")
    response = client.get(programme, query_string={"as_of": moment},
                          headers=tokens.writer_a)
    assert_validation_problem(response, "/as_of")


@pytest.mark.parametrize("moment", ["2026-W10-3T09:00:00Z", "2026-061T09:00:00Z",
                                    "20260303T090000Z", "2026-03-03T09:00Z",
                                    "2026-03-03T09Z", "٢٠٢٦-03-03T09:00:00Z"])
def test_only_rfc_3339_timestamps_are_accepted(client, tokens, programme, moment):
    response = client.post(programme + "/events", json={**b.session(1), "occurred_at": moment},
                           headers=tokens.writer_a)
    assert_validation_problem(response, "/occurred_at")


@pytest.mark.parametrize(("path", "body", "who"), [
    ("events", {**b.adverse("mild"), "data": {"severity": "mild", "description": "X"}},
     "writer_a"),
    ("/v1/clinics", {"clinic_id": "clinic-z", "name": "X"}, "admin"),
    ("/v1/tokens", {"role": "auditor", "label": "X"}, "admin"),
])
def test_an_unpaired_surrogate_escape_is_400_not_500(client, tokens, programme, path, body, who):
    url = programme + "/events" if path == "events" else path
    raw = json.dumps(body).replace('"X"', '"before \\ud800 after"')
    response = client.post(url, data=raw, content_type="application/json",
                           headers=getattr(tokens, who))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["type"] == PROBLEM + "malformed-json"
    assert "surrogate" in response.json["detail"]
    # A pair is one character, and fine.
    paired = json.dumps(body).replace('"X"', '"\\ud83d\\ude00"')
    assert client.post(url, data=paired, content_type="application/json",
                       headers=getattr(tokens, who)).status_code == 201


def test_the_document_describes_both_forms_of_an_events_post(client):
    document = client.get("/openapi.json").json
    post = document["paths"]["/v1/clinics/{clinic_id}/programmes/{programme_id}/events"]["post"]
    forms = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert forms == [{"$ref": "#/components/schemas/EventBatch"},
                     {"$ref": "#/components/schemas/EventPost"}]
    single = document["components"]["schemas"]["PainReportedPost"]
    assert "expected_version" in single["properties"]
    assert single["required"] == ["data", "event_id", "occurred_at", "recorded_by", "type"]
    assert "408" in post["responses"]


def test_the_document_says_free_text_has_no_control_characters(client, tokens):
    document = client.get("/openapi.json").json
    name = document["components"]["schemas"]["ClinicCreate"]["properties"]["name"]
    # Names are stricter than free text: no controls at all, no bidi or invisible
    # characters, no space at either end (service/storage/names.py).
    assert name["pattern"] == SHOWN_TEXT_PATTERN
    assert "\\u0000-\\u001f" in name["pattern"] and "\\u202e" in name["pattern"]
    response = client.post("/v1/clinics", json={"clinic_id": "clinic-z", "name": "a\x07b"},
                           headers=tokens.admin)
    assert_validation_problem(response, "/name")
