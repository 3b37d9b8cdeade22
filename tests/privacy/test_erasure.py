"""Patients' personal fields: sealed at rest, readable through the API, erasable.

On both stores: a marker string posted in every personal field never appears
in clear in the store's raw bytes (the SQLite file after a WAL checkpoint, a
`pg_dump`), nor in error bodies, the access log or the service's logs, before
or after erasure; reads show it as posted until the programme is erased, and
the fixed marker `[erased]` afterwards, everywhere (state, history at every
version, summaries); the metrics, the chain and the coded values stay.
"""

from __future__ import annotations

import logging
import uuid

import pytest

from domain.personal import ERASED
from service.storage.sealing import SEALED_PREFIX
from tests import builders as b
from tests.privacy.raw import store_bytes
from tests.stores import RunnerAt

A, B = "clinic-a", "clinic-b"
#: Posted in every personal field; patient_ref allows letters, digits, '.', '_', '-'.
MARKER = "ZQXV-marker-4f1c9b"
PERSONAL_TEXT = f"{MARKER} told us about her neighbour"


def events_url(clinic: str, programme: uuid.UUID) -> str:
    return f"/v1/clinics/{clinic}/programmes/{programme}/events"


def erasure_url(clinic: str, programme: uuid.UUID) -> str:
    return f"/v1/clinics/{clinic}/programmes/{programme}/erasure"


class World:
    """Clinic A's programme with the marker in every personal field, and another
    patient's programme, in the clear of its own words, beside it."""

    def __init__(self, app, client, tokens) -> None:
        self.app, self.client, self.tokens = app, client, tokens
        self.store = app.extensions["traction"].store
        self.marked = uuid.uuid4()
        self.other = uuid.uuid4()
        session = b.session(days=1)
        self.post(A, self.marked, [
            b.started(patient_ref=MARKER),
            session,
            b.pain(4, days=2),
            b.envelope("PlanAdjusted", {"reason": PERSONAL_TEXT, "sessions_per_week": 2}, 3),
            b.envelope("AdverseEventReported",
                       {"severity": "mild", "description": PERSONAL_TEXT}, 4),
            b.envelope("ProgrammePaused", {"reason": PERSONAL_TEXT}, 5),
            b.resumed(days=6),
            b.envelope("EntryCorrected", {"corrects": session["event_id"],
                                          "data": {**session["data"], "duration_minutes": 40},
                                          "reason": PERSONAL_TEXT}, 7),
            b.envelope("ProgrammeDischarged", {"outcome": "improved",
                                               "notes": PERSONAL_TEXT}, 30),
        ])
        self.post(A, self.other, [b.started(patient_ref="pt-kept-0007"), b.pain(3, days=2),
                                  b.envelope("ProgrammePaused", {"reason": "on holiday"}, 3)])

    def post(self, clinic: str, programme: uuid.UUID, events: list, writer=None):
        response = self.client.post(events_url(clinic, programme), json={"events": events},
                                    headers=writer or self.tokens.writer_a)
        assert response.status_code == 201, response.json
        return response

    def project(self) -> None:
        RunnerAt(self.store.url).run(once=True)

    def get(self, path: str, headers=None, **query):
        return self.client.get(path, headers=headers or self.tokens.viewer_a,
                               query_string=query)

    def erase(self, programme: uuid.UUID, clinic: str = A, headers=None,
              reason: str = "Erasure request ER-17"):
        return self.client.post(erasure_url(clinic, programme), json={"reason": reason},
                                headers=headers or self.tokens.admin)


@pytest.fixture
def world(app, client, tokens) -> World:
    world = World(app, client, tokens)
    world.project()
    return world


def personal_values(history: dict) -> list:
    """Every personal field's value in a history, in order."""
    found = []
    for event in history["events"]:
        for name in ("patient_ref", "reason", "description", "notes"):
            if name in event["data"] and event["type"] not in ("SessionMissed",
                                                               "ProgrammeErased"):
                found.append(event["data"][name])
    return found


