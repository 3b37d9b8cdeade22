"""Another clinic's programme answers exactly as a missing one, on every write
and read path, and is never loaded to find out whose it is (both stores).

Whether a path loads the programme before checking its clinic is shown without
timing anything: clinic B's history is made unreadable behind the service's
back, so any path that loads it first answers differently from a missing one.
The time itself is measured by `python -m bench.tenancy`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from service.http.app import create_app
from tests import builders as b
from tests.api.test_bulk import NDJSON, answered, line, ndjson
from tests.audit.conftest import StoreSQL
from tests.stores import components_at

A = "/v1/clinics/clinic-a"


def start_b(client, tokens) -> uuid.UUID:
    programme_id = uuid.uuid4()
    response = client.post(f"/v1/clinics/clinic-b/programmes/{programme_id}/events",
                           json={"events": [b.started(), b.session(1), b.session(2)]},
                           headers=tokens.writer_b)
    assert response.status_code == 201, response.json
    return programme_id


def same_answer(first, second) -> None:
    assert first.status_code == second.status_code
    assert first.get_data() == second.get_data()


def write(client, tokens, programme_id, body):
    return client.post(f"{A}/programmes/{programme_id}/events", json=body,
                       headers=tokens.writer_a)


@pytest.mark.parametrize("expected_version", [None, 0, 1, 3])
def test_a_write_to_another_clinics_programme_answers_as_for_a_missing_one(
        client, tokens, expected_version):
    foreign = start_b(client, tokens)
    missing = uuid.uuid4()
    body = {"events": [b.session(3)]}
    if expected_version is not None:
        body["expected_version"] = expected_version
    on_foreign = write(client, tokens, foreign, body)
    on_missing = write(client, tokens, missing, body)
    same_answer(on_foreign, on_missing)
    assert on_foreign.status_code in (404, 409)
    assert "3" not in json.dumps(on_foreign.json.get("current_version", ""))


def test_a_bulk_line_to_another_clinics_programme_answers_as_for_a_missing_one(
        client, tokens):
    foreign = start_b(client, tokens)
    missing = uuid.uuid4()
    session = b.session(3)
    sent = [line(foreign, session, expected_version=1),
            line(missing, {**session, "event_id": str(uuid.uuid4())}, expected_version=1),
            line(foreign, b.session(4)), line(missing, b.session(4))]
    results, _ = answered(client.post(f"{A}/events:bulk", data=ndjson(*sent),
                                      headers={**tokens.writer_a, **NDJSON}))
    for result in results:
        result.pop("line", None)
        result.pop("programme_id", None)
        result.pop("event_id", None)
    assert results[0] == results[1]
    assert results[2] == results[3]


@pytest.fixture
def unreadable_b(store_url, client, tokens):
    """A fresh app (nothing of B's in its memory) on a store where B's programme
    cannot be loaded: its second event's stored state is not JSON any more."""
    programme_id = start_b(client, tokens)
    store = StoreSQL(store_url)
    try:
        position = store.sql("SELECT position FROM event_ledger WHERE programme_id = %s "
                             "AND version = 2",
                             (programme_id if store.store.is_postgres else programme_id.hex,))
        store.sql("UPDATE stored_events SET state = %s WHERE {pos} = %s",
                  (b"not json", position[0][0]))
    finally:
        store.close()
    components = components_at(store_url)
    fresh = create_app(components)
    fresh.config["TESTING"] = True
    yield programme_id, fresh.test_client()
    components.close()


@pytest.mark.parametrize("path", ["", "/events", "?version=2", "?version=1", "/events?version=2",
                                  "?as_of={now}"])
def test_a_read_of_another_clinics_programme_never_loads_it(unreadable_b, tokens, path):
    # The moment is taken when the test runs (a parameter must be the same in every
    # xdist worker that collects it).
    path = path.format(now=datetime.now(UTC).isoformat().replace("+", "%2B"))
    foreign, client = unreadable_b
    on_foreign = client.get(f"{A}/programmes/{foreign}{path}", headers=tokens.viewer_a)
    on_missing = client.get(f"{A}/programmes/{uuid.uuid4()}{path}", headers=tokens.viewer_a)
    assert on_foreign.status_code == 404
    same_answer(on_foreign, on_missing)


@pytest.mark.parametrize("expected_version", [None, 2])
def test_a_write_to_another_clinics_programme_never_loads_it(unreadable_b, tokens,
                                                             expected_version):
    foreign, client = unreadable_b
    body: dict = {"events": [b.session(3)]}
    if expected_version is not None:
        body["expected_version"] = expected_version
    on_foreign = write(client, tokens, foreign, body)
    on_missing = write(client, tokens, uuid.uuid4(), body)
    assert on_foreign.status_code in (404, 409)
    same_answer(on_foreign, on_missing)


# ---- ids are each clinic's own: no write tells a clinic another uses an id ----------


def normalised(response) -> tuple[int, dict]:
    """A receipt without what a fresh id changes by itself (the ids, the clinic's
    own positions): what is left must not depend on any other clinic."""
    body = json.loads(response.get_data())
    body["programme_id"] = "P"
    for recorded in body.get("recorded", []):
        recorded["event_id"], recorded["position"] = "E", "N"
    return response.status_code, body


def start_a(client, tokens, programme_id, **envelope):
    return write(client, tokens, programme_id, {"events": [{**b.started(), **envelope}]})


def test_starting_a_programme_with_another_clinics_programme_id_answers_as_a_fresh_id(
        client, tokens):
    taken = start_b(client, tokens)
    on_taken = start_a(client, tokens, taken)
    on_fresh = start_a(client, tokens, uuid.uuid4())
    assert on_taken.status_code == 201, on_taken.json
    assert normalised(on_taken) == normalised(on_fresh)
    assert on_taken.json["programme_id"] == str(taken)
    assert on_taken.json["clinic_id"] == "clinic-a"


def test_an_event_id_another_clinic_used_answers_as_a_fresh_one(client, tokens):
    theirs = start_b(client, tokens)
    history = client.get(f"/v1/clinics/clinic-b/programmes/{theirs}/events",
                         headers=tokens.viewer_b).json["events"]
    used = history[1]["event_id"]
    on_used = start_a(client, tokens, uuid.uuid4(), event_id=used)
    on_fresh = start_a(client, tokens, uuid.uuid4())
    assert on_used.status_code == 201, on_used.json
    assert normalised(on_used) == normalised(on_fresh)
    # In a programme A already has, too.
    own, other = on_fresh.json["programme_id"], history[2]["event_id"]
    again = write(client, tokens, own, {"events": [{**b.session(1), "event_id": other}]})
    assert again.status_code == 201 and again.json["recorded"][0]["event_id"] == other


def test_a_clinics_own_event_ids_still_replay_and_conflict(client, tokens):
    theirs = start_b(client, tokens)
    used = client.get(f"/v1/clinics/clinic-b/programmes/{theirs}/events",
                      headers=tokens.viewer_b).json["events"][0]["event_id"]
    programme_id = uuid.uuid4()
    start = {**b.started(), "event_id": used}
    first = write(client, tokens, programme_id, {"events": [start]})
    assert first.status_code == 201
    retry = write(client, tokens, programme_id, {"events": [start]})
    assert retry.status_code == 200 and retry.json == first.json
    other = write(client, tokens, programme_id, {"events": [{**b.session(1), "event_id": used}]})
    assert other.status_code == 409
    assert other.json["type"].endswith("event-id-conflict")
    # And clinic B's programme is untouched.
    assert client.get(f"/v1/clinics/clinic-b/programmes/{theirs}",
                      headers=tokens.viewer_b).json["version"] == 3


def test_a_bulk_line_with_another_clinics_ids_answers_as_with_fresh_ones(client, tokens):
    taken = start_b(client, tokens)
    used = client.get(f"/v1/clinics/clinic-b/programmes/{taken}/events",
                      headers=tokens.viewer_b).json["events"][1]["event_id"]
    sent = [line(taken, b.started()), line(uuid.uuid4(), b.started()),
            line(uuid.uuid4(), {**b.started(), "event_id": used})]
    results, _ = answered(client.post(f"{A}/events:bulk", data=ndjson(*sent),
                                      headers={**tokens.writer_a, **NDJSON}))
    assert results[0]["receipt"]["programme_id"] == str(taken)
    for result in results:
        for key in ("line", "programme_id", "event_id"):
            result.pop(key, None)
        receipt = result["receipt"]
        receipt["programme_id"], receipt["recorded"][0]["event_id"] = "P", "E"
        receipt["recorded"][0]["position"] = "N"
    assert results[0] == results[1] == results[2]
    assert results[0]["status"] == 201
    assert client.get(f"{A}/programmes/{taken}", headers=tokens.viewer_a).json["version"] == 1


def test_two_clinics_keep_their_own_programme_under_one_programme_id(store_url, app, client,
                                                                      tokens):
    from service.audit.verify import verify_store
    from tests.stores import RunnerAt

    shared = start_b(client, tokens)  # B: started and two sessions, version 3
    assert write(client, tokens, shared,
                 {"events": [b.started(patient_ref="pt-a")]}).status_code == 201
    assert write(client, tokens, shared, {"events": [b.session(1)]}).json["version"] == 2
    b_path, a_path = f"/v1/clinics/clinic-b/programmes/{shared}", f"{A}/programmes/{shared}"

    a_state = client.get(a_path, headers=tokens.viewer_a).json
    b_state = client.get(b_path, headers=tokens.viewer_b).json
    assert (a_state["programme_id"], a_state["clinic_id"], a_state["version"]) == (
        str(shared), "clinic-a", 2)
    assert (b_state["programme_id"], b_state["clinic_id"], b_state["version"]) == (
        str(shared), "clinic-b", 3)
    a_events = client.get(f"{a_path}/events", headers=tokens.viewer_a).json
    b_events = client.get(f"{b_path}/events", headers=tokens.viewer_b).json
    assert a_events["programme_id"] == b_events["programme_id"] == str(shared)
    assert {e["event_id"] for e in a_events["events"]}.isdisjoint(
        e["event_id"] for e in b_events["events"])
    assert client.get(f"{a_path}?version=1", headers=tokens.viewer_a).json["programme_id"] == (
        str(shared))
    fhir = client.get(f"{a_path}/fhir", headers=tokens.viewer_a).json
    assert str(shared) in {entry["resource"]["id"] for entry in fhir["entry"]}

    RunnerAt(store_url).run(once=True)
    for clinic, headers, version in (("clinic-a", tokens.viewer_a, 2),
                                     ("clinic-b", tokens.viewer_b, 3)):
        listing = client.get(f"/v1/clinics/{clinic}/programmes", headers=headers).json
        assert [p["programme_id"] for p in listing["programmes"]] == [str(shared)]
        summary = client.get(f"/v1/clinics/{clinic}/programmes/{shared}/summary",
                             headers=headers)
        assert summary.status_code == 200 and summary.json["programme_id"] == str(shared)
        assert summary.json["clinic_id"] == clinic
        dashboard = client.get(f"/v1/clinics/{clinic}/dashboard", headers=headers).json
        assert dashboard["programmes"] == 1
        assert dashboard["sessions_completed"] == version - 1
    network = client.get("/v1/dashboard", headers=tokens.admin).json
    assert sum(c["programmes"] for c in network["clinics"]) == 2

    components = app.extensions["traction"]
    report = verify_store(components.programmes.recorder, components.checkpoints,
                          components.checkpoint_keys, None, write_checkpoint=False,
                          use_checkpoints=False)
    assert report.failure is None and report.events_checked == 5

    # Erasing A's patient names A's programme by its own id, and leaves B's.
    erased = client.post(f"{A}/patients/erasure", json={"patient_ref": "pt-a", "reason": "r"},
                         headers=tokens.admin)
    assert erased.status_code == 200, erased.json
    assert [r["programme_id"] for r in erased.json["erased"]] == [str(shared)]
    assert client.get(a_path, headers=tokens.viewer_a).json["patient_ref"] != "pt-a"
    assert client.get(b_path, headers=tokens.viewer_b).json["version"] == 3
