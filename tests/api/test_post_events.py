"""POST /v1/clinics/{clinic_id}/programmes/{programme_id}/events, on both stores."""

from __future__ import annotations

import json
import uuid

import pytest

from service.http.schemas.responses import ReceiptSchema
from tests import builders as b

pytestmark = pytest.mark.usefixtures("tokens")


def url(programme_id, clinic="clinic-a") -> str:
    return f"/v1/clinics/{clinic}/programmes/{programme_id}/events"


def post(client, tokens, programme_id, body, clinic="clinic-a", headers=None):
    return client.post(url(programme_id, clinic), json=body,
                       headers=headers or tokens.writer_a)


def version_of(client, tokens, programme_id) -> int:
    response = client.get(f"/v1/clinics/clinic-a/programmes/{programme_id}",
                          headers=tokens.writer_a)
    return response.json["version"] if response.status_code == 200 else 0


def test_start_then_batch_returns_versions_and_gap_free_positions(client, tokens):
    pid = uuid.uuid4()
    first = post(client, tokens, pid, b.started())
    assert first.status_code == 201
    assert first.json["version"] == 1
    assert first.json["clinic_id"] == "clinic-a"
    assert first.json["programme_id"] == str(pid)
    assert [r["position"] for r in first.json["recorded"]] == [1]

    assert ReceiptSchema().load(first.json) and ReceiptSchema().dump(
        ReceiptSchema().load(first.json)) == first.json  # sent as the schema documents it

    batch = [b.session(1), b.pain(5, 2), b.missed(3), b.session(4)]
    second = post(client, tokens, pid, {"events": batch, "expected_version": 1})
    assert second.status_code == 201
    assert second.json["version"] == 5
    assert [r["version"] for r in second.json["recorded"]] == [2, 3, 4, 5]
    assert [r["position"] for r in second.json["recorded"]] == [2, 3, 4, 5]
    assert [r["event_id"] for r in second.json["recorded"]] == [e["event_id"] for e in batch]


def test_positions_are_global_across_programmes(client, tokens):
    a, c = uuid.uuid4(), uuid.uuid4()
    assert post(client, tokens, a, b.started()).json["recorded"][0]["position"] == 1
    assert post(client, tokens, c, b.started()).json["recorded"][0]["position"] == 2
    assert post(client, tokens, a, b.session()).json["recorded"][0]["position"] == 3


def test_severe_adverse_event_pauses_in_the_same_save(client, tokens):
    pid = uuid.uuid4()
    post(client, tokens, pid, b.started())
    response = post(client, tokens, pid, b.adverse("severe", 2))
    assert response.status_code == 201
    assert [r["type"] for r in response.json["recorded"]] == [
        "AdverseEventReported", "ProgrammePaused"]
    assert response.json["version"] == 3
    state = client.get(f"/v1/clinics/clinic-a/programmes/{pid}", headers=tokens.writer_a).json
    assert state["status"] == "paused"
    assert state["paused_reason"] == "severe_adverse_event"


def test_identical_retry_returns_the_original_body_and_records_nothing(client, tokens):
    pid = uuid.uuid4()
    post(client, tokens, pid, b.started())
    batch = {"events": [b.session(1), b.adverse("severe", 2)]}
    original = post(client, tokens, pid, batch)
    assert original.status_code == 201
    retry = post(client, tokens, pid, batch)
    assert retry.status_code == 200
    assert retry.json == original.json
    assert version_of(client, tokens, pid) == 4
    single = b.pain(4, 3)
    first = post(client, tokens, pid, single)
    again = post(client, tokens, pid, single)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json
    assert version_of(client, tokens, pid) == 5


def test_same_event_id_with_other_content_is_a_conflict(client, tokens):
    pid = uuid.uuid4()
    post(client, tokens, pid, b.started())
    report = b.pain(4, 3)
    post(client, tokens, pid, report)
    changed = {**report, "data": {"pain_nrs": 5}}
    response = post(client, tokens, pid, changed)
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json["event_ids"] == [report["event_id"]]
    assert version_of(client, tokens, pid) == 2


