"""R5: an event row changed, deleted, inserted or reordered by hand (SQL
straight at the store) is reported at the right position, and how, by both
`traction audit verify` and `GET /v1/audit/verify`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.audit.conftest import (
    EVENTS,
    OTHER_KEY,
    StoreSQL,
    auditor_client,
    cli_verify,
    run_cli,
)
from tests.audit.history import record_programmes
from tests.stores import initialise


def _edit_then_rechain(store: StoreSQL) -> None:
    store.change_one_byte(10)
    store.rechain(10)


def _delete_then_renumber(store: StoreSQL) -> None:
    store.delete(10)
    store.shift(11, -1)


#: What was done to the stored log -> (how it is reported, at which position).
TAMPERING: dict[str, tuple[Callable[[StoreSQL], object], str, int]] = {
    "one byte of one event changed": (lambda s: s.change_one_byte(10), "changed", 10),
    "an entry deleted": (lambda s: s.delete(10), "missing", 10),
    "an event deleted, its ledger entry left": (lambda s: s.delete_event_only(10),
                                                "missing", 10),
    "an entry deleted, the later ones renumbered": (_delete_then_renumber, "missing", 10),
    "an entry inserted, the later ones renumbered": (lambda s: s.insert_shifting(10),
                                                     "inserted", 10),
    "an event appended with no ledger entry": (lambda s: s.append_event_without_ledger(),
                                               "missing", EVENTS + 1),
    "two events swapped": (lambda s: s.swap_events(10, 20), "reordered", 10),
    "two whole entries swapped": (lambda s: s.swap_entries(10, 20), "reordered", 10),
    "two neighbouring entries swapped": (lambda s: s.swap_entries(10, 11), "reordered", 10),
    "the tail truncated": (lambda s: s.truncate(EVENTS - 3), "truncated", EVENTS - 2),
    "an edit hidden by recomputing the chain": (_edit_then_rechain, "rewritten", EVENTS),
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_tampering_is_reported_at_its_position(recorded, store_sql, client, tokens,
                                               tampering):
    before = cli_verify(recorded)
    assert before["ok"] and before["events_checked"] == EVENTS
    assert before["checkpoints"]["written"]["position"] == EVENTS  # signed the head

    tamper, kind, position = TAMPERING[tampering]
    tamper(store_sql)

    report = cli_verify(recorded)
    assert not report["ok"]
    assert (report["failure"]["kind"], report["failure"]["position"]) == (kind, position), \
        report["failure"]
    over_http = client.get("/v1/audit/verify", headers=tokens.auditor)
    assert over_http.status_code == 200
    assert over_http.json["ok"] is False
    assert over_http.json["failure"] == report["failure"]
    assert over_http.json["events_checked"] == report["events_checked"]


def test_an_untouched_store_verifies(recorded, client, tokens):
    result = run_cli(recorded, "verify")
    assert result.exit_code == 0
    assert f"ok: {EVENTS} events verified; head at position {EVENTS}" in result.stdout
    report = client.get("/v1/audit/verify", headers=tokens.auditor).json
    assert report["ok"] is True and report["failure"] is None
    assert report["events_checked"] == EVENTS
    assert report["head"]["position"] == EVENTS


def test_the_human_report_names_the_break(recorded, store_sql):
    store_sql.change_one_byte(7)
    result = run_cli(recorded, "verify")
    assert result.exit_code == 1
    assert "BROKEN at position 7: changed" in result.stdout
    assert "6 events verified before it" in result.stdout


def test_without_a_key_verify_cannot_say_the_log_is_whole(recorded, store_sql):
    store_sql.truncate(EVENTS - 3)
    result = run_cli(recorded, "verify", key=None)
    assert result.exit_code == 1
    assert "NOT SHOWN WHOLE" in result.stdout
    assert "TRACTION_CHECKPOINT_KEY is not set" in result.stdout
    with auditor_client(recorded) as (client, auditor):  # an app with no key
        report = client.get("/v1/audit/verify", headers=auditor).json
    assert report["ok"] is False and report["failure"] is None
    assert "TRACTION_CHECKPOINT_KEY is not set" in report["unverifiable"]
    assert report["checkpoints"]["key_configured"] is False
    assert report["checkpoints"]["written"] is None

    # Asked for the chain alone, it checks the chain alone, and says so.
    chain_only = run_cli(recorded, "verify", "--no-checkpoints", key=None)
    assert chain_only.exit_code == 0, chain_only.output
    assert "(the chain alone)" in chain_only.stdout
    assert "truncated tail" in chain_only.stderr


def test_checkpoints_are_written_once_per_new_head_and_checked(recorded, store_sql):
    first = cli_verify(recorded)
    assert first["checkpoints"]["written"]["position"] == EVENTS
    again = cli_verify(recorded)
    assert again["checkpoints"]["written"] is None  # the head has not moved
    assert again["checkpoints"]["authenticated"] == 1

    # A key that did not sign the checkpoint cannot vouch for it: an error, not a skip.
    other = cli_verify(recorded, key=OTHER_KEY)
    assert other["failure"]["kind"] == "bad_checkpoint"
    assert "a key this host does not hold" in other["failure"]["detail"]

    # A checkpoint row altered by hand fails its signature.
    store_sql.sql("UPDATE chain_checkpoints SET position = position - 1")
    forged = cli_verify(recorded)
    assert forged["failure"]["kind"] == "bad_checkpoint"


def test_checkpoint_command_verifies_only_what_is_new(recorded, store_sql):
    result = run_cli(recorded, "checkpoint")
    assert result.exit_code == 0, result.output
    line = result.stdout.strip().splitlines()[-1]
    assert f'"position":{EVENTS}' in line and '"signature":"v2:' in line
    assert "no new events" in run_cli(recorded, "checkpoint").stderr

    record_programmes(recorded, programmes=1, length=5, seed=2)
    result = run_cli(recorded, "checkpoint")
    assert result.exit_code == 0
    assert "verified 5 new events" in result.stderr
    assert f'"position":{EVENTS + 5}' in result.stdout

    # An edit after the latest checkpoint stops the next one.
    record_programmes(recorded, programmes=1, length=3, seed=3)
    store_sql.change_one_byte(EVENTS + 7)
    result = run_cli(recorded, "checkpoint")
    assert result.exit_code == 1
    assert f"BROKEN at position {EVENTS + 7}: changed" in result.stdout


def test_checkpoint_command_needs_the_key_and_the_log(recorded):
    result = run_cli(recorded, "checkpoint", key=None)
    assert result.exit_code == 1
    assert "TRACTION_CHECKPOINT_KEY is not set" in result.output
    result = run_cli(recorded, "checkpoint", log=None)
    assert result.exit_code == 1
    assert "TRACTION_CHECKPOINT_LOG is not set" in result.output


def test_an_empty_store_verifies(store_url, tmp_path):
    report = cli_verify(store_url, log=tmp_path / "checkpoints.jsonl")
    assert report["ok"] and report["events_checked"] == 0 and report["head"] is None


@pytest.mark.postgres
def test_the_session_time_zone_does_not_change_the_verdict(postgres_url, monkeypatch,
                                                          tmp_path):

    initialise(postgres_url)
    monkeypatch.setenv("PGTZ", "America/New_York")  # the writers' sessions
    record_programmes(postgres_url)
    for zone in ("America/New_York", "Asia/Kolkata", "UTC"):
        monkeypatch.setenv("PGTZ", zone)
        report = cli_verify(postgres_url, log=tmp_path / "checkpoints.jsonl")
        assert report["ok"] and report["events_checked"] == EVENTS, (zone, report["failure"])
