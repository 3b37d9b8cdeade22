"""The schema of a store, and its upgrades: ordered migrations run by Alembic.

Every table of a store (the library's event and tracking tables, the
ledger, clinics, tokens, the access log, checkpoints, the projections'
bookkeeping) is created and changed only by the migrations in versions/,
in order; the store records which one it has reached (Alembic's
`alembic_version` table). A store written by release 0.1.0 has every table
but no record: it is at the first migration, whose statements it already
holds.

- `status` says where a store stands: empty, up to date, behind (which
  steps are pending), or written by a newer release (a revision this
  release does not know).
- `migrate` runs the pending steps, each in its own transaction, holding a
  lock so that two runs never overlap.
- `require_current` is what every entry point calls before using a store:
  it refuses one with pending steps, or from a newer release, saying what
  to do.

Alembic (with SQLAlchemy under it) is the usual tool for this in Python; the
migrations are plain SQL (the tables are the eventsourcing library's and
ours, not SQLAlchemy models), run on a connection this module opens.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from service.storage.stores import Store, create_sqlite_file

#: The table whose presence marks a store that has tables (release 0.1.0 on).
LEDGER_TABLE = "event_ledger"


class SchemaError(Exception):
    """A store this release cannot use as it is; the message says what to do."""


class StoreBehind(SchemaError):
    """The store has migrations to run (`traction migrate`)."""


class StoreFromNewerRelease(SchemaError):
    """The store was migrated by a newer release than this one."""


class MigrationRunning(SchemaError):
    """Another `traction migrate` holds the store's migration lock."""


@dataclass(frozen=True)
class Step:
    """One migration: its revision and what it does (its docstring's first line)."""

    revision: str
    description: str


@dataclass(frozen=True)
class SchemaStatus:
    """Where a store's schema stands."""

    revision: str | None  # None: an empty store, or one 0.1.0 wrote (no record)
    head: str
    pending: tuple[Step, ...]
    empty: bool
    #: Written by release 0.1.0, before stores recorded their schema.
    unrecorded: bool = False
    #: A revision this release does not know: a newer release migrated the store.
    newer: bool = False

    @property
    def current(self) -> bool:
        return not self.pending and not self.newer


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", "service.storage:migrations")
    return config


def known_revisions() -> tuple[str, ...]:
    """Every schema revision this release knows, oldest first."""
    scripts = _scripts()
    return tuple(reversed([r.revision for r in scripts.walk_revisions()]))


def _steps(scripts: ScriptDirectory, after: str | None) -> tuple[Step, ...]:
    revisions = list(scripts.iterate_revisions("head", after))
    revisions.reverse()  # oldest first
    return tuple(Step(r.revision, (r.doc or "").strip().splitlines()[0]) for r in revisions)


@contextmanager
def _connection(store: Store, *, migrating: bool = False
                ) -> Iterator[sqlalchemy.Connection]:
    """A SQLAlchemy connection to the store (`migrating`: where DDL is transactional)."""
    if store.is_postgres:
        engine = sqlalchemy.create_engine(
            "postgresql+psycopg://", poolclass=sqlalchemy.NullPool,
            creator=lambda: psycopg.connect(store.conninfo(),
                                            options=f"-c search_path={store.pg_schema}"))
    else:
        assert store.sqlite_path is not None
        create_sqlite_file(store.sqlite_path)
        engine = sqlalchemy.create_engine(f"sqlite:///{store.sqlite_path}",
                                          poolclass=sqlalchemy.NullPool)

        # Python's sqlite3 would commit before each DDL statement on its own;
        # SQLAlchemy's recipe: no implicit transactions, an explicit BEGIN
        # (IMMEDIATE: a migration takes the write lock at once; reading the
        # status takes none).
        @sqlalchemy.event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        if migrating:
            @sqlalchemy.event.listens_for(engine, "begin")
            def _begin(connection: sqlalchemy.Connection) -> None:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.connect() as connection:
            yield connection
    except sqlalchemy.exc.DBAPIError as error:
        if isinstance(error.orig, psycopg.OperationalError):
            # The database cannot be reached: the driver's own error, which every
            # entry point answers as such (service/storage/errors.py).
            raise error.orig from None
        raise
    finally:
        engine.dispose()