def test_the_marker_is_never_in_clear_in_the_store_before_or_after_erasure(world, caplog):
    caplog.set_level(logging.DEBUG)
    raw = store_bytes(world.store.url)
    assert MARKER.encode() not in raw
    assert b"her neighbour" not in raw
    assert SEALED_PREFIX.encode() in raw  # the fields are there, sealed
    assert b"pt-kept-0007" not in raw and b"on holiday" not in raw  # nobody's in clear

    assert world.erase(world.marked).status_code == 201
    world.project()
    raw = store_bytes(world.store.url)
    assert MARKER.encode() not in raw and b"her neighbour" not in raw
    assert MARKER not in caplog.text
    metrics = world.client.get("/metrics").get_data(as_text=True)
    assert "traction" in metrics and MARKER not in metrics  # no label carries it


def test_reads_show_personal_fields_as_posted_until_erased(world):
    history = world.get(events_url(A, world.marked)).json
    assert personal_values(history) == [MARKER] + [PERSONAL_TEXT] * 5
    state = world.get(f"/v1/clinics/{A}/programmes/{world.marked}").json
    assert state["patient_ref"] == MARKER
    paused = world.get(f"/v1/clinics/{A}/programmes/{world.marked}", version=6).json
    assert paused["paused_reason"] == PERSONAL_TEXT
    summary = world.get(f"/v1/clinics/{A}/programmes/{world.marked}/summary").json
    assert summary["patient_ref"] == MARKER
    page = world.get(f"/v1/clinics/{A}/programmes").json["programmes"]
    assert sorted(p["patient_ref"] for p in page) == sorted([MARKER, "pt-kept-0007"])


def test_erasure_shows_the_marker_everywhere_and_keeps_the_rest(world):
    t = world.tokens
    base = f"/v1/clinics/{A}/programmes/{world.marked}"
    before = {
        "history": world.get(f"{base}/events").json,
        "at6": world.get(base, version=6),
        "history_at6": world.get(f"{base}/events", version=6),
        "state": world.get(base).json,
        "summary": world.get(f"{base}/summary").json,
        "dashboard": world.get(f"/v1/clinics/{A}/dashboard").json,
        "network": world.get("/v1/dashboard", t.admin).json,
        "other": world.get(f"/v1/clinics/{A}/programmes/{world.other}/events").json,
    }
    erased = world.erase(world.marked)
    assert erased.status_code == 201, erased.json
    receipt = erased.json
    assert [r["type"] for r in receipt["recorded"]] == ["ProgrammeErased"]
    world.project()

    history = world.get(f"{base}/events").json
    assert personal_values(history) == [ERASED] * 6
    assert history["events"][-1]["type"] == "ProgrammeErased"
    assert history["events"][-1]["data"] == {"reason": "Erasure request ER-17"}
    # The coded values stay exactly as they were.
    for old, new in zip(before["history"]["events"], history["events"], strict=False):
        assert {k: v for k, v in new["data"].items() if v != ERASED} == \
            {k: v for k, v in old["data"].items()
             if k not in ("patient_ref", "reason", "description", "notes")}
    state = world.get(base).json
    assert state["patient_ref"] == ERASED
    assert {k: v for k, v in state.items() if k not in ("patient_ref", "version")} == \
        {k: v for k, v in before["state"].items() if k not in ("patient_ref", "version")}
    # A replay to a version before the erasure, and its history then: erased too,
    # with a new ETag (the old one named the personal fields).
    at6 = world.get(base, version=6)
    assert at6.json["patient_ref"] == ERASED and at6.json["paused_reason"] == ERASED
    assert at6.headers["ETag"] != before["at6"].headers["ETag"]
    history_at6 = world.get(f"{base}/events", version=6)
    assert personal_values(history_at6.json) == [ERASED] * 4
    assert history_at6.headers["ETag"] != before["history_at6"].headers["ETag"]
    assert world.get(base, version=6, headers=None).status_code == 200
    stale = world.client.get(base, query_string={"version": 6}, headers={
        **t.viewer_a, "If-None-Match": before["at6"].headers["ETag"]})
    assert stale.status_code == 200 and stale.json["patient_ref"] == ERASED
    # Summaries and dashboards: the marker, the same metrics.
    summary = world.get(f"{base}/summary").json
    assert summary["patient_ref"] == ERASED
    # Every metric the same; only its position moved on (the erasure is its last event).
    assert summary["position"] == receipt["recorded"][0]["position"]
    assert {k: v for k, v in summary.items() if k not in ("patient_ref", "position")} == \
        {k: v for k, v in before["summary"].items() if k not in ("patient_ref", "position")}
    assert world.get(f"/v1/clinics/{A}/dashboard").json == before["dashboard"]
    network = world.get("/v1/dashboard", t.admin).json
    assert network == before["network"]
    # Everyone else's fields read as before.
    assert world.get(f"/v1/clinics/{A}/programmes/{world.other}/events").json == \
        before["other"]
    # The chain still verifies (it covers the ciphertext, which stays).
    # (This app has no checkpoint key, so the report cannot claim the log whole: only
    # that nothing in the chain, or in the access log's, is broken.)
    verify = world.get("/v1/audit/verify", t.auditor)
    assert verify.status_code == 200, verify.json
    assert verify.json["failure"] is None and verify.json["access_log"]["failure"] is None
    assert verify.json["events_checked"] >= 13


