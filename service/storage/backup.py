"""Backups: one file that restores a store whole, or is refused whole.

A backup is a gzipped tar of two members: `manifest.json` (what store it
is, its schema, its head position and chain hash, and the SHA-256 and size
of the payload) and the payload itself:

- SQLite: a copy of the database made with SQLite's online backup API, which
  is consistent while the service writes (it copies one snapshot);
- PostgreSQL: `pg_dump` (plain SQL) of the store's schema, taken in an
  exported snapshot, the same one the manifest's head is read in.

Restoring checks the whole file first (the manifest, the payload's size and
checksum, the kind of store, the schema), so a truncated or corrupt backup
is refused with what is wrong before the target is touched. A SQLite
restore writes beside the target and renames it into place; a PostgreSQL
restore runs in one transaction. A target that holds anything is refused
unless forced.

A forced restore keeps the target's own key tables (data keys, key
settings): a backup taken before an erasure still holds the erased
programme's data key, and restoring it must not bring that key back. The
backup's keys are wrapped by the KEK of its day: once that KEK is rotated
away and destroyed, a stolen copy of the backup cannot be read at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from service.storage import migrations
from service.storage.database import Database
from service.storage.presence import is_initialised
from service.storage.stores import Store

FORMAT = "traction-backup/1"
MANIFEST = "manifest.json"
SQLITE_PAYLOAD = "store.sqlite"
POSTGRES_PAYLOAD = "dump.sql"
#: Read and hashed in chunks of this size: memory stays flat for any size of store.
CHUNK = 1 << 20


class BackupError(Exception):
    """A backup cannot be made, read or restored; the message says why."""


@dataclass(frozen=True)
class Manifest:
    """What a backup holds."""

    format: str
    store: str  # "sqlite" or "postgresql"
    created_at: str
    schema_revision: str | None
    head_position: int
    head_chain_hash: str | None
    payload: str
    payload_bytes: int
    payload_sha256: str
    pg_schema: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2).encode()


def _sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _write_archive(path: Path, manifest: Manifest, payload: Path) -> None:
    """The archive, written beside `path` and renamed into place (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with tarfile.open(partial, "w:gz") as archive:
        data = manifest.to_json()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        info.mtime = int(datetime.now(UTC).timestamp())
        archive.addfile(info, io.BytesIO(data))
        archive.add(payload, arcname=manifest.payload, recursive=False)
    os.chmod(partial, 0o600)  # a backup holds the whole record
    os.replace(partial, path)


def backup(store: Store, path: Path) -> Manifest:
    """Back up the store to `path` (a new file; an existing one is replaced)."""
    with tempfile.TemporaryDirectory(prefix="traction-backup-") as work:
        if store.is_postgres:
            payload, revision, head = _dump_postgres(store, Path(work) / POSTGRES_PAYLOAD)
        else:
            payload, revision, head = _copy_sqlite(store, Path(work) / SQLITE_PAYLOAD)
        size, sha256 = _sha256(payload)
        manifest = Manifest(
            format=FORMAT, store=store.kind, created_at=datetime.now(UTC).isoformat(),
            schema_revision=revision, head_position=head[0], head_chain_hash=head[1],
            payload=payload.name, payload_bytes=size, payload_sha256=sha256,
            pg_schema=store.pg_schema if store.is_postgres else None,
        )
        _write_archive(path, manifest, payload)
    return manifest


def _head(cursor: Any, schema: str = "") -> tuple[int, str | None]:
    cursor.execute(f"SELECT position, chain_hash FROM {schema}event_ledger "
                   "ORDER BY position DESC LIMIT 1")
    row = cursor.fetchone()
    return (int(row[0]), row[1]) if row else (0, None)


def _revision(cursor: Any) -> str | None:
    """The schema a SQLite store records (None: release 0.1.0 recorded none)."""
    cursor.execute("SELECT name FROM sqlite_master WHERE name = 'alembic_version'")
    if cursor.fetchone() is None:
        return None
    cursor.execute("SELECT version_num FROM alembic_version")
    row = cursor.fetchone()
    return row[0] if row else None


def _copy_sqlite(store: Store, target: Path) -> tuple[Path, str | None, tuple[int, str | None]]:
    assert store.sqlite_path is not None
    if not store.sqlite_path.exists():
        raise BackupError(f"there is no store at {store.sqlite_path}")
    source = sqlite3.connect(store.sqlite_path)
    copy = sqlite3.connect(target)
    try:
        # One step: the copy is one snapshot of the source, whatever writes meanwhile.
        source.backup(copy)
        cursor = copy.cursor()
        head = _head(cursor)
        revision = _revision(cursor)
        copy.execute("PRAGMA journal_mode=DELETE")  # the copy is one self-contained file
    finally:
        copy.close()
        source.close()
    return target, revision, head


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed: install PostgreSQL's client programs "
                          "(the server's major version or newer)")
    return found


