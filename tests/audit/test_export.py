"""`traction audit export` writes the log as JSON Lines that verify offline,
without the database, and stop verifying once any line is edited."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

from tests.audit.conftest import EVENTS, KEY, OTHER_KEY, run_cli


def export(url: str, path: Path, *args: str, key: str | None = KEY) -> list[dict]:
    result = run_cli(url, "export", "--output", str(path), *args, key=key)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in path.read_text().splitlines()]


def verify_offline(path: Path, key: str | None = KEY, **options: Any) -> tuple[int, dict]:
    # No TRACTION_DATABASE_URL that works: the check must not need the store.
    result = run_cli("sqlite:////nonexistent/dir/none.sqlite", "verify", "--export", str(path),
                     "--json", key=key, **options)
    return result.exit_code, json.loads(result.stdout)


def rewrite_line(path: Path, position: int, edit) -> None:
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        record = json.loads(line)
        if record.get("position") == position and record["kind"] in ("event", "link"):
            edit(record)
            lines[index] = json.dumps(record, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")


def test_a_whole_log_export_verifies_offline(recorded, tmp_path):
    path = tmp_path / "log.jsonl"
    records = export(recorded, path)
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "header" and kinds[-1] == "end"
    events = [r for r in records if r["kind"] == "event"]
    assert [e["position"] for e in events] == list(range(1, EVENTS + 1))
    assert events[0]["previous_hash"] == "0" * 64
    assert all(b["previous_hash"] == a["chain_hash"] for a, b in zip(events, events[1:],
                                                                        strict=False))
    assert events[0]["type"] == "ProgrammeStarted" and events[0]["data"]["patient_ref"]
    # The export checkpointed the head it verified, and carries the checkpoint.
    assert records[-2]["kind"] == "checkpoint" and records[-2]["position"] == EVENTS

    status, report = verify_offline(path)
    assert status == 0 and report["ok"], report
    assert report["events_checked"] == EVENTS
    assert report["head"]["chain_hash"] == events[-1]["chain_hash"]


EDITS = {
    "readable data": lambda r: r["data"].update(duration_minutes=45)
    if "duration_minutes" in r["data"] else r["data"].update(pain_nrs=0, reason="x"),
    "recorded_by": lambda r: r.update(recorded_by="someone.else"),
    "stored state": lambda r: r["stored"].update(state=base64.b64encode(
        base64.b64decode(r["stored"]["state"]).replace(b"physio.anna", b"physio.bnna")
    ).decode()),
    "clinic": lambda r: r.update(clinic_id="clinic-c"),
    "record time": lambda r: r.update(recorded_at="2020-01-01T00:00:00+00:00"),
    "chain hash": lambda r: r.update(chain_hash="0" * 64),
}


def test_editing_one_line_of_an_export_fails_verification_there(recorded, tmp_path):
    original = tmp_path / "log.jsonl"
    export(recorded, original)
    for name, edit in EDITS.items():
        path = tmp_path / f"edited {name}.jsonl"
        shutil.copy(original, path)
        rewrite_line(path, 12, edit)
        status, report = verify_offline(path)
        assert status == 1, name
        assert (report["failure"]["kind"], report["failure"]["position"]) == ("changed", 12), \
            name


def test_dropping_or_cutting_lines_of_an_export_is_seen(recorded, tmp_path):
    path = tmp_path / "log.jsonl"
    export(recorded, path)
    lines = path.read_text().splitlines()

    dropped = tmp_path / "dropped.jsonl"
    dropped.write_text("\n".join(line for line in lines
                                 if json.loads(line).get("position") != 12
                                 or json.loads(line)["kind"] != "event") + "\n")
    status, report = verify_offline(dropped)
    assert (status, report["failure"]["kind"], report["failure"]["position"]) == (1, "missing", 12)

    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-6]) + "\n")
    status, report = verify_offline(cut)
    assert status == 1 and report["failure"]["kind"] == "truncated"


def test_a_clinic_export_carries_only_links_for_other_clinics_and_verifies(
        recorded, tmp_path):
    path = tmp_path / "clinic-a.jsonl"
    records = export(recorded, path, "--clinic", "clinic-a")
    events = [r for r in records if r["kind"] == "event"]
    links = [r for r in records if r["kind"] == "link"]
    assert events and links and len(events) + len(links) == EVENTS
    assert {e["clinic_id"] for e in events} == {"clinic-a"}
    assert all(set(link) == {"kind", "position", "previous_hash", "chain_hash"}
               for link in links)
    assert "clinic-b" not in path.read_text()  # nothing of the other clinic

    status, report = verify_offline(path)
    assert status == 0 and report["ok"], report
    assert report["events_checked"] == len(events)
    assert any("taken as stated" in warning for warning in report["warnings"])

    # A link that no longer joins its neighbours is seen.
    rewrite_line(path, links[2]["position"],
                 lambda r: r.update(previous_hash="1" * 64))
    status, report = verify_offline(path)
    assert (status, report["failure"]["position"]) == (1, links[2]["position"])

    assert run_cli(recorded, "export", "--clinic", "ghost-clinic").exit_code == 1


def test_export_of_a_broken_store_says_so(recorded, store_sql, tmp_path):
    store_sql.change_one_byte(5)
    path = tmp_path / "log.jsonl"
    result = run_cli(recorded, "export", "--output", str(path))
    assert result.exit_code == 1
    assert "BROKEN at position 5" in result.stderr
    status, report = verify_offline(path)
    assert (status, report["failure"]["position"]) == (1, 5)


def test_an_export_checks_its_checkpoints_signatures(recorded, tmp_path):
    path = tmp_path / "log.jsonl"
    export(recorded, path)
    status, report = verify_offline(path, key=OTHER_KEY)
    # Signed by a key this host does not hold: forged, or a key left out on rotation.
    assert status == 1 and report["failure"]["kind"] == "bad_checkpoint"
    assert verify_offline(path, key=OTHER_KEY, previous=KEY)[0] == 0
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        if json.loads(line)["kind"] == "checkpoint":
            lines[index] = line.replace('"signed_at":"2', '"signed_at":"1', 1)
    forged = tmp_path / "forged.jsonl"
    forged.write_text("\n".join(lines) + "\n")
    status, report = verify_offline(forged)
    assert status == 1 and report["failure"]["kind"] == "bad_checkpoint"
