"""Erasure reaches backups: back up, erase, rotate the KEK, destroy the old one, restore.

On both stores, through the command line as an operator runs it: the old
backup restored with the new KEK shows the erased patient's fields as erased
and everyone else's as before; the old KEK opens nothing any more; and the
backup alone, with only the new KEK, cannot be opened.
"""

from __future__ import annotations

import tarfile
import uuid

import pytest
from click.testing import CliRunner

from domain.personal import ERASED
from service.cli import main
from service.storage.sealing import KeyRefused, generate_kek
from tests import builders as b
from tests.stores import components_at

CLINIC = "clinic-a"


def run(*args: str, env: dict[str, str]):
    result = CliRunner().invoke(main, list(args), env=env)
    return result


def patient_fields(url: str, kek: str, programme_id: uuid.UUID) -> tuple[str, str]:
    parts = components_at(url, data_key=kek)
    try:
        history = parts.programmes.history(CLINIC, programme_id)
        return history[0]["data"]["patient_ref"], history[1]["data"]["reason"]
    finally:
        parts.close()


def test_an_erased_patient_stays_erased_in_a_backup_once_the_old_key_is_gone(
        store_url, tmp_path, request):
    old_kek = generate_kek()
    parts = components_at(store_url, data_key=old_kek)  # a store whose KEK is old_kek
    gone, stays = uuid.uuid4(), uuid.uuid4()
    for programme_id, ref in ((gone, "pt-gone-1234"), (stays, "pt-stays-5678")):
        parts.programmes.record_events(CLINIC, programme_id, [
            b.event_envelope(b.started(patient_ref=ref)),
            b.event_envelope(b.paused(days=2, reason=f"{ref} is travelling"))])
    parts.close()
    old_env = {"TRACTION_DATABASE_URL": store_url, "TRACTION_DATA_KEY": old_kek}

    backup = tmp_path / "before-erasure.tar.gz"
    assert run("backup", str(backup), env=old_env).exit_code == 0
    erased = run("erase", CLINIC, "--programme", str(gone), "--reason", "request ER-3",
                 env=old_env)
    assert erased.exit_code == 0, erased.output

    new_kek = generate_kek()
    key_file = tmp_path / "new.key"
    key_file.write_text(new_kek + "\n")
    rotated = run("keys", "rotate", "--new-key-file", str(key_file), env=old_env)
    assert rotated.exit_code == 0, rotated.output
    assert "re-wrapped 1 data keys" in rotated.output  # the erased one is gone already
    # The old KEK opens nothing any more: destroy it.
    with pytest.raises(KeyRefused):
        components_at(store_url, data_key=old_kek)
    del old_kek, old_env
    new_env = {"TRACTION_DATABASE_URL": store_url, "TRACTION_DATA_KEY": new_kek}

    restored = run("restore", str(backup), "--force", env=new_env)
    assert restored.exit_code == 0, restored.output
    assert "verified" in restored.output
    # The backup predates the erasure (no erasure event in it), yet its patient stays
    # erased: the key is gone. Everyone else reads as before.
    assert patient_fields(store_url, new_kek, gone) == (ERASED, ERASED)
    assert patient_fields(store_url, new_kek, stays) == ("pt-stays-5678",
                                                         "pt-stays-5678 is travelling")

    # The backup alone, restored somewhere new, needs the KEK of its day: destroyed.
    with tarfile.open(backup, "r:gz") as archive:
        payload = b"".join(archive.extractfile(m).read() for m in archive.getmembers()
                           if m.isfile())
    assert b"pt-gone-1234" not in payload and b"pt-stays-5678" not in payload
    elsewhere = _empty_store_like(store_url, tmp_path, request)
    env = {"TRACTION_DATABASE_URL": elsewhere, "TRACTION_DATA_KEY": new_kek}
    fresh = run("restore", str(backup), env=env)
    assert fresh.exit_code == 1 and "not the key-encryption key" in fresh.output
    with pytest.raises(KeyRefused, match="not the key-encryption key"):
        components_at(elsewhere, data_key=new_kek)


def _empty_store_like(url: str, tmp_path, request) -> str:
    """An empty store of the same kind (a PostgreSQL backup restores into its own schema)."""
    if url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/elsewhere.sqlite"
    base, _, schema = url.partition("?schema=")
    # A backup holds its schema's name: the same name, in a database of its own.
    import psycopg

    from service.storage.stores import parse_database_url

    store = parse_database_url(base)
    name = f"traction_elsewhere_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(store.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(store.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    request.addfinalizer(drop)
    elsewhere = f"postgresql://{store.pg_user}@{store.pg_host}:{store.pg_port}/{name}"
    with psycopg.connect(parse_database_url(elsewhere).conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{elsewhere}?schema={schema}"



def test_a_worker_still_on_the_old_key_refuses_to_start_programmes_but_reads(
        app, client, tokens, tmp_path):
    from tests.stores import TEST_DATA_KEY

    url = app.extensions["traction"].store.url
    events = f"/v1/clinics/{CLINIC}/programmes/{{}}/events"
    kept = uuid.uuid4()
    assert client.post(events.format(kept), json=b.started(patient_ref="pt-before"),
                       headers=tokens.writer_a).status_code == 201
    key_file = tmp_path / "new.key"
    key_file.write_text(generate_kek())
    rotated = run("keys", "rotate", "--new-key-file", str(key_file),
                  env={"TRACTION_DATABASE_URL": url, "TRACTION_DATA_KEY": TEST_DATA_KEY})
    assert rotated.exit_code == 0, rotated.output
    # This app's worker still holds the old KEK: a new programme's key would be
    # wrapped by it, and lost at the restart. Refused, to be retried; reads go on.
    refused = client.post(events.format(uuid.uuid4()), json=b.started(),
                          headers=tokens.writer_a)
    assert refused.status_code == 503 and refused.json["type"].endswith("key-rotated")
    assert refused.headers["Retry-After"] == "5"
    state = client.get(f"/v1/clinics/{CLINIC}/programmes/{kept}", headers=tokens.viewer_a)
    assert state.status_code == 200 and state.json["patient_ref"] == "pt-before"
    assert client.post(events.format(kept), json=b.pain(3, days=2),
                       headers=tokens.writer_a).status_code == 201
