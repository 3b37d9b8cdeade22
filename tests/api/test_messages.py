"""Problem documents that say what the caller needs to know, and no more than
the tenancy rule allows: what exists of a programme the caller may see,
which roles may call, the body limit, field errors as sentences, and a 404
for every path the service does not serve that is the same as any other."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest

from tests import builders as b

PROBLEM = "urn:traction-ledger:problem:"


def programme(clinic: str, pid: uuid.UUID) -> str:
    return f"/v1/clinics/{clinic}/programmes/{pid}"


@pytest.fixture
def recorded(client, tokens) -> uuid.UUID:
    """A programme of clinic-a at version 3."""
    pid = uuid.uuid4()
    answer = client.post(programme("clinic-a", pid) + "/events",
                         json={"events": [b.started(), b.session(1), b.pain(5, 2)]},
                         headers=tokens.writer_a)
    assert answer.status_code == 201
    return pid


def test_a_version_beyond_the_history_says_the_current_version(client, tokens, recorded):
    answer = client.get(programme("clinic-a", recorded) + "?version=9",
                        headers=tokens.viewer_a)
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json["type"] == PROBLEM + "version-not-recorded"
    assert answer.json["current_version"] == 3
    assert answer.json["detail"] == "The programme has no version 9 (it is at version 3)."


def test_an_as_of_before_the_first_record_says_when_it_was_recorded(client, tokens, recorded):
    history = client.get(programme("clinic-a", recorded) + "/events",
                         headers=tokens.viewer_a).json
    first = datetime.fromisoformat(history["events"][0]["recorded_at"])
    before = quote((first - timedelta(minutes=1)).isoformat())
    answer = client.get(programme("clinic-a", recorded) + f"?as_of={before}",
                        headers=tokens.viewer_a)
    assert answer.status_code == 404
    assert answer.json["type"] == PROBLEM + "not-yet-recorded"
    assert datetime.fromisoformat(answer.json["first_recorded_at"]) == first
    assert answer.json["current_version"] == 3
    assert "was recorded at" in answer.json["detail"]
    # And the time it names finds the programme.
    at_first = quote(answer.json["first_recorded_at"])
    assert client.get(programme("clinic-a", recorded) + f"?as_of={at_first}",
                      headers=tokens.viewer_a).status_code == 200


@pytest.mark.parametrize("query", ["?version=9", "?as_of=2000-01-01T00:00:00Z", ""])
def test_another_clinic_s_programme_still_answers_the_plain_404(client, tokens, recorded,
                                                                 query):
    foreign = client.get(programme("clinic-b", recorded) + query, headers=tokens.viewer_b)
    missing = client.get(programme("clinic-b", uuid.uuid4()) + query, headers=tokens.viewer_b)
    plain = client.get(programme("clinic-a", uuid.uuid4()), headers=tokens.viewer_a)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.get_data() == missing.get_data() == plain.get_data()
    assert "current_version" not in foreign.json


@pytest.mark.parametrize("path", [
    "/v1/clinics/clinic-a/programmes/not-a-uuid",
    "/v1/clinics/clinic-a/programmes/not-a-uuid/events",
    "/v1/clinics/Not_A_Slug/dashboard",
    "/v1/nothing-here",
    "/no/such/page",
])
def test_every_404_is_the_same_problem_document(client, tokens, path):
    missing = client.get(programme("clinic-a", uuid.uuid4()), headers=tokens.viewer_a)
    answer = client.get(path, headers=tokens.viewer_a)
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.get_data() == missing.get_data()


def test_403_names_the_roles_that_may(client, tokens):
    answer = client.get("/v1/clinics/clinic-a/dashboard", headers=tokens.writer_a)
    assert answer.status_code == 403
    assert answer.json["detail"] == ("A writer token may not call this endpoint: it needs a "
                                     "viewer or auditor token.")
    assert answer.json["allowed_roles"] == ["viewer", "auditor"]
    network = client.get("/v1/dashboard", headers=tokens.viewer_a)
    assert network.status_code == 403
    assert network.json["detail"] == (
        "A viewer token for one clinic may not call this endpoint: it needs a viewer, "
        "auditor or admin token for all clinics.")
    assert network.json["all_clinics_only"] is True
    post = client.post("/v1/clinics", json={"clinic_id": "x-clinic", "name": "X"},
                       headers=tokens.auditor)
    assert post.json["detail"] == ("An auditor token may not call this endpoint: it needs an "
                                   "admin token.")


def test_413_states_the_limit(client, tokens, app):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    answer = client.post(programme("clinic-a", uuid.uuid4()) + "/events",
                         data=b"{" + b" " * 20_000 + b"}", content_type="application/json",
                         headers=tokens.writer_a)
    assert answer.status_code == 413
    assert answer.json["max_body_bytes"] == 10_000
    assert "larger than 10000 bytes" in answer.json["detail"]


def test_field_errors_are_joined_as_sentences(client, tokens, recorded):
    bad = b.pain(11, 3)
    bad["data"]["context"] = "lunch"
    answer = client.post(programme("clinic-a", recorded) + "/events", json=bad,
                         headers=tokens.writer_a)
    assert answer.status_code == 422
    # The errors themselves are as they always were...
    assert answer.json["errors"] == [
        {"pointer": "/data/pain_nrs",
         "detail": "Must be greater than or equal to 0 and less than or equal to 10."},
        {"pointer": "/data/context",
         "detail": "Must be one of: before_session, after_session, follow_up."},
    ]
    # ...and the detail reads them out as sentences.
    assert answer.json["detail"] == (
        "/data/pain_nrs: Must be greater than or equal to 0 and less than or equal to 10. "
        "/data/context: Must be one of: before_session, after_session, follow_up.")


def test_a_long_list_of_field_errors_says_how_many_more(client, tokens, recorded):
    events = [{**b.pain(5, 3), "event_id": "nope"} for _ in range(7)]
    answer = client.post(programme("clinic-a", recorded) + "/events",
                         json={"events": events}, headers=tokens.writer_a)
    assert answer.status_code == 422
    assert len(answer.json["errors"]) == 7
    assert answer.json["detail"].endswith(". And 2 more (see errors).")
    assert ".;" not in answer.json["detail"]
