"""Reading one programme: state now, at a version, as of a record time; history."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests import builders as b


def post(client, tokens, pid, body):
    response = client.post(f"/v1/clinics/clinic-a/programmes/{pid}/events", json=body,
                           headers=tokens.writer_a)
    assert response.status_code == 201, response.json
    return response


def read(client, tokens, pid, query="", headers=None, clinic="clinic-a"):
    return client.get(f"/v1/clinics/{clinic}/programmes/{pid}{query}",
                      headers=headers or tokens.writer_a)


def test_state_now_and_at_each_version(client, tokens):
    pid = uuid.uuid4()
    post(client, tokens, pid, {"events": [b.started(), b.session(1), b.session(2),
                                          b.pain(4, 3), b.adjusted(4, sessions_per_week=2)]})
    now = read(client, tokens, pid).json
    assert (now["version"], now["sessions_completed"], now["pain_reports"]) == (5, 2, 1)
    assert now["plan"]["sessions_per_week"] == 2
    for version, sessions in [(1, 0), (2, 1), (3, 2), (4, 2)]:
        past = read(client, tokens, pid, f"?version={version}").json
        assert past["version"] == version
        assert past["sessions_completed"] == sessions
        assert past["plan"]["sessions_per_week"] == 3
    assert read(client, tokens, pid, "?version=6").status_code == 404
    assert read(client, tokens, pid, "?version=0").status_code == 422


def test_state_as_of_a_record_time(client, tokens):
    pid = uuid.uuid4()
    post(client, tokens, pid, b.started())
    time.sleep(0.02)
    between = datetime.now(UTC)
    time.sleep(0.02)
    post(client, tokens, pid, b.session(1))
    before = (between - timedelta(hours=1)).isoformat()
    assert read(client, tokens, pid, "?as_of=" + before.replace("+", "%2B")).status_code == 404
    then = read(client, tokens, pid, "?as_of=" + between.isoformat().replace("+", "%2B")).json
    assert then["version"] == 1
    later = datetime.now(UTC).isoformat().replace("+", "%2B")
    assert read(client, tokens, pid, "?as_of=" + later).json["version"] == 2
    assert read(client, tokens, pid, "?as_of=yesterday").status_code == 422
    assert read(client, tokens, pid, "?as_of=2026-03-01T00:00:00").status_code == 422


def test_history_in_version_order_with_positions_and_both_times(client, tokens):
    pid = uuid.uuid4()
    events = [b.started(), b.pain(6, 3), b.pain(5, 1)]  # posted out of clinical order
    post(client, tokens, pid, {"events": events})
    history = client.get(f"/v1/clinics/clinic-a/programmes/{pid}/events",
                         headers=tokens.writer_a).json
    assert history["version"] == 3
    items = history["events"]
    assert [e["version"] for e in items] == [1, 2, 3]
    assert [e["event_id"] for e in items] == [e["event_id"] for e in events]
    assert [e["position"] for e in items] == [1, 2, 3]
    assert items[1]["occurred_at"] == b.at(3)
    assert items[0]["recorded_by"] == "physio.anna"
    assert items[2]["data"] == {"pain_nrs": 5, "scale": "nrs_11"}  # the default scale
    assert [e["schema_version"] for e in items] == [1, 2, 2]
    assert not any(e["newer_release"] for e in items)
    assert all(e["recorded_at"] >= items[0]["recorded_at"] for e in items)
    assert all(e["corrected_by"] is None for e in items)


@pytest.mark.parametrize("path", ["", "/events"])
def test_unknown_or_foreign_programme_is_the_same_404(client, tokens, path):
    pid = uuid.uuid4()
    post(client, tokens, pid, b.started())
    missing = client.get(f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}{path}",
                         headers=tokens.writer_a)
    foreign = client.get(f"/v1/clinics/clinic-b/programmes/{pid}{path}",
                         headers=tokens.viewer_b)
    assert missing.status_code == foreign.status_code == 404
    assert missing.get_data() == foreign.get_data()
    assert str(pid) not in foreign.get_data(as_text=True)


def test_malformed_programme_id_and_clinic_are_404(client, tokens):
    assert read(client, tokens, "not-a-uuid").status_code == 404
    assert client.get(f"/v1/clinics/Bad_Clinic/programmes/{uuid.uuid4()}",
                      headers=tokens.writer_a).status_code == 404


def test_history_read_from_stored_json_equals_the_decoded_events(app, client, tokens):
    """history() skips the library's event decoding: it must say exactly what
    the decoded events and their ledger entries say, for every event type."""
    pid = uuid.uuid4()
    first_session = b.session(1)
    first_report = b.pain(6, 2)
    post(client, tokens, pid, {"events": [
        b.started(), first_session, first_report, b.missed(3), b.adjusted(4, sessions_per_week=2),
        b.adverse("mild", 5), b.paused(6), b.resumed(8), b.corrected(first_session, 9),
        b.corrected(first_report, 9.5, pain_nrs=5), b.session(10), b.discharged(30)]})
    programmes = app.extensions["traction"].programmes
    entries = {e.version: e for e in programmes.ledger.entries_of_programme(pid)}
    corrections = {}
    expected = []
    for event in programmes.events.get(pid):
        entry = entries[event.originator_version]
        if type(event).__name__ == "EntryCorrected":
            corrections[str(event.data["corrects"])] = str(event.event_id)
        expected.append({
            "event_id": str(event.event_id), "type": type(event).__name__,
            "version": event.originator_version, "position": entry.position,
            "occurred_at": event.occurred_at.isoformat(),
            "recorded_at": entry.recorded_at.isoformat(),
            "recorded_by": event.recorded_by, "data": event.data,
            "schema_version": getattr(type(event), "class_version", 1),
            "newer_release": False,
        })
    for item in expected:
        item["corrected_by"] = corrections.get(item["event_id"])
    assert len(expected) == 12
    assert programmes.history("clinic-a", pid) == expected
    assert client.get(f"/v1/clinics/clinic-a/programmes/{pid}/events",
                      headers=tokens.viewer_a).json["events"] == expected
    with pytest.raises(Exception, match="no such programme"):
        programmes.history("clinic-b", pid)
