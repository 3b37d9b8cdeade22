"""Managing access: tokens that expire, listing tokens without their secrets (API
and CLI), deactivating a clinic (its tokens stop, its records stay readable to
auditors); and names and labels that cannot spoof what people read (both stores)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from service.cli import main
from service.http.access import REFRESH_SECONDS
from tests import builders as b

SPOOFS = ["North\nclinic-x\tFake Clinic", "Nor\u202eth Physio", "North\u200bPhysio",
          "North\u2066Physio", "\ufeffNorth", "North\u2028Physio", "North\x1b[2JPhysio",
          " North", "North "]


def cli(store_url: str, *args: str):
    return CliRunner().invoke(main, list(args), env={"TRACTION_DATABASE_URL": store_url},
                              catch_exceptions=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---- expiry ---------------------------------------------------------------------------


def test_a_token_with_an_expiry_works_until_then_and_not_after(client, tokens):
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    issued = client.post("/v1/tokens", headers=tokens.admin, json={
        "role": "viewer", "clinic_id": "clinic-a", "label": "short-lived",
        "expires_at": soon.isoformat()})
    assert issued.status_code == 201, issued.json
    assert issued.json["expires_at"].startswith(soon.strftime("%Y-%m-%dT%H:%M:%S"))
    dashboard = "/v1/clinics/clinic-a/programmes"
    assert client.get(dashboard, headers=bearer(issued.json["token"])).status_code == 200
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
    refused = client.get(dashboard, headers=bearer(issued.json["token"]))
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"


@pytest.mark.parametrize("expires_at", ["2020-01-01T00:00:00Z", "2030-01-01T00:00:00",
                                        "tomorrow", 17])
def test_an_expiry_in_the_past_or_without_an_offset_is_refused(client, tokens, expires_at):
    answer = client.post("/v1/tokens", headers=tokens.admin, json={
        "role": "viewer", "clinic_id": "clinic-a", "expires_at": expires_at})
    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"


# ---- listing --------------------------------------------------------------------------


def test_admins_list_tokens_without_secrets_by_api(client, tokens):
    listed = client.get("/v1/tokens", headers=tokens.admin)
    assert listed.status_code == 200
    ids = {token["token_id"] for token in listed.json["tokens"]}
    assert ids == set(tokens.records)
    text = listed.get_data(as_text=True)
    for headers in (tokens.writer_a, tokens.admin, tokens.auditor):
        secret = headers["Authorization"].split("_", 2)[2]
        assert secret not in text
    assert "secret" not in text
    for record in tokens.records.values():
        assert record.secret_sha256 not in text
    only_a = client.get("/v1/tokens?clinic_id=clinic-a", headers=tokens.admin).json["tokens"]
    assert {token["clinic_id"] for token in only_a} == {"clinic-a"}
    for caller in (tokens.auditor, tokens.viewer_all, tokens.writer_a):
        assert client.get("/v1/tokens", headers=caller).status_code == 403


def test_admins_list_tokens_without_secrets_by_cli(store_url, client, tokens):
    tokens.directory.revoke_token(tokens.viewer_b["X-Token-Id"])
    listed = cli(store_url, "tokens", "list")
    assert listed.exit_code == 0, listed.output
    rows = {line.split("\t")[0]: line.split("\t") for line in listed.output.splitlines()}
    assert set(rows) == set(tokens.records)
    assert rows[tokens.viewer_b["X-Token-Id"]][3] == "revoked"
    assert rows[tokens.writer_a["X-Token-Id"]][1:5] == ["writer", "clinic-a", "active",
                                                         "no-expiry"]
    for headers in (tokens.writer_a, tokens.admin):
        assert headers["Authorization"].split("_", 2)[2] not in listed.output
    issued = cli(store_url, "tokens", "issue", "--role", "viewer", "--clinic", "clinic-a",
                 "--expires-in-days", "30")
    assert issued.exit_code == 0 and ", until 20" in issued.output
    only_a = cli(store_url, "tokens", "list", "--clinic", "clinic-a").output.splitlines()
    assert any("expires 20" in line for line in only_a)
    assert all(line.split("\t")[2] == "clinic-a" for line in only_a)


# ---- deactivation ---------------------------------------------------------------------


def test_a_deactivated_clinics_tokens_stop_and_its_records_stay_for_auditors(client, tokens):
    programme_id = uuid.uuid4()
    events = f"/v1/clinics/clinic-a/programmes/{programme_id}/events"
    assert client.post(events, json=b.started(), headers=tokens.writer_a).status_code == 201
    done = client.post("/v1/clinics/clinic-a:deactivate", headers=tokens.admin)
    assert done.status_code == 200
    assert done.json["deactivated_at"] is not None
    for headers in (tokens.writer_a, tokens.viewer_a):
        refused = client.get(events, headers=headers)
        assert refused.status_code == 401
    assert client.post(events, json=b.session(1), headers=tokens.writer_a).status_code == 401
    # Other clinics are untouched; auditors and all-clinic viewers still read its records.
    assert client.get("/v1/clinics/clinic-b/dashboard", headers=tokens.viewer_b
                      ).status_code == 200
    for reader in (tokens.auditor, tokens.viewer_all):
        history = client.get(events, headers=reader)
        assert history.status_code == 200 and history.json["version"] == 1
    # No new token for it; deactivating again changes nothing; a missing clinic is a 404.
    refused = client.post("/v1/tokens", headers=tokens.admin,
                          json={"role": "writer", "clinic_id": "clinic-a"})
    assert refused.status_code == 422
    again = client.post("/v1/clinics/clinic-a:deactivate", headers=tokens.admin)
    assert again.json["deactivated_at"] == done.json["deactivated_at"]
    assert client.post("/v1/clinics/no-such-clinic:deactivate",
                       headers=tokens.admin).status_code == 404
    listing = client.get("/v1/clinics", headers=tokens.admin).json["clinics"]
    assert {c["clinic_id"]: bool(c["deactivated_at"]) for c in listing} == {
        "clinic-a": True, "clinic-b": False}


def test_a_clinic_deactivated_by_the_cli_is_refused_by_a_running_worker(store_url, client,
                                                                        tokens):
    dashboard = "/v1/clinics/clinic-b/dashboard"
    assert client.get(dashboard, headers=tokens.viewer_b).status_code == 200
    done = cli(store_url, "clinics", "deactivate", "clinic-b")
    assert done.exit_code == 0 and "deactivated clinic clinic-b" in done.output
    time.sleep(REFRESH_SECONDS + 0.1)
    assert client.get(dashboard, headers=tokens.viewer_b).status_code == 401
    listed = cli(store_url, "tokens", "list", "--clinic", "clinic-b").output.splitlines()
    assert {line.split("\t")[3] for line in listed} == {"clinic-deactivated"}
    assert "\tdeactivated 20" in cli(store_url, "clinics", "list").output
    assert cli(store_url, "clinics", "deactivate", "nowhere").exit_code == 1


def test_a_reactivated_clinics_unrevoked_tokens_work_again_and_a_revoked_one_does_not(
        client, tokens):
    dashboard = "/v1/clinics/clinic-a/dashboard"
    leaked = client.post("/v1/tokens", headers=tokens.admin,
                         json={"role": "viewer", "clinic_id": "clinic-a"}).json
    assert client.post("/v1/clinics/clinic-a:deactivate", headers=tokens.admin
                       ).status_code == 200
    assert client.delete(f"/v1/tokens/{leaked['token_id']}", headers=tokens.admin
                         ).status_code == 200
    done = client.post("/v1/clinics/clinic-a:reactivate", headers=tokens.admin)
    assert done.status_code == 200 and done.json["deactivated_at"] is None
    assert client.get(dashboard, headers=tokens.viewer_a).status_code == 200
    assert client.get(dashboard, headers=bearer(leaked["token"])).status_code == 401
    # New tokens can be issued again; reactivating again changes nothing; only admins may.
    assert client.post("/v1/tokens", headers=tokens.admin,
                       json={"role": "writer", "clinic_id": "clinic-a"}).status_code == 201
    assert client.post("/v1/clinics/clinic-a:reactivate", headers=tokens.admin).json == done.json
    assert client.post("/v1/clinics/no-such-clinic:reactivate",
                       headers=tokens.admin).status_code == 404
    assert client.post("/v1/clinics/clinic-a:reactivate",
                       headers=tokens.auditor).status_code == 403


def test_a_clinic_reactivated_by_the_cli_is_served_by_a_running_worker(store_url, client,
                                                                       tokens):
    dashboard = "/v1/clinics/clinic-b/dashboard"
    assert cli(store_url, "clinics", "deactivate", "clinic-b").exit_code == 0
    time.sleep(REFRESH_SECONDS + 0.1)
    assert client.get(dashboard, headers=tokens.viewer_b).status_code == 401
    done = cli(store_url, "clinics", "reactivate", "clinic-b")
    assert done.exit_code == 0 and "clinic clinic-b is active" in done.output
    time.sleep(REFRESH_SECONDS + 0.1)
    assert client.get(dashboard, headers=tokens.viewer_b).status_code == 200
    assert "deactivated" not in cli(store_url, "clinics", "list").output
    assert cli(store_url, "clinics", "reactivate", "nowhere").exit_code == 1


# ---- names and labels -----------------------------------------------------------------


@pytest.mark.parametrize("name", SPOOFS)
def test_names_and_labels_are_printable_text_only(client, tokens, store_url, name):
    clinic = client.post("/v1/clinics", headers=tokens.admin,
                         json={"clinic_id": "spoof", "name": name})
    assert clinic.status_code == 422, clinic.json
    assert clinic.mimetype == "application/problem+json"
    assert clinic.json["errors"][0]["pointer"] == "/name"
    token = client.post("/v1/tokens", headers=tokens.admin,
                        json={"role": "viewer", "clinic_id": "clinic-a", "label": name})
    assert token.status_code == 422
    assert cli(store_url, "clinics", "add", "spoof", name).exit_code == 1
    assert cli(store_url, "tokens", "issue", "--role", "auditor", "--label", name
               ).exit_code == 1
    assert "spoof" not in cli(store_url, "clinics", "list").output


def test_printable_names_in_any_script_are_fine(client, tokens):
    for n, name in enumerate(["Physio Zürich", "Клиника Север", "عيادة الشمال",
                              "北クリニック", "O'Brien & Sons – Rehab"]):
        answer = client.post("/v1/clinics", headers=tokens.admin,
                             json={"clinic_id": f"ok-{n}", "name": name})
        assert answer.status_code == 201, answer.json


def test_the_cli_escapes_a_name_stored_before_the_rule(store_url, tokens):
    # Written behind the service's back, as a store of an earlier release may hold it.
    with tokens.directory.db.transaction() as cursor:
        cursor.execute("INSERT INTO clinics (clinic_id, name, registered_at) VALUES "
                       "(%s, %s, %s)", ["old-one", "Old\nfake-row\tFake\u202eName",
                                        "2026-01-01T00:00:00+00:00"])
    listed = cli(store_url, "clinics", "list").output
    lines = listed.splitlines()
    assert len(lines) == 3  # clinic-a, clinic-b, old-one: no fake row
    [old] = [line for line in lines if line.startswith("old-one")]
    assert old == "old-one\tOld\\u000afake-row\\u0009Fake\\u202eName"
