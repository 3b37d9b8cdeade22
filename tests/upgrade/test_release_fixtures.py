"""Stores written by release 0.1.0, opened, migrated and checked by this release.

tests/fixtures/release-0.1.0/ holds a SQLite store and a PostgreSQL dump that
release 0.1.0 wrote, with what 0.1.0 answered about them (expected.json).
Every release must: migrate them; replay every programme to the same state;
show the same history (with only the documented additions of later event
versions); verify the same chain to the same head; rebuild the read models to
the same numbers; accept the old tokens; and record new events on old
programmes at the next version and position.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
import sqlalchemy
from click.testing import CliRunner

from projections.store import DEFAULT_PROJECTION
from projections.summaries import STATE_FORMAT
from service.audit.rewrites import recorded_rewrites
from service.bootstrap import Components
from service.cli import main
from service.http.app import create_app
from service.storage import migrations
from service.storage.stores import parse_database_url
from tests import builders as b
from tests.stores import components_at, rebuild_at

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "release-0.1.0"
POSTGRES_URL = os.environ.get("TRACTION_TEST_POSTGRES_URL", "")
#: The key 0.1.0 signed the fixture's checkpoints with: too weak to sign today, so
#: it verifies them as a previous key while a new one signs.
KEY = json.loads((FIXTURE / "sqlite" / "tokens.json").read_text())["checkpoint_key"]
#: Test data, not a secret: the key that signs from this release on.
NEW_KEY = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"


def audit_env(upgraded_or_url: Any, log: Path) -> dict[str, str]:
    url = getattr(upgraded_or_url, "url", upgraded_or_url)
    return {"TRACTION_DATABASE_URL": url, "TRACTION_CHECKPOINT_KEY": NEW_KEY,
            "TRACTION_CHECKPOINT_PREVIOUS_KEYS": KEY, "TRACTION_CHECKPOINT_LOG": str(log)}


def _sqlite_copy(tmp: Path) -> str:
    target = tmp / "traction.sqlite"
    shutil.copyfile(FIXTURE / "sqlite" / "traction.sqlite", target)
    return f"sqlite:///{target}"


def _postgres_restore() -> Iterator[str]:
    """The dump restored, with psql as an operator would, into a database of its own."""
    from tests.conftest import _postgres_base_url

    base = parse_database_url(_postgres_base_url())
    name = f"traction_fixture_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", base.pg_host, "-p",
             str(base.pg_port), "-U", base.pg_user, "-d", name,
             "-f", str(FIXTURE / "postgres" / "dump.sql")],
            check=True, capture_output=True, env={**os.environ, "PGPASSWORD": base.pg_password})
        yield f"postgresql://{base.pg_user}@{base.pg_host}:{base.pg_port}/{name}"
    finally:
        with psycopg.connect(base.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Upgraded:
    """A fixture store of one kind, migrated, with the service's parts and an app over it."""

    def __init__(self, kind: str, url: str, migration_output: str, dry_run_output: str,
                 checkpoint_log: Path) -> None:
        self.kind = kind
        self.checkpoint_log = checkpoint_log
        self.env = audit_env(url, checkpoint_log)
        self.url = url
        self.expected: dict[str, Any] = json.loads(
            (FIXTURE / kind / "expected.json").read_text())
        self.tokens: dict[str, Any] = json.loads(
            (FIXTURE / kind / "tokens.json").read_text())["tokens"]
        self.migration_output = migration_output
        self.dry_run_output = dry_run_output
        self.components: Components = components_at(
            url, checkpoint_key=NEW_KEY, checkpoint_previous_keys=(KEY,),
            checkpoint_log=checkpoint_log)
        # 0.1.0 stored personal fields in the clear: migrate sealed them, and said so.
        [self.rewrite] = recorded_rewrites(self.components.database)
        self.app = create_app(self.components)
        self.client = self.app.test_client()

    def get(self, path: str, token: str, **query: Any) -> Any:
        return self.client.get(path, query_string=query,
                               headers={"Authorization": f"Bearer {self.tokens[token]['token']}"})


def _migrated(kind: str, url: str, checkpoint_log: Path) -> Upgraded:
    env = audit_env(url, checkpoint_log)
    refused = CliRunner().invoke(main, ["clinics", "list"], env=env)
    assert refused.exit_code == 1  # a 0.1.0 store is refused until it is migrated
    assert "written by release 0.1.0" in refused.output and "traction migrate" in refused.output
    dry_run = CliRunner().invoke(main, ["migrate", "--dry-run"], env=env)
    assert dry_run.exit_code == 0, dry_run.output
    migrated = CliRunner().invoke(main, ["migrate"], env=env)
    assert migrated.exit_code == 0, migrated.output
    return Upgraded(kind, url, migrated.output, dry_run.output, checkpoint_log)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                               marks=pytest.mark.postgres)])
