"""The key-encryption key: generated, required, checked; development stores; `traction erase`.

On both stores: without a KEK, or with a wrong one, nothing starts and nothing
is written; a store made with `--development-keys` starts without one and
says so every time; `traction erase` erases one programme or every programme
of one patient at a clinic.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from click.testing import CliRunner

from domain.personal import ERASED
from service.bootstrap import DEVELOPMENT_WARNING
from service.cli import main
from service.storage.database import Database
from service.storage.sealing import KeyRefused, parse_kek
from service.storage.stores import parse_database_url
from tests import builders as b
from tests.stores import TEST_DATA_KEY, components_at

CLINIC = "clinic-a"


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    return CliRunner().invoke(main, list(args), env=env, input=input)


def key_rows(url: str) -> tuple[list, list]:
    database = Database(parse_database_url(url))
    try:
        with database.transaction(write=False) as cursor:
            return (cursor.execute("SELECT * FROM key_settings ORDER BY name").fetchall(),
                    cursor.execute("SELECT * FROM data_keys ORDER BY programme_id").fetchall())
    finally:
        database.close()


def start(components, patient_ref: str, clinic: str = CLINIC) -> uuid.UUID:
    programme_id = uuid.uuid4()
    components.programmes.record_events(clinic, programme_id, [
        b.event_envelope(b.started(patient_ref=patient_ref)),
        b.event_envelope(b.paused(days=2, reason=f"{patient_ref} travelling"))])
    return programme_id


def test_keys_generate_prints_a_new_key_each_time():
    first, second = run("keys", "generate"), run("keys", "generate")
    assert first.exit_code == second.exit_code == 0
    assert len(parse_kek(first.output)) == 32 and first.output != second.output


def test_without_a_key_a_store_refuses_to_open_and_writes_nothing(store_url):
    before = key_rows(store_url)
    with pytest.raises(KeyRefused, match="TRACTION_DATA_KEY"):
        components_at(store_url, data_key=None)
    assert key_rows(store_url) == before
    answer = run("clinics", "list", env={"TRACTION_DATABASE_URL": store_url,
                                         "TRACTION_DATA_KEY": ""})
    assert answer.exit_code == 1 and "no key-encryption key" in answer.output


def test_a_wrong_key_is_refused_before_anything_is_written(store_url):
    parts = components_at(store_url)
    start(parts, "pt-wrong-key")
    parts.close()
    before = key_rows(store_url)
    other = run("keys", "generate").output.strip()
    with pytest.raises(KeyRefused, match="not the key-encryption key"):
        components_at(store_url, data_key=other)
    assert key_rows(store_url) == before
    served = run("serve", "--no-demo", env={"TRACTION_DATABASE_URL": store_url,
                                           "TRACTION_DATA_KEY": other})
    assert served.exit_code == 1 and "not the key-encryption key" in served.output
    assert key_rows(store_url) == before


def test_a_development_store_opens_without_a_key_and_says_so_every_time(sqlite_url, caplog):
    env = {"TRACTION_DATABASE_URL": sqlite_url, "TRACTION_DATA_KEY": ""}
    made = run("db", "init", "--development-keys", env=env)
    assert made.exit_code == 0 and "NOT protected at rest" in made.output
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        parts = components_at(sqlite_url, data_key=None)
        programme_id = start(parts, "pt-dev")
        assert parts.programmes.programme(CLINIC, programme_id).patient_ref == "pt-dev"
        parts.close()
    assert caplog.text.count(DEVELOPMENT_WARNING) == 2
    # A store whose keys an operator's KEK wraps cannot become a development store.
    settings_rows, _ = key_rows(sqlite_url)
    assert "development_kek" in {row["name"] for row in settings_rows}


def test_an_operators_store_cannot_be_turned_into_a_development_store(store_url):
    components_at(store_url).close()  # opened with a KEK once: its check is recorded
    made = run("db", "init", "--development-keys",
               env={"TRACTION_DATABASE_URL": store_url, "TRACTION_DATA_KEY": ""})
    assert made.exit_code == 1 and "only for a new store" in made.output


def test_traction_erase_erases_one_programme_or_every_programme_of_a_patient(store_url):
    parts = components_at(store_url)
    twice = [start(parts, "pt-twice"), start(parts, "pt-twice")]
    elsewhere = start(parts, "pt-twice", clinic="clinic-b")  # another clinic's patient
    kept = start(parts, "pt-kept")
    parts.close()
    env = {"TRACTION_DATABASE_URL": store_url, "TRACTION_DATA_KEY": TEST_DATA_KEY}
    erased = run("erase", CLINIC, "--patient-ref", "-", "--reason", "request ER-9",
                 env=env, input="pt-twice\n")
    assert erased.exit_code == 0, erased.output
    named = [line.split()[2].rstrip(":") for line in erased.output.splitlines()]
    assert sorted(named) == sorted(str(p) for p in twice)
    assert "pt-twice" not in erased.output
    parts = components_at(store_url)
    try:
        for programme_id in twice:
            erased_programme = parts.programmes.programme(CLINIC, programme_id)
            assert (erased_programme.patient_ref, erased_programme.paused_reason) == (
                ERASED, ERASED)
            assert not parts.keyring.has_key(programme_id)
        assert parts.programmes.programme("clinic-b", elsewhere).patient_ref == "pt-twice"
        assert parts.programmes.programme(CLINIC, kept).patient_ref == "pt-kept"
    finally:
        parts.close()
    again = run("erase", CLINIC, "--programme", str(twice[0]), "--reason", "again", env=env)
    assert again.exit_code == 0 and "erased before: its first receipt" in again.output
    unknown = run("erase", CLINIC, "--programme", str(uuid.uuid4()), "--reason", "x", env=env)
    assert unknown.exit_code == 1
    nobody = run("erase", CLINIC, "--patient-ref", "pt-twice", "--reason", "x", env=env)
    assert nobody.exit_code == 1 and "no programme of that patient" in nobody.output



def test_an_erasure_after_another_hosts_post_erases_the_programme_as_it_is_now(store_url):
    one, other = components_at(store_url), components_at(store_url)  # two hosts
    try:
        programme_id = start(one, "pt-race")
        one.programmes.programme(CLINIC, programme_id)  # cached by this host
        other.programmes.record_events(CLINIC, programme_id,
                                       [b.event_envelope(b.pain(4, days=3))])
        receipt = one.programmes.erase(CLINIC, programme_id, "admin", "request ER-8")
        assert receipt.version == 4 and not receipt.replayed  # after the other's post
        assert other.programmes.programme(CLINIC, programme_id).patient_ref == ERASED
    finally:
        one.close()
        other.close()


def test_a_process_keeps_few_keys_and_reads_a_forgotten_one_again_until_erased(
        store_url, monkeypatch):
    """Data keys in memory are bounded (the oldest out); a key let go is read again
    from the store, so fields stay readable, and an erased programme's is gone."""
    from service.storage import sealing

    monkeypatch.setattr(sealing, "KEYS_KEPT", 2)
    components = components_at(store_url)
    try:
        keyring = components.keyring
        programmes = [start(components, f"pt-{n}") for n in range(4)]
        assert len(keyring._keys) == 2
        assert set(keyring._keys) == set(programmes[2:])  # the newest two
        # Kept as the keys' 32 bytes: a cipher object holds an OpenSSL context of
        # about 2.6 KB, which the full KEYS_KEPT made 52 MB of a worker.
        assert all(type(key) is bytes and len(key) == sealing.KEY_BYTES
                   for key in keyring._keys.values())
        first = components.programmes.history(CLINIC, programmes[0])
        assert first[0]["data"]["patient_ref"] == "pt-0"  # read again from the store
        assert len(keyring._keys) == 2 and programmes[0] in keyring._keys
        components.programmes.erase(CLINIC, programmes[1], "admin", "patient asked")
        assert not keyring.has_key(programmes[1])
        assert programmes[1] not in keyring._keys
        erased = components.programmes.history(CLINIC, programmes[1])
        assert erased[0]["data"]["patient_ref"] == ERASED
    finally:
        components.close()
