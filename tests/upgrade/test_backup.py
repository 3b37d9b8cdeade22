"""Backup while the service writes, restore, verify: on both stores, through the CLI."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from service.cli import main
from service.storage.presence import is_initialised
from service.storage.stores import parse_database_url
from tests import builders as b
from tests.stores import components_at

#: Test data, not a secret: 256 bits, as a signing key must be.
KEY = "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2"


@pytest.fixture(autouse=True)
def checkpoint_log(tmp_path, monkeypatch) -> Path:
    """Every command of a test appends its checkpoints to the same file."""
    path = tmp_path / "checkpoints.jsonl"
    monkeypatch.setenv("TRACTION_CHECKPOINT_LOG", str(path))
    return path


def cli(url: str, *args: str, key: str | None = KEY):
    env = {"TRACTION_DATABASE_URL": url, "TRACTION_CHECKPOINT_KEY": key}
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def target(store_url, tmp_path) -> Iterator[str]:
    """An empty store to restore into: a new SQLite file, or, on PostgreSQL, the same
    schema name in a database of its own (a dump restores into its own schema)."""
    store = parse_database_url(store_url)
    if not store.is_postgres:
        yield f"sqlite:///{tmp_path}/restored/ledger.sqlite"
        return
    name = f"traction_restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(store.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (f"postgresql://{store.pg_user}@{store.pg_host}:{store.pg_port}/{name}"
               f"?schema={store.pg_schema}")
    finally:
        with psycopg.connect(store.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Ingest:
    """Clinic systems posting programmes through the app until told to stop; every
    acknowledged event with when its 201 came back."""

    def __init__(self, client, writer: dict[str, str]) -> None:
        self.client, self.writer = client, writer
        self.acknowledged: list[tuple[float, str]] = []  # (monotonic time, event_id)
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self.post_programmes) for _ in range(3)]

    def post_programmes(self) -> None:
        while not self.stop.is_set():
            pid = uuid.uuid4()
            for events in ([b.started()], [b.session(1), b.pain(5, 1)], [b.pain(4, 2)]):
                answer = self.client.post(f"/v1/clinics/clinic-a/programmes/{pid}/events",
                                          json={"events": events}, headers=self.writer)
                if answer.status_code != 201:
                    self.failures.append(f"{answer.status_code} {answer.get_data()!r}")
                    return
                now = time.monotonic()
                self.acknowledged.extend((now, e["event_id"]) for e in events)

    def __enter__(self) -> Ingest:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def _ids_at(url: str) -> list[str]:
    """The event ids a store holds, in position order (from its ledger)."""
    components = components_at(url)
    try:
        recorder = components.programmes.recorder
        return [str(row["event_id"])
                for row in recorder.ledger_window(1, recorder.chain_extent())]
    finally:
        components.close()


def test_backup_during_ingest_restores_whole_and_verifies(store_url, target, client, tokens,
                                                          tmp_path):
    path = tmp_path / "ledger.backup"
    with Ingest(client, tokens.writer_a) as ingest:
        while len(ingest.acknowledged) < 30:  # ingest well under way
            time.sleep(0.05)
        began = time.monotonic()
        made = cli(store_url, "backup", str(path))
        ended = time.monotonic()
        time.sleep(0.3)  # and on, after it
    assert not ingest.failures, ingest.failures
    assert made.exit_code == 0, made.output
    before = {event_id for at, event_id in ingest.acknowledged if at < began}
    after = {event_id for at, event_id in ingest.acknowledged if at > ended}
    assert before and after

    restored = cli(target, "restore", str(path))
    assert restored.exit_code == 0, restored.output
    assert "verified:" in restored.output and "BROKEN" not in restored.output
    # The copy reaches the checkpoint signed when the backup began.
    assert "reaching the signed checkpoint" in restored.output
    in_copy = set(_ids_at(target))
    assert before <= in_copy  # everything acknowledged before the backup began
    assert not after & in_copy  # nothing acknowledged after it ended
    # No event is half there: verify walks every position, ledger and event alike.
    verified = cli(target, "audit", "verify", "--json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"]
    assert json.loads(verified.stdout)["events_checked"] == len(in_copy)


def test_a_non_empty_target_is_refused_unless_forced(store_url, target, client, tokens,
                                                     tmp_path):
    client.post(f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}/events", json=b.started(),
                headers=tokens.writer_a)
    path = tmp_path / "ledger.backup"
    assert cli(store_url, "backup", str(path)).exit_code == 0
    assert cli(target, "restore", str(path)).exit_code == 0
    again = cli(target, "restore", str(path))
    assert again.exit_code == 1 and "is not empty" in again.output
    forced = cli(target, "restore", str(path), "--force")
    assert forced.exit_code == 0, forced.output
    assert len(_ids_at(target)) == 1


def truncated(path: Path, into: Path) -> Path:
    into.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return into


def tampered(path: Path, into: Path) -> Path:
    """The same archive and manifest, one byte of the payload changed."""
    with tarfile.open(path, "r:gz") as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}
    manifest = json.loads(members["manifest.json"])
    payload = bytearray(members[manifest["payload"]])
    payload[len(payload) // 2] ^= 0xFF
    members[manifest["payload"]] = bytes(payload)
    with tarfile.open(into, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return into


@pytest.mark.parametrize(("damage", "says"), [
    (truncated, "truncated or corrupt"),
    (tampered, "not what was backed up"),
    (lambda path, into: (into.write_bytes(gzip.compress(b"not a tar")), into)[1],
     "cannot be read as a backup"),
])
def test_a_damaged_backup_is_refused_naming_what_is_wrong_and_the_target_untouched(
        store_url, target, client, tokens, tmp_path, damage, says):
    client.post(f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}/events", json=b.started(),
                headers=tokens.writer_a)
    path = tmp_path / "ledger.backup"
    assert cli(store_url, "backup", str(path)).exit_code == 0
    damaged = damage(path, tmp_path / "damaged.backup")
    refused = cli(target, "restore", str(damaged))
    assert refused.exit_code == 1
    assert says in refused.output
    store = parse_database_url(target)
    assert not is_initialised(store)  # nothing written
    if store.sqlite_path is not None:
        assert not store.sqlite_path.exists()


def test_a_backup_of_one_kind_of_store_is_refused_by_the_other(store_url, tmp_path, client,
                                                               tokens):
    path = tmp_path / "ledger.backup"
    assert cli(store_url, "backup", str(path)).exit_code == 0
    other = ("postgresql://postgres@127.0.0.1:5432/nowhere"
             if store_url.startswith("sqlite") else f"sqlite:///{tmp_path}/other.sqlite")
    refused = cli(other, "restore", str(path))
    assert refused.exit_code == 1 and "is a backup of a" in refused.output