def upgraded(request, tmp_path_factory) -> Iterator[Upgraded]:
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("fixture")
        store = _migrated("sqlite", _sqlite_copy(folder), folder / "checkpoints.jsonl")
        yield store
        store.components.close()
        return
    restore = _postgres_restore()
    url = next(restore)
    store = _migrated("postgres", url,
                      tmp_path_factory.mktemp("fixture") / "checkpoints.jsonl")
    try:
        yield store
    finally:
        store.components.close()
        restore.close()


def same(expected: Any, actual: Any, where: str = "") -> None:
    """`actual` holds everything `expected` does, equal (later releases may add fields)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert key in actual, f"{where}/{key} is missing"
            same(value, actual[key], f"{where}/{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            same(e, a, f"{where}/{index}")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def clinic_numbers(expected: dict[str, Any]) -> dict[int, int]:
    """Each event's number among its clinic's events, counted from 0.1.0's global log:
    what a clinic's routes show as its position since migration 0006."""
    counts: dict[str, int] = {}
    numbers = {}
    for entry in sorted(expected["positions"], key=lambda entry: entry["position"]):
        counts[entry["clinic_id"]] = counts.get(entry["clinic_id"], 0) + 1
        numbers[entry["position"]] = counts[entry["clinic_id"]]
    return numbers


def as_a_clinic_sees(value: Any, numbers: dict[int, int]) -> Any:
    """A 0.1.0 answer of a clinic's route with its positions as the clinic's numbers."""
    if isinstance(value, dict):
        return {key: numbers[item] if key in ("position", "held_since_position")
                and isinstance(item, int) else as_a_clinic_sees(item, numbers)
                for key, item in value.items()}
    if isinstance(value, list):
        return [as_a_clinic_sees(item, numbers) for item in value]
    return value


# ---- migrating ----------------------------------------------------------------


def test_migrate_lists_then_runs_the_steps_and_leaves_the_store_current(upgraded):
    assert "is written by release 0.1.0" in upgraded.dry_run_output
    assert "would run 0001" in upgraded.dry_run_output
    assert "would run 0002" in upgraded.dry_run_output
    assert "would seal every personal field recorded in the clear" in upgraded.dry_run_output
    assert "ran 0001" in upgraded.migration_output and "ran 0002" in upgraded.migration_output
    assert "ran 0006" in upgraded.migration_output
    # 0.1.0 built its read models in state format 1; this release's differs, so
    # migrate rebuilds them beside the old ones (as the dry run said it would).
    if STATE_FORMAT != 1:
        assert (f"would rebuild the dashboards read models (format 1 -> {STATE_FORMAT})"
                in upgraded.dry_run_output)
        assert "rebuilt the dashboards read models: v2" in upgraded.migration_output
    found = migrations.status(upgraded.components.store)
    assert found.current and found.revision == found.head
    again = CliRunner().invoke(main, ["migrate"], env={"TRACTION_DATABASE_URL": upgraded.url})
    assert again.exit_code == 0 and "no schema steps to run" in again.output


def test_the_ledger_s_clinic_index_of_0_1_0_is_dropped_and_clinic_counts_still_hold(upgraded):
    # 0.1.0 made event_ledger_clinic_idx on (clinic_id, position); migration 0009
    # drops it, and a clinic's numbers are read by other indexes, as before.
    store = upgraded.components.store
    with migrations._connection(store) as connection:
        indexes = {index["name"] for index in sqlalchemy.inspect(connection).get_indexes(
            "event_ledger", schema=store.pg_schema if store.is_postgres else None)}
    assert "event_ledger_clinic_idx" not in indexes
    assert "event_ledger_clinic_position_idx" in indexes
    numbers = clinic_numbers(upgraded.expected)
    recorder = upgraded.components.programmes.recorder
    for entry in upgraded.expected["positions"]:
        clinic, position = entry["clinic_id"], entry["position"]
        assert recorder.clinic_positions(clinic, [position]) == {position: numbers[position]}
        assert recorder.clinic_position_at(clinic, position) == numbers[position]