def test_same_event_id_on_another_programme_is_a_conflict(client, tokens):
    first, second = uuid.uuid4(), uuid.uuid4()
    start = b.started()
    post(client, tokens, first, start)
    response = post(client, tokens, second, start)
    assert response.status_code == 409
    assert version_of(client, tokens, second) == 0


def test_a_save_the_store_refuses_leaves_the_programme_as_it_was(client, tokens):
    """The store refuses the save (an event_id already used by another programme)
    after the command ran on the cached programme: that programme must not keep
    the refused event, in this worker or after."""
    first, second = uuid.uuid4(), uuid.uuid4()
    taken = b.session(1)
    post(client, tokens, first, {"events": [b.started(), taken]})
    post(client, tokens, second, b.started())
    assert version_of(client, tokens, second) == 1  # cached now
    reused = {**b.session(2), "event_id": taken["event_id"]}
    assert post(client, tokens, second, reused).status_code == 409
    assert version_of(client, tokens, second) == 1
    state = client.get(f"/v1/clinics/clinic-a/programmes/{second}", headers=tokens.writer_a)
    assert state.json["sessions_completed"] == 0
    ok = post(client, tokens, second, b.session(3))
    assert ok.status_code == 201
    assert [r["version"] for r in ok.json["recorded"]] == [2]


def test_expected_version_mismatch_is_a_conflict_and_records_nothing(client, tokens):
    pid = uuid.uuid4()
    post(client, tokens, pid, b.started())
    response = post(client, tokens, pid, {**b.session(), "expected_version": 3})
    assert response.status_code == 409
    assert response.json["expected_version"] == 3
    assert response.json["current_version"] == 1
    assert version_of(client, tokens, pid) == 1
    ok = post(client, tokens, pid, {"events": [b.session()], "expected_version": 1})
    assert ok.status_code == 201


def test_new_programme_with_expected_version_zero(client, tokens):
    pid = uuid.uuid4()
    assert post(client, tokens, pid, {**b.started(), "expected_version": 0}).status_code == 201
    assert post(client, tokens, uuid.uuid4(), {**b.started(), "expected_version": 1}
                ).status_code == 409


def test_batch_with_one_bad_event_records_nothing(client, tokens):
    pid = uuid.uuid4()
    post(client, tokens, pid, b.started())
    bad_rule = {"events": [b.session(1), b.resumed(2), b.session(3)]}
    response = post(client, tokens, pid, bad_rule)
    assert response.status_code == 422
    assert response.json["rule"] == "programme_not_paused"
    assert response.json["event_index"] == 1
    assert response.json["event_id"] == bad_rule["events"][1]["event_id"]
    bad_field = {"events": [b.session(1), b.pain(11, 2)]}
    response = post(client, tokens, pid, bad_field)
    assert response.status_code == 422
    assert response.json["errors"] == [
        {"pointer": "/events/1/data/pain_nrs", "detail": "Must be greater than or equal to 0 "
         "and less than or equal to 10."}]
    assert version_of(client, tokens, pid) == 1


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"data": {"pain_nrs": "5"}}, "/data/pain_nrs"),
        ({"data": {"pain_nrs": 5.0}}, "/data/pain_nrs"),
        ({"data": {"pain_nrs": True}}, "/data/pain_nrs"),
        ({"data": {"pain_nrs": 5, "mood": "ok"}}, "/data/mood"),
        ({"surprise": 1}, "/surprise"),
        ({"occurred_at": "2026-03-03T09:00:00"}, "/occurred_at"),
        ({"occurred_at": "2026-03-03"}, "/occurred_at"),
        ({"event_id": "not-a-uuid"}, "/event_id"),
        ({"type": "PainMeasured"}, "/type"),
        ({"recorded_by": "Dr Who"}, "/recorded_by"),
        ({"data": {"pain_nrs": 5, "context": "lunch"}}, "/data/context"),
    ],
)
def test_field_errors_are_422_with_a_pointer(client, tokens, change, pointer):
    pid = uuid.uuid4()
    post(client, tokens, pid, b.started())
    response = post(client, tokens, pid, {**b.pain(5), **change})
    assert response.status_code == 422, response.json
    assert response.headers["Content-Type"] == "application/problem+json"
    assert pointer in [e["pointer"] for e in response.json["errors"]]
    assert version_of(client, tokens, pid) == 1


