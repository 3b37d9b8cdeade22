"""Fixtures for the audit tests: a recorded store, and SQL straight at it."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from service.cli import main
from service.storage import chain
from service.storage.stores import parse_database_url
from tests.audit.history import record_programmes
from tests.stores import components_at, initialise, throwaway_postgres_schema

#: Test data, not a secret: 256 bits, as a signing key must be.
KEY = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#: Another signing key, as rotation or a wrong configuration would bring.
OTHER_KEY = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
#: 4 programmes x 8 events, 3 per save, interleaved: positions 1..32.
EVENTS = 32


class StoreSQL:
    """Edits the stored log behind the service's back, as an intruder with
    database access would: the events table and the ledger, by position."""

    def __init__(self, url: str) -> None:
        self.store = parse_database_url(url)
        if self.store.is_postgres:
            self.conn: Any = psycopg.connect(
                self.store.conninfo(), autocommit=True,
                options=f"-c search_path={self.store.pg_schema}")
            self.pos = "notification_id"
            # The library names the table after the application on PostgreSQL.
            self.events = self.conn.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = %s "
                "AND column_name = 'notification_id' AND table_name LIKE %s",
                (self.store.pg_schema, "%_events")).fetchone()[0]
        else:
            self.conn = sqlite3.connect(self.store.sqlite_path, isolation_level=None)
            self.pos = "rowid"
            self.events = "stored_events"

    def close(self) -> None:
        self.conn.close()

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        statement = statement.replace("{pos}", self.pos).replace("stored_events", self.events)
        if not self.store.is_postgres:
            statement = statement.replace("%s", "?")
        cursor = self.conn.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []

    def _id(self, value: uuid.UUID) -> Any:
        return value if self.store.is_postgres else value.hex

    def event(self, position: int) -> tuple:
        return self.sql("SELECT originator_id, originator_version, topic, state "
                        "FROM stored_events WHERE {pos} = %s", (position,))[0]

    def ledger(self, position: int) -> tuple:
        return self.sql("SELECT position, programme_id, version, event_id, clinic_id, "
                        "event_type, recorded_at, content_digest, saved_version, chain_hash "
                        "FROM event_ledger WHERE position = %s", (position,))[0]

    # ---- the tampering -------------------------------------------------

    def change_one_byte(self, position: int) -> None:
        """physio.anna -> physio.bnna in the event's stored state."""
        state = bytearray(self.event(position)[3])
        at = state.index(b"physio.anna") + len("physio.")
        state[at] = ord("b")
        self.sql("UPDATE stored_events SET state = %s WHERE {pos} = %s",
                 (bytes(state), position))

    def delete(self, position: int) -> None:
        self.sql("DELETE FROM stored_events WHERE {pos} = %s", (position,))
        self.sql("DELETE FROM event_ledger WHERE position = %s", (position,))

    def delete_event_only(self, position: int) -> None:
        self.sql("DELETE FROM stored_events WHERE {pos} = %s", (position,))

    def shift(self, first: int, by: int) -> None:
        # Through a far-away range, so that no two rows ever share a position.
        far = 1_000_000
        for table, column in (("stored_events", "{pos}"), ("event_ledger", "position")):
            self.sql(f"UPDATE {table} SET {column} = {column} + %s WHERE {column} >= %s",
                     (far, first))
            self.sql(f"UPDATE {table} SET {column} = {column} - %s WHERE {column} >= %s",
                     (far - by, far))

    def insert_shifting(self, position: int) -> None:
        """A fabricated programme start at `position`, the genuine entries moved up."""
        self.shift(position, 1)
        _, _, topic, state = self.event(1)
        template = self.ledger(position + 1)
        fake = uuid.uuid4()
        self.sql("INSERT INTO stored_events ({pos}, originator_id, originator_version, topic, "
                 "state) VALUES (%s, %s, 1, %s, %s)", (position, self._id(fake), topic, state))
        self.sql("INSERT INTO event_ledger (position, programme_id, version, event_id, "
                 "clinic_id, event_type, recorded_at, content_digest, saved_version, "
                 "chain_hash) VALUES (%s, %s, 1, %s, 'clinic-a', 'ProgrammeStarted', %s, "
                 "NULL, 1, %s)",
                 (position, self._id(fake), self._id(uuid.uuid4()), template[6],
                  "f" * 64))

    def append_event_without_ledger(self) -> int:
        head = self.sql("SELECT MAX({pos}) FROM stored_events")[0][0]
        originator_id, version, topic, state = self.event(head)
        self.sql("INSERT INTO stored_events ({pos}, originator_id, originator_version, topic, "
                 "state) VALUES (%s, %s, %s, %s, %s)",
                 (head + 1, originator_id, version + 100, topic, state))
        return head + 1

    def swap_events(self, first: int, second: int) -> None:
        """Exchange two stored events' places in the log (the ledger left alone)."""
        self.sql("UPDATE stored_events SET {pos} = -1 WHERE {pos} = %s", (first,))
        self.sql("UPDATE stored_events SET {pos} = %s WHERE {pos} = %s", (first, second))
        self.sql("UPDATE stored_events SET {pos} = %s WHERE {pos} = -1", (second,))

    def swap_entries(self, first: int, second: int) -> None:
        """Exchange two whole entries (event and ledger entry) in the log."""
        self.swap_events(first, second)
        self.sql("UPDATE event_ledger SET position = -1 WHERE position = %s", (first,))
        self.sql("UPDATE event_ledger SET position = %s WHERE position = %s", (first, second))
        self.sql("UPDATE event_ledger SET position = %s WHERE position = -1", (second,))

    def truncate(self, keep: int) -> None:
        self.sql("DELETE FROM stored_events WHERE {pos} > %s", (keep,))
        self.sql("DELETE FROM event_ledger WHERE position > %s", (keep,))

    def rechain(self, first: int) -> None:
        """Recompute every chain hash from `first` on, as a careful intruder would."""
        previous = self.ledger(first - 1)[9] if first > 1 else chain.GENESIS
        head = self.sql("SELECT MAX(position) FROM event_ledger")[0][0]
        for position in range(first, head + 1):
            originator_id, version, topic, state = self.event(position)
            row = self.ledger(position)
            recorded_at = row[6] if self.store.is_postgres else datetime.fromisoformat(row[6])
            previous = chain.entry_hash(
                previous, position=position, programme_id=uuid.UUID(str(originator_id)),
                version=version, topic=topic, state=bytes(state),
                event_id=uuid.UUID(str(row[3])), clinic_id=row[4], recorded_at=recorded_at)
            self.sql("UPDATE event_ledger SET chain_hash = %s WHERE position = %s",
                     (previous, position))

    # ---- undoing it all between tests ----------------------------------

    TABLES = {
        "stored_events": "{pos}, originator_id, originator_version, topic, state",
        "event_ledger": "position, programme_id, version, event_id, clinic_id, event_type, "
                        "recorded_at, content_digest, saved_version, chain_hash",
        "chain_checkpoints": "position, chain_hash, signed_at, signature, previous_signature",
        "access_log": "entry_id, at, action, token_id, token_label, role, method, route, "
                      "clinic_id, programme_id, remote_addr, detail, chain_hash",
        "audit_verifications": "verification_id, state, requested_at, requested_by, "
                               "checkpoints, started_at, heartbeat_at, finished_at, "
                               "events_total, events_checked, report, error",
    }

    def snapshot(self) -> dict[str, list[tuple]]:
        return {table: self.sql(f"SELECT {columns} FROM {table}")
                for table, columns in self.TABLES.items()}

    def restore(self, snapshot: dict[str, list[tuple]]) -> None:
        """Put back every row of the snapshot, and nothing else, in one transaction."""
        if self.store.is_postgres:
            with self.conn.transaction():
                self._put_back(snapshot)
            return
        self.conn.execute("BEGIN")
        try:
            self._put_back(snapshot)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _put_back(self, snapshot: dict[str, list[tuple]]) -> None:
        for table, columns in self.TABLES.items():
            self.sql(f"DELETE FROM {table}")
            marks = ", ".join(["%s"] * (columns.count(",") + 1))
            statement = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
            statement = statement.replace("{pos}", self.pos).replace("stored_events",
                                                                      self.events)
            if not self.store.is_postgres:
                statement = statement.replace("%s", "?")
            cursor = self.conn.cursor()
            cursor.executemany(statement, snapshot[table])
            cursor.close()