def test_sqlite_s_ledger_key_on_programme_and_version_is_dropped_and_rows_read_by_position(
        upgraded):
    # 0.1.0 made UNIQUE (programme_id, version); migration 0010 drops it on SQLite
    # (the events' key), and a programme's entries are found by position.
    store = upgraded.components.store
    with migrations._connection(store) as connection:
        keys = {tuple(key["column_names"]) for key in sqlalchemy.inspect(
            connection).get_unique_constraints(
                "event_ledger", schema=store.pg_schema if store.is_postgres else None)}
    assert (("programme_id", "version") in keys) is store.is_postgres
    ledger = upgraded.components.programmes.ledger
    for programme_id in upgraded.expected["programmes"]:
        want = sorted((p["position"], p["version"]) for p in upgraded.expected["positions"]
                      if p["programme_id"] == programme_id)
        assert want
        assert [(e.position, e.version) for e in ledger.entries_of_programme(
            UUID(programme_id))] == want


# ---- the record -----------------------------------------------------------------


def test_every_programme_replays_to_the_same_state_at_every_version(upgraded):
    programmes = upgraded.components.programmes
    for programme_id, expected in upgraded.expected["programmes"].items():
        pid = UUID(programme_id)
        assert programmes.programme(expected["clinic_id"], pid).state() == expected["state"]
        for version, state in expected["state_at_version"].items():
            replayed = programmes.programme(expected["clinic_id"], pid, version=int(version))
            assert replayed.state() == state, (expected["key"], version)


def with_later_versions(event: dict[str, Any]) -> dict[str, Any]:
    """A 0.1.0 history item as this release shows it: pain reports (and corrections of
    them) read with the scale they were on, nrs_11 (PainReported and EntryCorrected v2)."""
    data = event["data"]
    if event["type"] == "PainReported":
        data = {**data, "scale": "nrs_11"}
    elif event["type"] == "EntryCorrected" and "pain_nrs" in data["data"]:
        data = {**data, "data": {**data["data"], "scale": "nrs_11"}}
    return {**event, "data": data, "schema_version": 1, "newer_release": False}


def test_every_history_is_the_same_with_only_the_later_versions_added(upgraded):
    for programme_id, expected in upgraded.expected["programmes"].items():
        history = upgraded.get(f"/v1/clinics/{expected['clinic_id']}/programmes/"
                               f"{programme_id}/events", f"writer-{expected['clinic_id']}")
        assert history.status_code == 200
        want = as_a_clinic_sees(expected["history"], clinic_numbers(upgraded.expected))
        assert history.json == {**want, "events": [with_later_versions(e)
                                                   for e in want["events"]]}


def test_the_global_log_holds_the_same_entries_and_chain(upgraded):
    log = []
    after = 0
    while True:
        page = upgraded.get("/v1/audit/events", "auditor", after=after, limit=100).json
        log.extend(page["events"])
        if page["next"] is None:
            break
        after = page["next"]
    assert [(e["position"], e["event_id"], e["type"], e["programme_id"], e["clinic_id"],
             e["version"]) for e in log] == [
        (p["position"], p["event_id"], p["type"], p["programme_id"], p["clinic_id"],
         p["version"]) for p in upgraded.expected["positions"]]
    # The chain is 0.1.0's up to the first event migrate sealed, and rehashed from
    # there, to the new head its signed statement names (the old head too).
    first = upgraded.rewrite.first_position
    assert [e["chain_hash"] for e in log[:first - 1]] == [
        p["chain_hash"] for p in upgraded.expected["positions"][:first - 1]]
    assert all(e["chain_hash"] != p["chain_hash"] for e, p in zip(
        log[first - 1:], upgraded.expected["positions"][first - 1:], strict=True))
    assert upgraded.rewrite.old_head_hash == upgraded.expected["positions"][-1]["chain_hash"]
    assert upgraded.rewrite.new_head_hash == log[-1]["chain_hash"]


