"""A small SQL adapter for the service's own tables (clinics, tokens, logs).

The event store's tables belong to the eventsourcing recorders; the tables
here are plain rows that need no history. One adapter gives both stores the
same interface: SQL is written with %s placeholders, and SQLite gets `?`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from service.storage.sqlite_lock import write_lock
from service.storage.stores import RECONNECT_TIMEOUT, Store


class Database:
    """Connections to the store for the service's own tables."""

    def __init__(self, store: Store, pool_size: int = 2, *, timeout: float = 2.0) -> None:
        self.store = store
        self._local = threading.local()
        self._pool: ConnectionPool | None = None
        if store.is_postgres:
            self._pool = ConnectionPool(
                store.conninfo(),
                min_size=0,
                max_size=pool_size,
                kwargs={"row_factory": dict_row, "autocommit": False,
                        "options": f"-c search_path={store.pg_schema}"},
                open=False,
                # Fail a request within `timeout` (2 s) while the database is
                # down, check a pooled connection before use (one may have died
                # with the server), and give up a reconnection quickly so the
                # next request starts a fresh one instead of waiting out a backoff.
                timeout=timeout,
                check=ConnectionPool.check_connection,
                reconnect_timeout=RECONNECT_TIMEOUT,
            )

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Cursor]:
        """A cursor in a transaction, committed on success.

        On SQLite a writing transaction first takes the file's write lock
        (shared with the event store's writers); a reading one takes nothing.
        """
        if self._pool is not None:
            self._pool.open(wait=False)
            with self._pool.connection() as conn, conn.cursor() as cursor:
                yield Cursor(cursor, postgres=True)
            return
        conn = self._sqlite_connection()
        if not write:
            conn.execute("BEGIN")
            try:
                yield Cursor(conn.cursor(), postgres=False)
            finally:
                conn.rollback()
            return
        assert self.store.sqlite_path is not None
        with write_lock(self.store.sqlite_path).held():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Cursor(conn.cursor(), postgres=False)
            except BaseException:
                conn.rollback()
                raise
            else:
                conn.commit()

    def read_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row of one read-only statement, run on its own: alone, a
        statement reads one snapshot anyway, so without the BEGIN and COMMIT (two
        round trips on PostgreSQL) that `transaction` puts around it."""
        if self._pool is None:
            # Every row read, so that no statement is left open (holding a snapshot).
            rows = self._sqlite_connection().execute(sql.replace("%s", "?"),
                                                     tuple(params)).fetchall()
            return dict(rows[0]) if rows else None
        self._pool.open(wait=False)
        with self._pool.connection() as conn:
            conn.autocommit = True
            try:
                found = conn.execute(sql, tuple(params)).fetchone()
            finally:
                # As the pool's own check does: never hide the error of a lost connection.
                with contextlib.suppress(Exception):
                    conn.autocommit = False
        return dict(found) if found is not None else None

    def compact(self) -> None:
        """Rewrite the store's files so that no deleted or overwritten row survives in
        free pages (after personal fields were sealed in place): VACUUM on SQLite
        (its WAL checkpointed and truncated), VACUUM FULL of each table of the
        store's schema on PostgreSQL. Takes as long as copying the store."""
        if self._pool is None:
            assert self.store.sqlite_path is not None
            with write_lock(self.store.sqlite_path).held():
                conn = sqlite3.connect(self.store.sqlite_path, isolation_level=None)
                try:
                    conn.execute("VACUUM")
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    conn.close()
            return
        self._pool.open(wait=False)
        with self._pool.connection() as conn:
            conn.autocommit = True
            try:
                tables = [row["table_name"] for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
                    " AND table_type = 'BASE TABLE'", (self.store.pg_schema,)).fetchall()]
                for table in tables:
                    conn.execute(f'VACUUM FULL "{self.store.pg_schema}"."{table}"')
            finally:
                conn.autocommit = False

    def _sqlite_connection(self) -> sqlite3.Connection:
        # One connection per thread: sqlite3 connections are not shared.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            assert self.store.sqlite_path is not None
            conn = sqlite3.connect(self.store.sqlite_path, timeout=30,
                                   isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def release_thread(self) -> None:
        """Close this thread's SQLite connection (a thread that is about to end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class Cursor:
    def __init__(self, cursor: Any, *, postgres: bool) -> None:
        self._cursor = cursor
        self.postgres = postgres

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if not self.postgres:
            sql = sql.replace("%s", "?")
        self._cursor.execute(sql, tuple(params))
        return self

    @property
    def raw(self) -> Any:
        """The driver's own cursor (for composed SQL that needs no translation)."""
        return self._cursor

    def fetchone(self) -> dict[str, Any] | None:
        row = self._cursor.fetchone()
        return dict(row) if row is not None else None

    def fetchall(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._cursor.fetchall()]