def _pg_conninfo(store: Store, work: Path) -> str:
    """A connection string for PostgreSQL's client programs. A password goes into a
    password file of their own (never onto a command line others can read)."""
    from psycopg.conninfo import make_conninfo

    passfile = None
    if store.pg_password:
        passfile = work / "pgpass"
        escaped = [str(v).replace("\\", "\\\\").replace(":", "\\:") for v in (
            store.pg_host, store.pg_port, store.pg_dbname, store.pg_user, store.pg_password)]
        passfile.write_text(":".join(escaped) + "\n")
        os.chmod(passfile, 0o600)
    return make_conninfo(host=store.pg_host, port=store.pg_port, user=store.pg_user,
                         dbname=store.pg_dbname, passfile=str(passfile) if passfile else None)


def _dump_postgres(store: Store, target: Path) -> tuple[Path, str | None,
                                                         tuple[int, str | None]]:
    pg_dump = _pg_tool("pg_dump")
    schema = f'"{store.pg_schema}".'
    # The manifest's head and the dump come from one snapshot: this transaction
    # exports it and stays open while pg_dump reads in it.
    with psycopg.connect(store.conninfo()) as conn, conn.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]  # type: ignore[index]
        cursor.execute("SELECT to_regclass(%s), to_regclass(%s)",
                       [f"{schema}event_ledger", f"{schema}alembic_version"])
        ledger, recorded = cursor.fetchone()  # type: ignore[misc]
        if ledger is None:
            raise BackupError(f"there is no store in schema {store.pg_schema}")
        head = _head(cursor, schema)
        revision = None
        if recorded is not None:
            cursor.execute(f"SELECT version_num FROM {schema}alembic_version")
            row = cursor.fetchone()
            revision = row[0] if row else None
        done = subprocess.run(
            [pg_dump, "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
             f"--schema={store.pg_schema}", f"--file={target}",
             f"--dbname={_pg_conninfo(store, target.parent)}"],
            capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    return target, revision, head


# ---- reading and restoring ------------------------------------------------------------


def read_manifest(path: Path) -> Manifest:
    """The backup's manifest, after checking the whole file: its payload's size and
    checksum. BackupError says what is wrong with a truncated or corrupt one."""
    if not path.is_file():
        raise BackupError(f"there is no backup at {path}")
    try:
        with tarfile.open(path, "r:gz") as archive:
            names = archive.getnames()
            if MANIFEST not in names:
                raise BackupError(f"{path} is not a Traction Ledger backup (no {MANIFEST})")
            member = archive.extractfile(MANIFEST)
            assert member is not None
            try:
                fields = json.loads(member.read())
                manifest = Manifest(**fields)
            except (ValueError, TypeError) as error:
                raise BackupError(f"the manifest of {path} cannot be read: {error}") from None
            if manifest.format != FORMAT:
                raise BackupError(f"{path} is a backup of format {manifest.format!r}; this "
                                  f"release reads {FORMAT!r}")
            if manifest.payload not in names:
                raise BackupError(f"{path} is missing its {manifest.payload}: truncated?")
            payload = archive.extractfile(manifest.payload)
            assert payload is not None
            digest = hashlib.sha256()
            size = 0
            while chunk := payload.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise BackupError(f"{path} cannot be read as a backup (truncated or corrupt: "
                          f"{error})") from None
    if size != manifest.payload_bytes or digest.hexdigest() != manifest.payload_sha256:
        raise BackupError(f"{path}: its {manifest.payload} is not what was backed up "
                          f"({size} bytes, SHA-256 {digest.hexdigest()[:12]}..., where the "
                          f"manifest says {manifest.payload_bytes} bytes, "
                          f"{manifest.payload_sha256[:12]}...): truncated or corrupt")
    return manifest


def restore(store: Store, path: Path, *, force: bool = False) -> Manifest:
    """Restore the backup at `path` into the store; the target stays untouched on refusal."""
    manifest = read_manifest(path)
    if manifest.store != store.kind:
        raise BackupError(f"{path} is a backup of a {manifest.store} store; the target is "
                          f"{store.kind}")
    if manifest.schema_revision not in (None, *migrations.known_revisions()):
        raise BackupError(f"{path} was taken by a newer release (schema "
                          f"{manifest.schema_revision}); restore it with that release")
    if store.is_postgres and manifest.pg_schema != store.pg_schema:
        raise BackupError(f"{path} holds the PostgreSQL schema {manifest.pg_schema!r}; restore "
                          f"it into a store URL with ?schema={manifest.pg_schema}")
    initialised = is_initialised(store)
    if not force and initialised:
        raise BackupError("the target store is not empty: restore into an empty one, or "
                          "give --force to replace what it holds")
    # A restore never brings back a data key destroyed since the backup (an erasure):
    # a store that has keys keeps its own, and the backup's are dropped.
    kept = _keys(store) if initialised else None
    with tempfile.TemporaryDirectory(prefix="traction-restore-") as work:
        with tarfile.open(path, "r:gz") as archive:
            archive.extract(manifest.payload, work, filter="data")
        payload = Path(work) / manifest.payload
        if store.is_postgres:
            _restore_postgres(store, payload, manifest)
        else:
            _restore_sqlite(store, payload, manifest)
    if kept is not None:
        _put_keys(store, kept)
    return manifest


#: The tables of a store's keys (migration 0005), as a restore keeps them.
KEY_TABLES = ("data_keys", "key_settings")


def _keys(store: Store) -> dict[str, list[dict[str, Any]]] | None:
    """The store's key tables, row by row (None: it has none yet)."""
    if not migrations.has_key_tables(store):
        return None
    database = Database(store)
    try:
        with database.transaction(write=False) as cursor:
            return {table: cursor.execute(f"SELECT * FROM {table}").fetchall()
                    for table in KEY_TABLES}
    finally:
        database.close()


def _put_keys(store: Store, kept: dict[str, list[dict[str, Any]]]) -> None:
    """Put a store's own key tables back over a restored backup's (one transaction)."""
    if not migrations.has_key_tables(store):
        # A backup from before patient keys: its personal fields are in the clear,
        # and `traction migrate` seals them; the keys it had cannot be put back here.
        raise BackupError(
            "this backup was taken before patient keys (its personal fields are in the "
            "clear); it was restored, but the store's keys could not be kept: run "
            "`traction migrate` to seal it, and see OPERATIONS.md, \"Keys\"")
    database = Database(store)
    try:
        with database.transaction() as cursor:
            for table, rows in kept.items():
                cursor.execute(f"DELETE FROM {table}")
                for row in rows:
                    names = list(row)
                    cursor.execute(
                        f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                        f"({', '.join(['%s'] * len(names))})", [row[n] for n in names])
    finally:
        database.close()


def _restore_sqlite(store: Store, payload: Path, manifest: Manifest) -> None:
    assert store.sqlite_path is not None
    target = store.sqlite_path
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(payload, staged)
    os.chmod(staged, 0o600)
    check = sqlite3.connect(staged)
    try:
        if check.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("the backed-up database fails SQLite's integrity check")
        if _head(check.cursor()) != (manifest.head_position, manifest.head_chain_hash):
            raise BackupError("the backed-up database does not end at the manifest's head")
    except BaseException:
        check.close()
        staged.unlink(missing_ok=True)
        raise
    check.close()
    # The old file's write-ahead log would be replayed into the new one: gone first.
    for leftover in (f"{target}-wal", f"{target}-shm"):
        Path(leftover).unlink(missing_ok=True)
    os.replace(staged, target)


def _restore_postgres(store: Store, payload: Path, manifest: Manifest) -> None:
    psql = _pg_tool("psql")
    schema = store.pg_schema
    # pg_dump recreates a schema of its own but not "public", which always exists.
    clear = (f'DROP SCHEMA IF EXISTS "{schema}" CASCADE;'
             + ('CREATE SCHEMA "public";' if schema == "public" else ""))
    done = subprocess.run(
        [psql, "-q", "-X", "--single-transaction", "-v", "ON_ERROR_STOP=1",
         "-d", _pg_conninfo(store, payload.parent), "-c", clear, "-f", str(payload)],
        capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"restoring into PostgreSQL failed, nothing was changed: "
                          f"{done.stderr.strip()[-2000:]}")
    with psycopg.connect(store.conninfo()) as conn, conn.cursor() as cursor:
        if _head(cursor, f'"{schema}".') != (manifest.head_position, manifest.head_chain_hash):
            raise BackupError("the restored store does not end at the manifest's head")