def test_the_chain_verifies_to_the_same_head_and_its_signed_checkpoints(upgraded):
    result = CliRunner().invoke(main, ["audit", "verify", "--json"], env=upgraded.env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    expected = upgraded.expected["audit_verify_cli"]
    assert report["ok"] and report["events_checked"] == expected["events_checked"] == 201
    # The same head, rehashed when migrate sealed the personal fields: the statement
    # of that rewrite names both hashes, signed, and verify shows it.
    assert report["head"]["position"] == expected["head"]["position"]
    rewrite = upgraded.rewrite
    assert (rewrite.old_head_hash, rewrite.new_head_hash) == (
        expected["head"]["chain_hash"], report["head"]["chain_hash"])
    [shown] = report["rewrites"]
    assert shown["signature_check"] == "valid" and shown["events_sealed"] > 0
    assert shown["head_position"] == 201
    assert any("the log was rewritten" in warning for warning in report["warnings"])
    # 0.1.0's two checkpoints signed the old hashes: the statement keeps them, and a
    # new one is signed at the new head.
    assert len(shown["superseded_checkpoints"]) == 2
    assert report["checkpoints"]["authenticated"] == 1
    assert report["checkpoints"]["latest_authenticated"] == 201


def test_migrate_sealed_every_personal_field_and_left_none_in_clear(upgraded):
    from tests.privacy.raw import store_bytes

    words = set()
    for programme in upgraded.expected["programmes"].values():
        for event in programme["history"]["events"]:
            for name in ("patient_ref", "reason", "description", "notes"):
                value = event["data"].get(name)
                if isinstance(value, str) and event["type"] != "SessionMissed" and \
                        len(value) > 6:
                    words.add(value)
    assert words  # 0.1.0's programmes have patients and free text
    raw = store_bytes(upgraded.url)
    assert [word for word in words if word.encode() in raw] == []
    assert "sealed the personal fields of" in upgraded.migration_output


def test_a_rewrite_statement_altered_in_the_store_fails_verification(upgraded):
    database = upgraded.components.database
    rewrite = upgraded.rewrite
    try:
        with database.transaction() as cursor:
            cursor.execute("UPDATE chain_rewrites SET old_head_hash = %s", ("0" * 64,))
        result = CliRunner().invoke(main, ["audit", "verify", "--json"], env={
            **upgraded.env})
        report = json.loads(result.stdout)
        assert not report["ok"] and report["failure"]["kind"] == "bad_checkpoint"
        assert report["rewrites"][0]["signature_check"] == "invalid"
    finally:
        with database.transaction() as cursor:
            cursor.execute("UPDATE chain_rewrites SET old_head_hash = %s",
                           (rewrite.old_head_hash,))


def test_an_export_of_the_upgraded_store_verifies_offline(upgraded, tmp_path):
    env = upgraded.env
    export = tmp_path / "log.jsonl"
    assert CliRunner().invoke(main, ["audit", "export", "-o", str(export)],
                              env=env).exit_code == 0
    checked = CliRunner().invoke(main, ["audit", "verify", "--export", str(export), "--json"],
                                 env=env)
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["events_checked"] == 201


# ---- read models -----------------------------------------------------------------


def check_read_models(upgraded: Upgraded) -> None:
    expected = upgraded.expected
    numbers = clinic_numbers(expected)
    for clinic_id, dashboard in expected["clinic_dashboards"].items():
        answer = upgraded.get(f"/v1/clinics/{clinic_id}/dashboard", f"viewer-{clinic_id}")
        same(dashboard["body"], answer.json, f"dashboard {clinic_id}")
    same(expected["network_dashboard"]["body"], upgraded.get("/v1/dashboard",
                                                             "viewer-all").json, "network")
    for clinic_id, lists in expected["programme_lists"].items():
        same(as_a_clinic_sees(lists["all"]["body"], numbers),
             upgraded.get(f"/v1/clinics/{clinic_id}/programmes", f"viewer-{clinic_id}").json,
             clinic_id)
    for programme_id, programme in expected["programmes"].items():
        clinic_id = programme["clinic_id"]
        summary = upgraded.get(f"/v1/clinics/{clinic_id}/programmes/{programme_id}/summary",
                               f"viewer-{clinic_id}")
        same(as_a_clinic_sees(programme["summary"]["body"], numbers), summary.json,
             programme["key"])


def test_the_read_models_give_the_same_numbers_as_they_are_and_rebuilt(upgraded):
    read_models = upgraded.components.read_models
    live, position = read_models.live_position(DEFAULT_PROJECTION)
    assert position == 201  # caught up, as 0.1.0 left them or as migrate rebuilt them
    assert read_models.state_format(DEFAULT_PROJECTION, live) == STATE_FORMAT
    check_read_models(upgraded)
    report = rebuild_at(upgraded.url, progress=False, grace=0)
    assert report.position == 201 and report.new_version == live + 1
    assert read_models.live_position(DEFAULT_PROJECTION) == (live + 1, 201)
    check_read_models(upgraded)


# ---- tokens and new events -------------------------------------------------------


def test_the_old_tokens_are_accepted_and_the_revoked_one_refused(upgraded):
    checks = upgraded.expected["token_checks"]
    assert checks["revoked-writer-north-physio"]["status"] == 401
    for name, check in checks.items():
        assert upgraded.get(check["url"], name).status_code == check["status"], name


def test_new_events_on_old_programmes_take_the_next_version_and_position(upgraded):
    expected = next(p for p in upgraded.expected["programmes"].values()
                    if p["key"] == "valley-active")
    programme_id = next(k for k, v in upgraded.expected["programmes"].items() if v is expected)
    version = expected["state"]["version"]
    head = upgraded.expected["positions"][-1]["position"]
    later = datetime.fromisoformat(expected["state"]["last_occurred_at"]) + timedelta(days=1)
    posted = upgraded.client.post(
        f"/v1/clinics/valley-rehab/programmes/{programme_id}/events",
        headers={"Authorization": f"Bearer {upgraded.tokens['writer-valley-rehab']['token']}"},
        json={"event_id": str(uuid.uuid4()), "type": "PainReported",
              "occurred_at": later.isoformat(), "recorded_by": "physio.upgrade",
              "expected_version": version, "data": {"pain_nrs": 3}})
    assert posted.status_code == 201, posted.json
    assert posted.json["version"] == version + 1
    # The clinic's next number (migration 0006 numbered its 0.1.0 events), not the log's.
    in_valley = sum(1 for entry in upgraded.expected["positions"]
                    if entry["clinic_id"] == "valley-rehab")
    assert in_valley < head
    assert posted.json["recorded"][0]["position"] == in_valley + 1
    verified = CliRunner().invoke(main, ["audit", "verify", "--json"], env=upgraded.env)
    assert verified.exit_code == 0 and json.loads(verified.stdout)["events_checked"] == head + 1
    # Sealing 0.1.0's clear fields rehashed the chain: migrate moved 0.1.0's
    # checkpoints into its statement and signed the new head (201) in their place;
    # the next checkpoint links to that one, and both are in the checkpoint log.
    written = json.loads(verified.stdout)["checkpoints"]["written"]
    assert written["position"] == head + 1 and written["signature"].startswith("v2:")
    stored = upgraded.components.checkpoints.all()
    assert written["previous"] == stored[-2].signature and stored[-2].position == 201
    assert stored[-2].chain_hash == upgraded.rewrite.new_head_hash
    assert upgraded.rewrite.superseded_checkpoints  # 0.1.0's, kept in the statement
    logged = [json.loads(line) for line in upgraded.checkpoint_log.read_text().splitlines()]
    assert [line["signature"] for line in logged] == [stored[-2].signature,
                                                      written["signature"]]


def test_the_key_that_signed_0_1_0s_checkpoints_is_too_weak_to_sign_now(upgraded):
    refused = CliRunner().invoke(main, ["audit", "verify"], env={
        **upgraded.env, "TRACTION_CHECKPOINT_KEY": KEY})
    assert refused.exit_code != 0
    assert "TRACTION_CHECKPOINT_PREVIOUS_KEYS" in refused.output
    assert KEY not in refused.output


def test_after_migrating_ids_are_each_clinics_own(upgraded):
    # Migration 0007 made event ids unique per clinic: another clinic may start a
    # programme under a 0.1.0 programme's id and with one of its event ids (201, as
    # for fresh ones), and the 0.1.0 programme is unchanged; the chain still verifies.
    programme_id, theirs = next((k, v) for k, v in upgraded.expected["programmes"].items()
                                if v["clinic_id"] == "valley-rehab")
    used = theirs["history"]["events"][0]["event_id"]
    other = next(name.removeprefix("writer-") for name in upgraded.tokens
                 if name.startswith("writer-") and name != "writer-valley-rehab"
                 and not name.startswith("writer-revoked"))
    posted = upgraded.client.post(
        f"/v1/clinics/{other}/programmes/{programme_id}/events",
        headers={"Authorization": f"Bearer {upgraded.tokens[f'writer-{other}']['token']}"},
        json={**b.started(), "event_id": used})
    assert posted.status_code == 201, posted.json
    assert posted.json["programme_id"] == programme_id and posted.json["clinic_id"] == other
    again = upgraded.get(f"/v1/clinics/valley-rehab/programmes/{programme_id}",
                         "writer-valley-rehab")
    assert again.json["clinic_id"] == "valley-rehab"
    verified = CliRunner().invoke(main, ["audit", "verify", "--json"], env=upgraded.env)
    assert verified.exit_code == 0, verified.output