def test_plan_force_rules_are_validated(client, tokens):
    mat_with_force = b.started(modality="decompression_mat")
    mat_with_force["data"]["plan"]["force_percent_body_weight"] = 20
    response = post(client, tokens, uuid.uuid4(), mat_with_force)
    assert response.status_code == 422
    assert response.json["errors"][0]["pointer"] == "/data/plan/force_percent_body_weight"
    table_without_force = b.started()
    del table_without_force["data"]["plan"]["force_percent_body_weight"]
    assert post(client, tokens, uuid.uuid4(), table_without_force).status_code == 422


@pytest.mark.parametrize(
    ("events", "rule"),
    [
        ([b.session()], None),  # no programme yet: 404
        ([b.started(), b.started(1)], "programme_already_started"),
        ([b.started(), b.discharged(5), b.session(6)], "programme_discharged"),
        ([b.started(), b.paused(1), b.session(2)], "programme_paused"),
        ([b.started(), b.paused(1), b.paused(2)], "programme_paused"),
        ([b.started(5), b.session(1)], "occurred_before_start"),
        ([b.started(), b.adjusted(1, sessions_per_week=3)], "plan_unchanged"),
        ([b.started(), b.adjusted(1, modality="decompression_mat",
                                  force_percent_body_weight=10)],
         "force_requires_mechanical_table"),
        ([b.started(), b.envelope("EntryCorrected", {
            "corrects": str(uuid.uuid4()), "data": {"pain_nrs": 3}, "reason": "typo"}, 2)],
         "correction_target_unknown"),
    ],
)
def test_domain_rules_are_422_naming_the_rule(client, tokens, events, rule):
    response = post(client, tokens, uuid.uuid4(), {"events": events})
    if rule is None:
        assert response.status_code == 404
    else:
        assert response.status_code == 422, response.json
        assert response.json["rule"] == rule


def test_occurred_at_far_in_the_future_is_refused(client, tokens):
    response = post(client, tokens, uuid.uuid4(),
                    {**b.started(), "occurred_at": "2999-01-01T00:00:00Z"})
    assert response.status_code == 422
    assert response.json["rule"] == "occurred_in_future"


def test_a_programme_id_another_clinic_uses_starts_a_programme_of_its_own(client, tokens):
    pid = uuid.uuid4()
    assert post(client, tokens, pid, b.started()).status_code == 201
    response = post(client, tokens, pid, b.started(), clinic="clinic-b",
                    headers=tokens.writer_b)
    assert response.status_code == 201
    assert response.json["programme_id"] == str(pid)
    assert response.json["clinic_id"] == "clinic-b"
    assert "clinic-a" not in response.get_data(as_text=True)
    # Clinic B's programme under that id is its own, and clinic A's is unchanged.
    response = post(client, tokens, pid, b.session(), clinic="clinic-b", headers=tokens.writer_b)
    assert response.status_code == 201 and response.json["version"] == 2
    state = client.get(f"/v1/clinics/clinic-a/programmes/{pid}", headers=tokens.writer_a).json
    assert state["version"] == 1 and state["programme_id"] == str(pid)