def test_after_erasure_posts_are_refused_and_a_repeat_answers_the_first_receipt(world):
    first = world.erase(world.marked)
    assert first.status_code == 201
    again = world.erase(world.marked, reason="asked twice")
    assert again.status_code == 200
    assert again.json == first.json
    refused = world.client.post(events_url(A, world.marked), json=b.pain(2, days=31),
                                headers=world.tokens.writer_a)
    assert refused.status_code == 422
    assert refused.json["rule"] == "programme_erased"
    assert refused.headers["Content-Type"] == "application/problem+json"
    correction = world.client.post(events_url(A, world.marked), json=b.envelope(
        "EntryCorrected", {"corrects": str(uuid.uuid4()), "data": {}, "reason": "x"}, 31),
        headers=world.tokens.writer_a)
    assert correction.status_code == 422
    history = world.get(events_url(A, world.marked)).json
    assert [e["type"] for e in history["events"]].count("ProgrammeErased") == 1


def test_erasure_is_admin_only_and_a_foreign_or_unknown_programme_is_a_plain_404(world):
    t = world.tokens
    for role in ("writer_a", "viewer_a", "auditor", "viewer_all"):
        assert world.erase(world.marked, headers=getattr(t, role)).status_code == 403, role
    unknown = world.erase(uuid.uuid4())
    foreign = world.erase(world.marked, clinic=B)
    missing = world.get(f"/v1/clinics/{A}/programmes/{uuid.uuid4()}")
    assert unknown.status_code == foreign.status_code == missing.status_code == 404
    assert unknown.data == foreign.data == missing.data
    no_reason = world.client.post(erasure_url(A, world.marked), json={},
                                  headers=t.admin)
    assert no_reason.status_code == 422
    empty_reason = world.erase(world.marked, reason="")
    assert empty_reason.status_code == 422
    # Nothing was erased by any of these.
    assert world.get(f"/v1/clinics/{A}/programmes/{world.marked}").json["patient_ref"] == \
        MARKER