@dataclass
class World:
    """A recorded store shared by a module's tests, put back as it was before each."""

    url: str
    app: Any
    client: Any
    tokens: Any
    editor: StoreSQL
    snapshot: dict[str, list[tuple]]
    #: The checkpoint log outside the database (TRACTION_CHECKPOINT_LOG).
    checkpoint_log: Path


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory) -> Iterator[World]:
    """EVENTS events of 4 programmes in 2 clinics (both registered), the app over
    them, tokens for every role. Built once per module and store: building a
    store costs far more than putting back its few rows."""
    from tests.conftest import _postgres_base_url

    with contextlib.ExitStack() as stack:
        folder = tmp_path_factory.mktemp("audit")
        if request.param == "sqlite":
            url = f"sqlite:///{folder}/ledger.sqlite"
        else:
            url = stack.enter_context(
                throwaway_postgres_schema(_postgres_base_url(), prefix="test_audit"))
        yield from _world(url, folder / "checkpoints.jsonl")


def _world(url: str, checkpoint_log: Path) -> Iterator[World]:
    from service.http.app import create_app
    from tests.conftest import Tokens

    initialise(url)
    record_programmes(url)
    components = components_at(url, checkpoint_key=KEY, checkpoint_log=checkpoint_log)
    app = create_app(components)
    app.config["TESTING"] = True
    tokens = Tokens(components.directory)
    editor = StoreSQL(url)
    CHECKPOINT_LOGS[url] = checkpoint_log
    try:
        yield World(url, app, app.test_client(), tokens, editor, editor.snapshot(),
                    checkpoint_log)
    finally:
        editor.close()
        components.close()