def _read_status(connection: sqlalchemy.Connection, store: Store) -> SchemaStatus:
    scripts = _scripts()
    head = scripts.get_current_head()
    assert head is not None
    schema = store.pg_schema if store.is_postgres else None
    context = MigrationContext.configure(connection, opts={"version_table_schema": schema})
    revision = context.get_current_revision()
    inspector = sqlalchemy.inspect(connection)
    has_tables = inspector.has_table(LEDGER_TABLE, schema=schema)
    connection.rollback()
    if revision is None:
        # No record: empty, or written by 0.1.0 (every table of 0001, unrecorded).
        return SchemaStatus(None, head, _steps(scripts, None), empty=not has_tables,
                            unrecorded=has_tables)
    try:
        scripts.get_revision(revision)
    except Exception:  # alembic.util.CommandError / ResolutionError: not one of ours
        return SchemaStatus(revision, head, (), empty=False, newer=True)
    return SchemaStatus(revision, head, _steps(scripts, revision), empty=False)


#: The migration that makes the key tables (data_keys, key_settings).
KEY_TABLES_REVISION = "0005"


def has_key_tables(store: Store) -> bool:
    """Whether the store's schema has reached the key tables (an older store opened
    before `traction migrate`, to verify it or back it up, has not)."""
    found = status(store)
    return not found.empty and not found.newer and KEY_TABLES_REVISION not in {
        step.revision for step in found.pending}


def status(store: Store) -> SchemaStatus:
    """Where the store's schema stands."""
    with _connection(store) as connection:
        return _read_status(connection, store)


def require_current(store: Store) -> None:
    """Refuse a store with pending migrations, or one from a newer release."""
    found = status(store)
    if found.newer:
        raise StoreFromNewerRelease(
            f"this store was migrated by a newer release (schema {found.revision}; this "
            f"release knows up to {found.head}): run that release, or restore a backup "
            "taken before it")
    if found.pending:
        where = ("written by release 0.1.0" if found.unrecorded
                 else "empty" if found.empty else f"at schema {found.revision}")
        raise StoreBehind(
            f"the store is {where} and needs {len(found.pending)} migration step(s) to "
            f"reach {found.head}: back it up (`traction backup PATH`), then run "
            "`traction migrate` (`--dry-run` lists the steps)")


@contextmanager
def migration_lock(store: Store, *, wait: bool = False) -> Iterator[None]:
    """Hold the store's migration lock: wait for it, or raise MigrationRunning at once."""
    if store.is_postgres:
        # Advisory locks are per database; stores are per schema: the schema is in the key.
        digest = hashlib.sha256(f"traction:{store.pg_schema}:migrate".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        with psycopg.connect(store.conninfo(), autocommit=True) as conn:
            if wait:
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
                taken = True
            else:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                taken = bool(row and row[0])
            if not taken:
                raise MigrationRunning("another `traction migrate` is running on this store")
            try:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{store.pg_schema}"')
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return
    assert store.sqlite_path is not None
    store.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{store.sqlite_path}-migratelock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MigrationRunning("another `traction migrate` is running on this store") \
                from None
        yield
    finally:
        os.close(fd)  # releases the lock


def migrate(store: Store, *, dry_run: bool = False, wait: bool = False
            ) -> tuple[SchemaStatus, tuple[Step, ...]]:
    """Run the pending migrations (none with `dry_run`): (the status before, the steps).

    Another run holding the lock: MigrationRunning, or with `wait`, wait for it."""
    with migration_lock(store, wait=wait), _connection(store, migrating=True) as connection:
        before = _read_status(connection, store)
        if before.newer:
            raise StoreFromNewerRelease(
                f"this store was migrated by a newer release (schema {before.revision}); "
                "this release cannot migrate it")
        if dry_run or not before.pending:
            return before, before.pending
        config = _config()
        config.attributes["connection"] = connection
        config.attributes["schema"] = store.pg_schema if store.is_postgres else None
        command.upgrade(config, "head")
        return before, before.pending