def test_correction_changes_state_but_keeps_the_original(client, tokens):
    pid = uuid.uuid4()
    session = b.session(1, duration_minutes=30)
    post(client, tokens, pid, {"events": [b.started(), session]})
    fix = b.corrected(session, 2, duration_minutes=45)
    assert post(client, tokens, pid, fix).status_code == 201
    state = client.get(f"/v1/clinics/clinic-a/programmes/{pid}", headers=tokens.writer_a).json
    assert state["minutes_completed"] == 45
    history = client.get(url(pid), headers=tokens.writer_a).json["events"]
    assert history[1]["data"]["duration_minutes"] == 30
    assert history[1]["corrected_by"] == fix["event_id"]
    assert history[2]["type"] == "EntryCorrected"


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"\xff\xfe{}", "application/json", 400),
        (b'{"a": NaN}', "application/json", 400),
        (b'{"a": Infinity}', "application/json", 400),
        (b'{"a": 1, "a": 2}', "application/json", 400),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400),
        (b"", "application/json", 400),
        (b"{}", "text/plain", 415),
        (b"{}", None, 415),
        (b"[]", "application/json", 422),
        (b'"x"', "application/json", 422),
        (b"{}", "application/json", 422),
        (b'{"events": []}', "application/json", 422),
    ],
)
def test_hostile_bodies_get_precise_problems(client, tokens, data, content_type, status):
    pid = uuid.uuid4()
    post(client, tokens, pid, b.started())
    headers = dict(tokens.writer_a)
    response = client.post(url(pid), data=data, content_type=content_type, headers=headers)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json
    assert body["status"] == status and body["title"] and body["detail"]
    assert version_of(client, tokens, pid) == 1


def test_too_large_body_is_413(client, tokens, app):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    response = client.post(url(uuid.uuid4()), data=b"{" + b" " * 20_000 + b"}",
                           content_type="application/json", headers=tokens.writer_a)
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"


def test_more_than_500_events_is_422(client, tokens):
    pid = uuid.uuid4()
    post(client, tokens, pid, b.started())
    response = post(client, tokens, pid, {"events": [b.session(1)] * 501})
    assert response.status_code == 422
    assert response.json["errors"][0]["pointer"] == "/events"


def test_duplicate_event_ids_in_one_batch_are_422(client, tokens):
    pid = uuid.uuid4()
    post(client, tokens, pid, b.started())
    session = b.session(1)
    response = post(client, tokens, pid, {"events": [session, session]})
    assert response.status_code == 422
    assert response.json["errors"][0]["pointer"] == "/events/1/event_id"


def test_a_full_batch_of_500_is_recorded_atomically(client, tokens):
    pid = uuid.uuid4()
    events = [b.started()] + [b.session(i / 100) for i in range(1, 500)]
    response = post(client, tokens, pid, {"events": events})
    assert response.status_code == 201
    assert response.json["version"] == 500
    body = json.dumps({"events": events})
    assert len(body) < 2_000_000  # the default body limit leaves room for a full batch


def test_brackets_inside_strings_are_not_nesting_and_control_characters_are_refused(
        client, tokens):
    pid = uuid.uuid4()
    assert post(client, tokens, pid, b.started()).status_code == 201
    brackety = b.adverse("mild", 1)
    brackety["data"]["description"] = '[[[[ "quoted \\" {{{{ ' * 20  # 80 of each, in a string
    assert post(client, tokens, pid, brackety).status_code == 201
    for text in ("bell \u0007", "nul \u0000", "unit separator \u001f"):
        controlled = b.adverse("mild", 2)
        controlled["data"]["description"] = text
        response = post(client, tokens, pid, controlled)
        assert response.status_code == 422
        assert response.json["errors"] == [{"pointer": "/data/description",
                                            "detail": "Control characters are not allowed."}]
    fine = b.adverse("mild", 3)
    fine["data"]["description"] = "tab\there,\nnewline there"
    assert post(client, tokens, pid, fine).status_code == 201