@pytest.fixture
def pristine(world) -> World:
    """The shared store exactly as recorded (whatever the last test did to it)."""
    world.editor.restore(world.snapshot)
    world.checkpoint_log.unlink(missing_ok=True)  # the snapshot has no checkpoints
    return world


@pytest.fixture
def recorded(pristine) -> str:
    return pristine.url


@pytest.fixture
def store_sql(pristine) -> StoreSQL:
    return pristine.editor


@pytest.fixture
def client(pristine) -> Any:
    return pristine.client


@pytest.fixture
def tokens(pristine) -> Any:
    return pristine.tokens


#: Each shared store's checkpoint log, which the command line is given too.
CHECKPOINT_LOGS: dict[str, Path] = {}


def run_cli(url: str, *args: str, key: str | None = KEY, log: Path | None | bool = True,
            previous: str | None = None) -> Any:
    """`traction audit ...` on `url`, with the checkpoint key and log (the store's
    own, or none with log=None) unless told otherwise."""
    if log is True:
        log = CHECKPOINT_LOGS.get(url)
    env = {"TRACTION_DATABASE_URL": url, "TRACTION_CHECKPOINT_KEY": key,
           "TRACTION_CHECKPOINT_LOG": str(log) if log else None,
           "TRACTION_CHECKPOINT_PREVIOUS_KEYS": previous}
    return CliRunner().invoke(main, ["audit", *args], env=env, catch_exceptions=False)


def cli_verify(url: str, key: str | None = KEY, **options: Any) -> dict[str, Any]:
    result = run_cli(url, "verify", "--json", key=key, **options)
    report = json.loads(result.stdout)
    assert result.exit_code == (0 if report["ok"] else 1)
    return report


@contextmanager
def auditor_client(url: str, **settings: Any) -> Iterator[tuple[Any, dict[str, str]]]:
    """A test client of the app over `url` (with no checkpoint key unless
    `settings` give one), and an auditor's bearer header."""
    from service.http.app import create_app

    components = components_at(url, **settings)
    app = create_app(components)
    try:
        _, token = components.directory.issue_token("auditor", None, "auditor test")
        yield app.test_client(), {"Authorization": f"Bearer {token}"}
    finally:
        components.close()
