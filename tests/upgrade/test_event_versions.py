"""Event versions on every read path, on both stores.

Events are written here in the stored form of other releases: version 1 of
PainReported and EntryCorrected as release 0.1.0 wrote them (no scale, no
class_version), and a version newer than this release knows, as a newer host
would write it during a rolling upgrade. Then every reader is asked: the
aggregate's replay (now, at a version, as of a time), the history, the live
projection runner and a rebuild, the global log, verification and export.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from domain.ledger import LedgerEntry
from domain.programme import Programme
from domain.versions import EventFromNewerRelease, upcast_state
from projections.store import DEFAULT_PROJECTION
from service.audit.log import global_log
from service.cli import main
from tests import builders as b
from tests.stores import RunnerAt, rebuild_at

CLINIC = "clinic-a"


def older(stored: StoredEvent, change) -> StoredEvent:
    """The same stored event as another release wrote it: its state JSON changed."""
    state = json.loads(stored.state)
    change(state)
    return StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                       json.dumps(state, separators=(",", ":")).encode())


def as_release_0_1_0(state: dict[str, Any]) -> None:
    """PainReported and EntryCorrected at version 1: no class_version, no scale."""
    state.pop("class_version", None)
    state["data"].pop("scale", None)
    if isinstance(state["data"].get("data"), dict):
        state["data"]["data"].pop("scale", None)


def record_raw(programmes, stored_events: list[StoredEvent], events: list[Any]) -> None:
    """Insert stored events as they are, with their ledger entries, as a save would."""
    ledger = [LedgerEntry(e.event_id, CLINIC, type(e).__name__, None) for e in events]
    programmes.recorder.insert_events(stored_events, ledger=ledger)


def programme_events(programme_id: uuid.UUID) -> list[Any]:
    """A programme with pain reports and a correction of one, as the aggregate records them."""
    start = b.event_envelope(b.started())
    p = Programme.start(programme_id=programme_id, clinic_id=CLINIC, event_id=start.event_id,
                        occurred_at=start.occurred_at, recorded_by=start.recorded_by,
                        data=start.data, now=b.moment(100))
    first = uuid.uuid4()
    p.report_pain(first, b.moment(1), "physio.anna", {"pain_nrs": 6}, b.moment(100))
    p.report_pain(uuid.uuid4(), b.moment(8), "physio.anna", {"pain_nrs": 4, "context":
                                                              "follow_up"}, b.moment(100))
    p.correct_entry(uuid.uuid4(), b.moment(9), "physio.anna",
                    {"corrects": str(first), "data": {"pain_nrs": 5}, "reason": "typo"},
                    b.moment(100))
    return p.collect_events()


def test_every_upcaster_works_on_the_raw_json_the_fast_paths_read():
    # The library's mapper hands upcasters decoded states; the history and the
    # projections hand them the raw JSON (ids and times still encoded). Upcasters
    # touch only `data`, so both must come out the same.
    programmes_events = programme_events(uuid.uuid4())
    from domain.application import Programmes

    mapper = Programmes().mapper
    for event in programmes_events:
        stored = older(mapper.to_stored_event(event), as_release_0_1_0)
        raw = upcast_state(stored.topic, json.loads(stored.state))
        assert raw["data"] == mapper.to_domain_event(stored).data == event.data


def test_a_version_newer_than_this_release_is_refused_by_the_upcaster():
    event = programme_events(uuid.uuid4())[1]
    from domain.application import Programmes

    stored = Programmes().mapper.to_stored_event(event)
    state = json.loads(stored.state)
    state["class_version"] = 3
    with pytest.raises(EventFromNewerRelease, match="PainReported version 3"):
        upcast_state(stored.topic, state)
    assert state["class_version"] == 3  # left as stored


@pytest.fixture
def old_programme(app):
    """A programme whose pain reports and correction are stored as 0.1.0 stored them."""
    programmes = app.extensions["traction"].programmes
    programme_id = uuid.uuid4()
    events = programme_events(programme_id)
    stored = [older(programmes.mapper.to_stored_event(e), as_release_0_1_0) for e in events]
    assert all(b'"scale"' not in s.state and b"class_version" not in s.state for s in stored)
    record_raw(programmes, stored, events)
    return programme_id, events


def test_old_events_are_upcast_by_replay_now_at_a_version_and_as_of(app, old_programme):
    programmes = app.extensions["traction"].programmes
    programme_id, events = old_programme
    now = programmes.programme(CLINIC, programme_id)
    assert {e["data"]["scale"] for e in now.entries.values()} == {"nrs_11"}
    assert now.entries[str(events[1].event_id)]["data"] == {"pain_nrs": 5, "scale": "nrs_11"}
    at_two = programmes.programme(CLINIC, programme_id, version=2)
    assert at_two.entries[str(events[1].event_id)]["data"] == {"pain_nrs": 6, "scale": "nrs_11"}
    as_of = programmes.programme(CLINIC, programme_id,
                                 as_of=programmes.ledger.entries_of_programme(
                                     programme_id)[-1].recorded_at)
    assert as_of.version == 4


def test_old_events_are_upcast_in_the_history_and_the_global_log(app, client, tokens,
                                                                  old_programme):
    programme_id, events = old_programme
    history = client.get(f"/v1/clinics/{CLINIC}/programmes/{programme_id}/events",
                         headers=tokens.viewer_a).json["events"]
    assert [e["schema_version"] for e in history] == [1, 1, 1, 1]
    assert history[1]["data"] == {"pain_nrs": 6, "scale": "nrs_11"}
    assert history[3]["data"]["data"] == {"pain_nrs": 5, "scale": "nrs_11"}
    assert history[1]["corrected_by"] == str(events[3].event_id)
    log = global_log(app.extensions["traction"].programmes, 0, 10)
    assert [e["data"] for e in log] == [e["data"] for e in history]
    assert [e["schema_version"] for e in log] == [1, 1, 1, 1]


def test_the_live_runner_and_a_rebuild_upcast_old_events_alike(app, client, tokens,
                                                              old_programme):
    programme_id, _ = old_programme
    url = app.extensions["traction"].store.url
    RunnerAt(url).run(once=True)  # following the log, batch by batch
    summary = client.get(f"/v1/clinics/{CLINIC}/programmes/{programme_id}/summary",
                         headers=tokens.viewer_a).json
    assert [p["pain_nrs"] for p in summary["pain_trajectory"]] == [5, 4]
    assert summary["held_since_position"] is None and summary["corrections"] == 1
    read_models = app.extensions["traction"].read_models
    followed = read_models.digest(DEFAULT_PROJECTION)
    rebuild_at(url, progress=False, grace=0)
    assert read_models.digest(DEFAULT_PROJECTION) == followed


def test_old_events_verify_export_and_check_offline(app, old_programme, tmp_path):
    from click.testing import CliRunner

    env = {"TRACTION_DATABASE_URL": app.extensions["traction"].store.url}
    verified = CliRunner().invoke(main, ["audit", "verify", "--json", "--no-checkpoints"],
                                  env=env)
    assert verified.exit_code == 0 and json.loads(verified.stdout)["events_checked"] == 4
    export = tmp_path / "log.jsonl"
    CliRunner().invoke(main, ["audit", "export", "-o", str(export)], env=env)
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert lines[0]["event_versions"]["PainReported"] == 2
    pain = [line for line in lines if line.get("type") == "PainReported"]
    assert pain[0]["data"] == {"pain_nrs": 6, "scale": "nrs_11"}  # upcast, as shown
    assert pain[0]["schema_version"] == 1  # as stored
    checked = CliRunner().invoke(main, ["audit", "verify", "--export", str(export), "--json",
                                        "--no-checkpoints"],
                                 env=env)
    assert checked.exit_code == 0, checked.output


def test_an_export_of_release_0_1_0_still_checks_against_its_stored_bytes(app, old_programme,
                                                                          tmp_path):
    # 0.1.0's exports have no versions in their header and showed version 1 data.
    from click.testing import CliRunner

    env = {"TRACTION_DATABASE_URL": app.extensions["traction"].store.url}
    export = tmp_path / "log.jsonl"
    CliRunner().invoke(main, ["audit", "export", "-o", str(export)], env=env)
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    del lines[0]["event_versions"]
    for line in lines:
        if line.get("kind") == "event":
            line.pop("schema_version")
            line.pop("newer_release")
            as_release_0_1_0(line)
    export.write_text("".join(json.dumps(line) + "\n" for line in lines))
    checked = CliRunner().invoke(main, ["audit", "verify", "--export", str(export), "--json",
                                        "--no-checkpoints"],
                                 env=env)
    assert checked.exit_code == 0, checked.output
    # And one changed readable field is still caught.
    event = next(line for line in lines if line.get("type") == "PainReported")
    event["data"]["pain_nrs"] = 0
    export.write_text("".join(json.dumps(line) + "\n" for line in lines))
    changed = CliRunner().invoke(main, ["audit", "verify", "--export", str(export), "--json",
                                        "--no-checkpoints"],
                                 env=env)
    assert changed.exit_code == 1
    assert json.loads(changed.stdout)["failure"]["kind"] == "changed"


# ---- a newer release's events (a rolling upgrade) ------------------------------------


@pytest.fixture
def newer_programme(app):
    """A programme whose last pain report a newer release wrote (version 3)."""
    programmes = app.extensions["traction"].programmes
    programme_id = uuid.uuid4()
    events = programme_events(programme_id)[:3]

    def as_version_3(state: dict[str, Any]) -> None:
        state["class_version"] = 3
        state["data"]["scale"] = "vas_100"

    stored = [programmes.mapper.to_stored_event(e) for e in events]
    stored[2] = older(stored[2], as_version_3)
    record_raw(programmes, stored, events)
    return programme_id, events


def test_a_newer_event_is_shown_as_stored_and_marked_in_the_history(client, tokens,
                                                                   newer_programme):
    programme_id, _ = newer_programme
    history = client.get(f"/v1/clinics/{CLINIC}/programmes/{programme_id}/events",
                         headers=tokens.viewer_a)
    assert history.status_code == 200, history.json
    items = history.json["events"]
    assert [e["newer_release"] for e in items] == [False, False, True]
    assert items[2]["schema_version"] == 3
    assert items[2]["data"] == {"pain_nrs": 4, "context": "follow_up", "scale": "vas_100"}


def test_replaying_a_newer_event_is_refused_plainly(client, tokens, newer_programme):
    programme_id, _ = newer_programme
    state = client.get(f"/v1/clinics/{CLINIC}/programmes/{programme_id}",
                       headers=tokens.viewer_a)
    assert state.status_code == 503
    assert state.json["type"] == "urn:traction-ledger:problem:newer-release"
    assert "PainReported version 3" in state.json["detail"]
    assert state.headers["Retry-After"] == "5"
    earlier = client.get(f"/v1/clinics/{CLINIC}/programmes/{programme_id}?version=2",
                         headers=tokens.viewer_a)
    assert earlier.status_code == 200  # what this release can read, it still reads
    post = client.post(f"/v1/clinics/{CLINIC}/programmes/{programme_id}/events",
                       json=b.pain(2, 20), headers=tokens.writer_a)
    assert post.status_code == 503


def test_a_newer_event_is_parked_by_the_projection_and_still_verifies(app, client, tokens,
                                                                     newer_programme):
    programme_id, _ = newer_programme
    url = app.extensions["traction"].store.url
    RunnerAt(url).run(once=True)
    summary = client.get(f"/v1/clinics/{CLINIC}/programmes/{programme_id}/summary",
                         headers=tokens.viewer_a).json
    assert summary["held_since_position"] == 3  # parked, not read as an older event
    assert client.get("/readyz").status_code == 503
    from click.testing import CliRunner

    verified = CliRunner().invoke(main, ["audit", "verify", "--json", "--no-checkpoints"],
                                  env={"TRACTION_DATABASE_URL": url})
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"]
