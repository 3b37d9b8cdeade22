"""The audit trail fails closed: only a strong key signs; checkpoints chain to
each other and are copied to a file outside the database, so that deleting
events together with the checkpoint rows that cover them is seen; a
checkpoint that cannot be authenticated is an error, never skipped; a rotated
key still verifies what it signed."""

from __future__ import annotations

import json
import stat

import pytest

from tests.audit.conftest import EVENTS, KEY, OTHER_KEY, cli_verify, run_cli
from tests.audit.history import record_programmes


def _checkpoint(url: str) -> dict:
    result = run_cli(url, "checkpoint")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_deleting_the_tail_and_its_checkpoint_rows_is_seen(pristine, store_sql):
    _checkpoint(pristine.url)
    record_programmes(pristine.url, programmes=1, length=5, seed=2)
    _checkpoint(pristine.url)

    # An intruder removes the newest events and every checkpoint row that covers them.
    store_sql.truncate(EVENTS)
    store_sql.sql("DELETE FROM chain_checkpoints")

    report = cli_verify(pristine.url)
    assert not report["ok"]
    assert (report["failure"]["kind"], report["failure"]["position"]) == ("truncated",
                                                                          EVENTS + 1)
    assert report["checkpoints"]["written"] is None  # nothing signed over the shortened log
    assert run_cli(pristine.url, "checkpoint").exit_code == 1


def test_a_checkpoint_row_deleted_from_the_middle_breaks_the_next_ones_link(pristine,
                                                                            store_sql):
    first = _checkpoint(pristine.url)
    record_programmes(pristine.url, programmes=1, length=3, seed=2)
    second = _checkpoint(pristine.url)
    record_programmes(pristine.url, programmes=1, length=3, seed=3)
    third = _checkpoint(pristine.url)
    assert (second["previous"], third["previous"]) == (first["signature"],
                                                       second["signature"])

    store_sql.sql("DELETE FROM chain_checkpoints WHERE position = %s", (second["position"],))
    pristine.checkpoint_log.unlink()  # even with the outside copy lost, the link shows it
    report = cli_verify(pristine.url)
    assert (report["failure"]["kind"], report["failure"]["position"]) == (
        "missing_checkpoint", third["position"])


def test_the_checkpoint_log_is_private_and_holds_every_checkpoint(pristine, store_sql):
    written = [_checkpoint(pristine.url)]
    record_programmes(pristine.url, programmes=1, length=3, seed=2)
    written.append(_checkpoint(pristine.url))
    mode = stat.S_IMODE(pristine.checkpoint_log.stat().st_mode)
    assert mode == 0o600
    lines = [json.loads(line) for line in pristine.checkpoint_log.read_text().splitlines()]
    assert [line["signature"] for line in lines] == [c["signature"] for c in written]
    rows = store_sql.sql("SELECT signature FROM chain_checkpoints ORDER BY position")
    assert [row[0] for row in rows] == [c["signature"] for c in written]


@pytest.mark.parametrize("junk", ["not json", '{"kind":"checkpoint","position":"x"}'])
def test_a_damaged_checkpoint_log_is_an_error(pristine, junk):
    _checkpoint(pristine.url)
    with pristine.checkpoint_log.open("a") as out:
        out.write(junk + "\n")
    report = cli_verify(pristine.url)
    assert report["failure"]["kind"] == "bad_checkpoint"
    assert "line 2 of the checkpoint log" in report["failure"]["detail"]


def test_a_junk_checkpoint_row_at_the_head_is_an_error_not_a_skip(pristine, store_sql):
    store_sql.sql("INSERT INTO chain_checkpoints (position, chain_hash, signed_at, signature) "
                  "VALUES (%s, 'junk', 'junk', 'junk')", (EVENTS + 1000,))
    result = run_cli(pristine.url, "checkpoint")
    assert result.exit_code == 1
    assert "BROKEN at position" in result.stdout and "bad_checkpoint" in result.stdout
    assert "fails its signature" in result.stdout
    assert "no checkpoint was written" in result.stderr
    assert cli_verify(pristine.url)["failure"]["kind"] == "bad_checkpoint"


def test_a_wrong_key_is_an_error(pristine):
    _checkpoint(pristine.url)
    report = cli_verify(pristine.url, key=OTHER_KEY)
    assert not report["ok"] and report["failure"]["kind"] == "bad_checkpoint"
    assert "TRACTION_CHECKPOINT_PREVIOUS_KEYS" in report["failure"]["detail"]


