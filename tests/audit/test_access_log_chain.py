"""The access log is chained (an edit, deletion or insertion by SQL is found by
verify, over the command line and HTTP), and never keeps what a caller typed
into a query string: no token, no made-up parameter, no free text."""

from __future__ import annotations

import pytest

from tests.audit.conftest import cli_verify, run_cli

PROGRAMMES = "/v1/clinics/clinic-a/programmes"


def _reads(client, tokens, count: int = 3) -> list[dict]:
    for after in range(count):
        client.get(f"/v1/audit/events?after={after}&limit=5", headers=tokens.auditor)
    return client.get("/v1/audit/access-log?limit=1000", headers=tokens.auditor).json["entries"]


def test_every_new_entry_is_chained_and_verify_checks_the_chain(client, tokens, recorded):
    entries = _reads(client, tokens)
    assert entries and all(e["chain_hash"] for e in entries)
    assert len({e["chain_hash"] for e in entries}) == len(entries)
    report = cli_verify(recorded)
    assert report["ok"], report
    # Every entry: the clinics and tokens made, and the reads.
    assert report["access_log"] == {"entries_checked": len(entries), "failure": None}


#: What an intruder did to the access log -> the entry verify stops at (by index).
EDITS = {
    "an entry's detail changed": (
        lambda sql, ids: sql.sql("UPDATE access_log SET detail = 'nothing' WHERE entry_id = %s",
                                 (ids[1],)), 1),
    "an entry's reader changed": (
        lambda sql, ids: sql.sql("UPDATE access_log SET token_label = 'someone else' "
                                 "WHERE entry_id = %s", (ids[1],)), 1),
    "an entry deleted": (
        lambda sql, ids: sql.sql("DELETE FROM access_log WHERE entry_id = %s", (ids[1],)), 2),
    "an entry inserted without a hash": (
        lambda sql, ids: sql.sql("INSERT INTO access_log (entry_id, at, action) "
                                 "VALUES (%s, 'x', 'read')", (ids[-1] + 10,)), None),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_access_log_fails_verification(client, tokens, recorded, store_sql, edit):
    entries = _reads(client, tokens)
    ids = [e["entry_id"] for e in entries]
    change, index = EDITS[edit]
    change(store_sql, ids)
    expected = ids[-1] + 10 if index is None else ids[index]

    result = run_cli(recorded, "verify", "--json")
    assert result.exit_code == 1
    report = cli_verify(recorded)
    assert report["ok"] is False and report["failure"] is None
    assert report["access_log"]["failure"]["entry_id"] == expected, report["access_log"]
    assert report["checkpoints"]["written"] is None  # nothing is signed over a broken log
    human = run_cli(recorded, "verify")
    assert f"BROKEN access log at entry {expected}" in human.stdout
    over_http = client.get("/v1/audit/verify", headers=tokens.auditor).json
    assert over_http["ok"] is False
    assert over_http["access_log"]["failure"]["entry_id"] == expected


def test_a_query_string_is_never_copied_into_the_access_log(client, tokens, recorded):
    token = tokens.auditor["Authorization"].removeprefix("Bearer ")
    secret_name = "ssn-123-45-6789"
    client.get(f"/v1/audit/events?after=5&limit=7&access_token={token}&{secret_name}=x",
               headers=tokens.auditor)
    client.get(f"/v1/audit/events?after={token}", headers=tokens.auditor)  # 422, still logged
    client.get(f"{PROGRAMMES}?status=active&cursor={token}&limit=Jane%20Doe",
               headers=tokens.viewer_all)
    entries = client.get("/v1/audit/access-log?limit=1000", headers=tokens.auditor).json
    details = [e["detail"] for e in entries["entries"] if e["action"] == "read"]
    assert details[-3:] == [
        "status 200; after=5 limit=7 2 other parameter(s) not recorded",
        "status 422; after=(not recorded)",
        "status 422; status=active cursor=(not recorded) limit=(not recorded)",
    ]
    everything = str(entries)
    assert token not in everything and token.split("_", 2)[2] not in everything
    assert secret_name not in everything and "Jane" not in everything


def test_cutting_off_the_newest_entries_is_seen_through_the_checkpoint_log(
        client, tokens, recorded, store_sql, pristine):
    entries = _reads(client, tokens)
    written = run_cli(recorded, "checkpoint")
    assert written.exit_code == 0, written.output
    line = pristine.checkpoint_log.read_text().splitlines()[-1]
    assert f'"access_log_head":{{"entry_id":{entries[-1]["entry_id"]},' in line

    # The newest reads deleted: the chain of what is left is still whole...
    store_sql.sql("DELETE FROM access_log WHERE entry_id >= %s", (entries[-2]["entry_id"],))
    report = cli_verify(recorded)
    # ...but the checkpoint log remembers the head it had.
    assert report["access_log"]["failure"]["entry_id"] == entries[-2]["entry_id"]
    assert "newest entries were deleted" in report["access_log"]["failure"]["detail"]
    assert not report["ok"]