def test_the_access_log_records_the_erasure_and_auditors_see_that_not_what(world):
    t = world.tokens
    receipt = world.erase(world.marked).json
    log = world.get("/v1/audit/access-log", t.auditor).json["entries"]
    erasures = [e for e in log if e["action"] == "erasure"]
    assert len(erasures) == 1
    assert erasures[0]["programme_id"] == str(world.marked)
    assert erasures[0]["clinic_id"] == A and erasures[0]["role"] == "admin"
    # The global log shows the erasure event (who, when, why), and the erased
    # programme's personal fields as the marker; everyone else's as their history does.
    events = world.get("/v1/audit/events", t.auditor, limit=1000).json["events"]
    erasure = [e for e in events if e["type"] == "ProgrammeErased"]
    assert [e["position"] for e in erasure] == [receipt["recorded"][0]["position"]]
    assert erasure[0]["data"] == {"reason": "Erasure request ER-17"}
    assert MARKER not in str(events) and "her neighbour" not in str(events)
    assert [e["data"] for e in events if e["programme_id"] == str(world.other)] == [
        e["data"] for e in world.get(events_url(A, world.other)).json["events"]]
    assert MARKER not in str(log)


def test_error_bodies_never_echo_personal_fields(world):
    t = world.tokens
    # A repeated event_id with other content: 409, naming ids only.
    started = b.started(patient_ref=MARKER)
    world.post(A, uuid.uuid4(), [started])
    clash = world.client.post(events_url(A, uuid.uuid4()), json={
        **started, "data": {**started["data"], "patient_ref": MARKER + "-x"}},
        headers=t.writer_a)
    assert clash.status_code == 409 and MARKER not in clash.get_data(as_text=True)
    # A second start of the same programme: 422, no echo.
    again = world.client.post(events_url(A, world.other), json=b.started(patient_ref=MARKER),
                              headers=t.writer_a)
    assert again.status_code == 422 and MARKER not in again.get_data(as_text=True)
    # A free text too long, and a patient_ref that breaks its pattern: 422, no echo.
    long = world.client.post(events_url(A, world.other), json=b.envelope(
        "ProgrammePaused", {"reason": MARKER * 40}, 4), headers=t.writer_a)
    assert long.status_code == 422 and MARKER not in long.get_data(as_text=True)
    bad_ref = world.client.post(events_url(A, uuid.uuid4()),
                                json=b.started(patient_ref=MARKER + " with spaces"),
                                headers=t.writer_a)
    assert bad_ref.status_code == 422 and MARKER not in bad_ref.get_data(as_text=True)


def test_a_sealed_value_altered_in_the_store_reads_as_unreadable_not_a_500(world):
    from domain.personal import UNREADABLE
    from tests.audit.conftest import StoreSQL

    sql = StoreSQL(world.store.url)
    try:
        rows = sql.sql("SELECT {pos}, state FROM stored_events WHERE originator_id = %s"
                       " AND originator_version = 1",
                       (world.marked if world.store.is_postgres else world.marked.hex,))
        if not rows:  # SQLite keeps the id as text, with its dashes
            rows = sql.sql("SELECT {pos}, state FROM stored_events WHERE originator_id = %s"
                           " AND originator_version = 1", (str(world.marked),))
        position, state = rows[0]
        state = bytes(state)
        start = state.index(SEALED_PREFIX.encode())
        tail = state.index(b'"', start)
        # Change one character in the middle of the ciphertext's base64 (not at its
        # end, whose last bits may be padding that decoding ignores).
        flip = tail - 12
        swapped = b"A" if state[flip:flip + 1] != b"A" else b"B"
        sql.sql("UPDATE stored_events SET state = %s WHERE {pos} = %s",
                (state[:flip] + swapped + state[flip + 1:], position))
    finally:
        sql.close()
    history = world.get(events_url(A, world.marked))
    assert history.status_code == 200
    assert history.json["events"][0]["data"]["patient_ref"] == UNREADABLE
    # verify names the entry whose bytes changed.
    verify = world.get("/v1/audit/verify", world.tokens.auditor).json
    assert verify["ok"] is False and verify["failure"]["position"] == position