def test_a_rotated_key_still_verifies_what_it_signed(pristine):
    before = _checkpoint(pristine.url)
    record_programmes(pristine.url, programmes=1, length=3, seed=2)

    rotated = cli_verify(pristine.url, key=OTHER_KEY, previous=KEY)
    assert rotated["ok"], rotated["failure"]
    assert rotated["checkpoints"]["authenticated"] == 1
    written = rotated["checkpoints"]["written"]
    assert written["previous"] == before["signature"]  # the new key links to the old key's
    assert written["signature"] != before["signature"]
    # The old key alone cannot vouch for the new key's checkpoint, nor the new alone for the old.
    assert cli_verify(pristine.url, key=KEY)["failure"]["kind"] == "bad_checkpoint"
    assert cli_verify(pristine.url, key=OTHER_KEY)["failure"]["kind"] == "bad_checkpoint"
    assert cli_verify(pristine.url, key=OTHER_KEY, previous=KEY)["ok"]


@pytest.mark.parametrize("weak, why", [
    (" ", "set but blank"),
    ("a-secret", "fewer than the 256"),
    ("release-0.1.0-fixture-checkpoint-key-NOT-A-SECRET", "neither hex nor base64"),
    ("0123456789abcdef" * 2, "holds 128 bits"),
    ("00" * 32, "repeat too much"),
    (KEY[:-2] + " x", "neither hex nor base64"),
])
def test_a_weak_key_is_refused_with_what_to_do(recorded, weak, why):
    for command in ("verify", "checkpoint"):
        result = run_cli(recorded, command, key=weak)
        assert result.exit_code != 0
        assert "TRACTION_CHECKPOINT_KEY is not valid" in result.output
        assert why in result.output and "traction audit new-key" in result.output
        if weak.strip():
            assert weak.strip() not in result.output  # a secret is never echoed


def test_new_key_prints_a_key_that_signs(recorded):
    result = run_cli(recorded, "new-key", key=None)
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert len(key) == 64 and int(key, 16) >= 0
    assert run_cli(recorded, "new-key", key=None).stdout.strip() != key
    report = cli_verify(recorded, key=key)
    assert report["ok"] and report["checkpoints"]["written"]["position"] == EVENTS


def test_the_chain_alone_never_signs_a_checkpoint(pristine, store_sql):
    _checkpoint(pristine.url)
    record_programmes(pristine.url, programmes=1, length=3, seed=2)
    store_sql.truncate(EVENTS + 1)
    store_sql.sql("DELETE FROM chain_checkpoints")
    result = run_cli(pristine.url, "verify", "--json", "--no-checkpoints")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"]  # the chain itself holds...
    assert report["checkpoints"]["written"] is None  # ...but nothing vouches for it
    assert store_sql.sql("SELECT COUNT(*) FROM chain_checkpoints") == [(0,)]
    assert cli_verify(pristine.url)["failure"]["kind"] in ("truncated", "missing_checkpoint")


def test_an_export_checks_the_checkpoint_log_too(pristine, store_sql, tmp_path):
    _checkpoint(pristine.url)
    store_sql.truncate(EVENTS - 2)
    store_sql.sql("DELETE FROM chain_checkpoints")
    result = run_cli(pristine.url, "export", "--output", str(tmp_path / "log.jsonl"))
    assert result.exit_code == 1
    assert "BROKEN" in result.stderr and "truncated" in result.stderr
    assert store_sql.sql("SELECT COUNT(*) FROM chain_checkpoints") == [(0,)]


def test_a_checkpoint_log_that_cannot_be_written_is_an_error(pristine, store_sql, tmp_path):
    unwritable = tmp_path / "no such folder" / "checkpoints.jsonl"
    result = run_cli(pristine.url, "checkpoint", log=unwritable)
    assert result.exit_code == 1
    assert f"cannot append to the checkpoint log {unwritable}" in result.output
    assert "no checkpoint was written" in result.output
    # Nothing half-written: the row is not kept without its line.
    assert store_sql.sql("SELECT COUNT(*) FROM chain_checkpoints") == [(0,)]
    report = cli_verify(pristine.url, log=unwritable)
    assert report["ok"] and report["checkpoints"]["written"] is None
    assert "cannot append" in report["checkpoints"]["write_error"]
