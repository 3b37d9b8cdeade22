"""GET /v1/audit/events (the global log) and GET /v1/audit/verify over HTTP."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.audit.conftest import EVENTS

ENDPOINTS = ("/v1/audit/events", "/v1/audit/verify")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_only_auditors_may_call_them(client, tokens, recorded, path):
    assert client.get(path, headers=tokens.auditor).status_code == 200
    for role in ("writer_a", "viewer_a", "viewer_all", "admin"):
        response = client.get(path, headers=getattr(tokens, role))
        assert response.status_code == 403, role
        assert response.content_type == "application/problem+json"
    assert client.get(path).status_code == 401


def test_the_global_log_pages_through_every_event_in_position_order(client, tokens,
                                                                    recorded, store_sql):
    seen, after = [], 0
    while True:
        page = client.get(f"/v1/audit/events?after={after}&limit=10", headers=tokens.auditor)
        assert page.status_code == 200
        seen += page.json["events"]
        if page.json["next"] is None:
            break
        assert page.json["next"] == seen[-1]["position"]
        after = page.json["next"]
    assert [e["position"] for e in seen] == list(range(1, EVENTS + 1))  # gap-free

    histories = {}
    for item in seen:
        key = (item["clinic_id"], item["programme_id"])
        if key not in histories:
            history = client.get(f"/v1/clinics/{key[0]}/programmes/{key[1]}/events",
                                 headers=tokens.auditor).json["events"]
            histories[key] = {e["version"]: e for e in history}
        expected = histories[key][item["version"]]
        for name in ("event_id", "type", "version", "position", "occurred_at",
                     "recorded_by", "data"):
            assert item[name] == expected[name], name
        assert (datetime.fromisoformat(item["recorded_at"])
                == datetime.fromisoformat(expected["recorded_at"]))
        assert item["chain_hash"] == store_sql.ledger(item["position"])[9]
    assert {item["clinic_id"] for item in seen} == {"clinic-a", "clinic-b"}


def test_the_global_log_validates_its_query(client, tokens, recorded):
    assert client.get("/v1/audit/events?limit=1001", headers=tokens.auditor).status_code == 422
    assert client.get("/v1/audit/events?after=-1", headers=tokens.auditor).status_code == 422
    full = client.get("/v1/audit/events?limit=1000", headers=tokens.auditor).json
    assert len(full["events"]) == EVENTS and full["next"] is None
    beyond = client.get(f"/v1/audit/events?after={EVENTS}", headers=tokens.auditor).json
    assert beyond == {"events": [], "next": None}


def test_reads_of_the_global_log_are_in_the_access_log(client, tokens, recorded):
    client.get("/v1/audit/events?after=5&limit=7", headers=tokens.auditor)
    entries = client.get("/v1/audit/access-log?limit=1000",
                         headers=tokens.auditor).json["entries"]
    reads = [e for e in entries if e["route"] == "/v1/audit/events"]
    assert len(reads) == 1
    assert reads[0]["action"] == "read"
    assert reads[0]["token_id"] == tokens.auditor["X-Token-Id"]
    assert "after=5" in reads[0]["detail"]


def test_the_global_log_shows_a_damaged_event_rather_than_failing(client, tokens,
                                                                  recorded, store_sql):
    store_sql.sql("UPDATE stored_events SET state = %s WHERE {pos} = 3", (b"not json",))
    events = client.get("/v1/audit/events", headers=tokens.auditor).json["events"]
    damaged = events[2]
    assert damaged["position"] == 3 and damaged["data"] is None
    assert damaged["chain_hash"] == store_sql.ledger(3)[9]
    assert events[3]["data"] is not None
    report = client.get("/v1/audit/verify", headers=tokens.auditor).json
    assert (report["failure"]["kind"], report["failure"]["position"]) == ("changed", 3)