def test_the_openapi_document_names_the_marker_for_the_erasure_route(client):
    document = client.get("/openapi.json").json
    operation = document["paths"]["/v1/clinics/{clinic_id}/programmes/{programme_id}/erasure"]
    described = operation["post"]["description"]
    assert f"`{ERASED}`" in described and "programme_erased" in described
    assert set(operation["post"]["responses"]) >= {"201", "403", "404", "422"}


def test_every_programme_of_one_patient_at_a_clinic_is_erased_over_http(world):
    t = world.tokens
    second = uuid.uuid4()
    world.post(A, second, [b.started(patient_ref=MARKER)])
    theirs = uuid.uuid4()  # the same patient_ref at another clinic: another patient
    world.post(B, theirs, [b.started(patient_ref=MARKER)], writer=t.writer_b)
    url = f"/v1/clinics/{A}/patients/erasure"
    erased = world.client.post(url, json={"patient_ref": MARKER, "reason": "ER-5"},
                               headers=t.admin)
    assert erased.status_code == 200, erased.json
    assert sorted(r["programme_id"] for r in erased.json["erased"]) == sorted(
        [str(world.marked), str(second)])
    assert MARKER not in erased.get_data(as_text=True)
    for programme in (world.marked, second):
        state = world.get(f"/v1/clinics/{A}/programmes/{programme}").json
        assert state["patient_ref"] == ERASED
    assert world.get(f"/v1/clinics/{B}/programmes/{theirs}",
                     headers=t.viewer_b).json["patient_ref"] == MARKER
    assert world.get(f"/v1/clinics/{A}/programmes/{world.other}").json["patient_ref"] == \
        "pt-kept-0007"
    # Nobody left to erase, an unknown patient, a writer: a plain 404, or 403.
    again = world.client.post(url, json={"patient_ref": MARKER, "reason": "again"},
                              headers=t.admin)
    missing = world.get(f"/v1/clinics/{A}/programmes/{uuid.uuid4()}")
    assert again.status_code == 404 and again.data == missing.data
    assert world.client.post(url, json={"patient_ref": MARKER, "reason": "x"},
                             headers=t.writer_a).status_code == 403
    bad = world.client.post(url, json={"patient_ref": MARKER + " !", "reason": "x"},
                            headers=t.admin)
    assert bad.status_code == 422 and MARKER not in bad.get_data(as_text=True)
    log = world.get("/v1/audit/access-log", t.auditor).json["entries"]
    assert len([e for e in log if e["action"] == "erasure"]) == 2
    assert MARKER not in str(log)


def test_bulk_uploads_are_sealed_and_refused_for_an_erased_programme(world):
    import json

    t = world.tokens
    assert world.erase(world.marked).status_code == 201
    fresh = uuid.uuid4()
    lines = [{**b.started(patient_ref=MARKER + "-bulk"), "programme_id": str(fresh)},
             {**b.envelope("ProgrammePaused", {"reason": PERSONAL_TEXT}, 2),
              "programme_id": str(fresh)},
             {**b.pain(2, days=40), "programme_id": str(world.marked)}]
    answer = world.client.post(f"/v1/clinics/{A}/events:bulk",
                               data=b"".join(json.dumps(x).encode() + b"\n" for x in lines),
                               headers={**t.writer_a, "Content-Type": "application/x-ndjson"})
    assert answer.status_code == 200
    results = [json.loads(text) for text in answer.data.decode().splitlines()][:-1]
    assert [r["status"] for r in results] == [201, 201, 422]
    assert results[2]["problem"]["rule"] == "programme_erased"
    assert MARKER not in answer.get_data(as_text=True)
    raw = store_bytes(world.store.url)
    assert MARKER.encode() not in raw and b"her neighbour" not in raw
    state = world.get(f"/v1/clinics/{A}/programmes/{fresh}").json
    assert (state["patient_ref"], state["paused_reason"]) == (MARKER + "-bulk", PERSONAL_TEXT)
