"""`traction audit replay`: a programme's state at a version or a record
time, and the events that led to it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from tests.audit.conftest import StoreSQL, run_cli


def _programme(store_sql: StoreSQL) -> str:
    row = store_sql.ledger(1)
    return str(row[1]) if store_sql.store.is_postgres else (
        f"{row[1][:8]}-{row[1][8:12]}-{row[1][12:16]}-{row[1][16:20]}-{row[1][20:]}")


def test_replay_at_a_version_shows_its_state_and_the_events_up_to_it(recorded, store_sql):
    programme_id = _programme(store_sql)
    result = run_cli(recorded, "replay", programme_id, "--version", "4", "--json")
    assert result.exit_code == 0, result.output
    replayed = json.loads(result.stdout)
    assert replayed["version"] == 4 and replayed["latest_version"] == 8
    assert replayed["state"]["version"] == 4
    assert [e["version"] for e in replayed["events"]] == [1, 2, 3, 4]
    assert replayed["events"][0]["type"] == "ProgrammeStarted"

    text = run_cli(recorded, "replay", programme_id, "--version", "2").stdout
    assert f"programme {programme_id} of clinic-a: version 2 of 8" in text
    assert "ProgrammeStarted by physio.anna" in text

    now = run_cli(recorded, "replay", programme_id, "--json")
    assert json.loads(now.stdout)["version"] == 8


def test_replay_as_of_a_record_time(recorded, store_sql):
    programme_id = _programme(store_sql)
    first_save = store_sql.ledger(1)[6]
    recorded_at = first_save if isinstance(first_save, datetime) else (
        datetime.fromisoformat(first_save))
    # The first save recorded versions 1-3 of this programme at one record time.
    result = run_cli(recorded, "replay", programme_id, "--as-of", recorded_at.isoformat(),
                     "--json")
    assert json.loads(result.stdout)["version"] == 3
    before = (recorded_at - timedelta(seconds=1)).isoformat()
    result = run_cli(recorded, "replay", programme_id, "--as-of", before)
    assert result.exit_code == 1 and "nothing was known of it before then" in result.output


def test_replay_refuses_what_it_cannot_answer(recorded, store_sql):
    programme_id = _programme(store_sql)
    unknown = run_cli(recorded, "replay", "00000000-0000-4000-8000-000000000000")
    assert unknown.exit_code == 1 and "no programme" in unknown.output
    both = run_cli(recorded, "replay", programme_id, "--version", "2", "--as-of",
                   "2026-01-01T00:00:00Z")
    assert both.exit_code == 2
    naive = run_cli(recorded, "replay", programme_id, "--as-of", "2026-01-01T00:00:00")
    assert naive.exit_code == 2 and "offset" in naive.output
    beyond = run_cli(recorded, "replay", programme_id, "--version", "99")
    assert beyond.exit_code == 1


def test_replays_and_exports_are_in_the_access_log(recorded, store_sql, tmp_path):
    programme_id = _programme(store_sql)
    run_cli(recorded, "replay", programme_id, "--version", "2")
    run_cli(recorded, "export", "--output", str(tmp_path / "x.jsonl"))
    rows = store_sql.sql("SELECT action, route, programme_id, token_label FROM access_log "
                         "WHERE action = 'read' ORDER BY entry_id")
    assert [(r[0], r[1]) for r in rows] == [("read", "traction audit replay"),
                                            ("read", "traction audit export")]
    assert rows[0][2] == programme_id
    assert rows[0][3].startswith("command line")


def test_replay_with_a_clinic_takes_that_clinics_own_programme_id(pristine, store_sql):
    # Clinic B starts a programme under clinic A's programme id: stored under an
    # alias, replayed by B's id with --clinic, or by the stored id the log shows.
    from tests import builders as b

    programme_id = _programme(store_sql)
    started = pristine.client.post(
        f"/v1/clinics/clinic-b/programmes/{programme_id}/events",
        json={"events": [b.started()]}, headers=pristine.tokens.writer_b)
    assert started.status_code == 201, started.json
    theirs = json.loads(run_cli(pristine.url, "replay", "--clinic", "clinic-b", programme_id,
                                "--json").stdout)
    assert theirs["clinic_id"] == "clinic-b" and theirs["version"] == 1
    assert theirs["clinic_programme_id"] == programme_id != theirs["programme_id"]
    stored = run_cli(pristine.url, "replay", theirs["programme_id"])
    assert f"of clinic-b (the clinic's {programme_id}): version 1 of 1" in stored.stdout
    ours = json.loads(run_cli(pristine.url, "replay", "--clinic", "clinic-a", programme_id,
                              "--json").stdout)
    assert (ours["clinic_id"], ours["programme_id"], ours["latest_version"]) == (
        "clinic-a", programme_id, 8)
    elsewhere = run_cli(pristine.url, "replay", "--clinic", "clinic-c", programme_id)
    assert elsewhere.exit_code == 1 and "no programme" in elsewhere.output
