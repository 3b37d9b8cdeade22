"""One runner per projection, one rebuild per projection.

The runner keeps programme states in memory between batches, so two
runners on one projection would each write from a stale cache: the second
one must wait. On SQLite the lock is an `fcntl` lock on a file beside the
database (released by the kernel when the process dies, even by SIGKILL).

On PostgreSQL it is a session advisory lock on a connection of its own,
which may be on another host than its rivals. The lock lives as long as that
session, so the session is made to end whenever its runner cannot go on:

- the runner dies: the kernel closes the socket, the server ends the session;
- the host drops off the network: the server's TCP keepalives (set on this
  session, KEEPALIVE_*) end it within about ten seconds;
- the runner hangs (a frozen VM, SIGSTOP) while its socket stays up: with a
  `lease`, the runner must touch its lock every HEARTBEAT_SECONDS, and the
  server ends the session once it has been idle for the lease.

A runner whose lock session has ended must never write again: `fence`, run
inside each of its write transactions, refuses the write unless the lock is
still held by this very session; and a runner that has just taken the lock
first waits for any write still in flight (ReadModelStore.settle_writers).
Between them, a write of the runner that lost the lock either commits before
the new runner reads its position, or not at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import psycopg

from service.storage.stores import Store

log = logging.getLogger("traction.projections")

#: How often an active runner touches its lock when it has nothing else to do.
HEARTBEAT_SECONDS = 1.0
#: A standby's wait for the lock in one query; it then looks whether it should stop.
STANDBY_WAIT_SECONDS = 1.0
#: The server's keepalives on a lock session: a peer that stops answering is
#: dropped after about idle + interval x count seconds.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 5, 2, 3


class LockHeld(Exception):
    """Another process holds the lock."""


class LockLost(Exception):
    """The lock's session ended (or the lock is no longer ours): another process may
    have taken over."""


def _advisory_key(store: Store, purpose: str) -> int:
    # Advisory locks are per database: the schema is part of the key.
    digest = hashlib.sha256(f"traction:{store.pg_schema}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class ProjectionLock:
    """An exclusive lock named by `purpose` (e.g. "runner:dashboards").

    `lease` (seconds, PostgreSQL): the holder must touch the lock (`heartbeat`)
    more often than this, or the server ends its session and the lock with it.
    """

    def __init__(self, store: Store, purpose: str, *, lease: float | None = None) -> None:
        self.store = store
        self.purpose = purpose
        self.lease = lease
        self._file: Any = None
        self._connection: psycopg.Connection[Any] | None = None
        self._touched = 0.0

    @property
    def path(self) -> str:
        assert self.store.sqlite_path is not None
        safe = self.purpose.replace(":", "-")
        return f"{self.store.sqlite_path}.{safe}.lock"

    @property
    def key(self) -> int:
        return _advisory_key(self.store, self.purpose)

    # ---- PostgreSQL -------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        """A session for the lock, named so that operators can see whose it is."""
        server_options = (f"-c tcp_keepalives_idle={KEEPALIVE_IDLE} "
                          f"-c tcp_keepalives_interval={KEEPALIVE_INTERVAL} "
                          f"-c tcp_keepalives_count={KEEPALIVE_COUNT}")
        connection = psycopg.connect(
            self.store.conninfo(), autocommit=True, connect_timeout=5,
            application_name=f"traction {self.purpose} {socket.gethostname()} "
                             f"pid {os.getpid()}"[:63],
            keepalives=1, keepalives_idle=KEEPALIVE_IDLE,
            keepalives_interval=KEEPALIVE_INTERVAL, keepalives_count=KEEPALIVE_COUNT,
            options=server_options,
        )
        if self.lease is not None:
            try:
                # PostgreSQL 14 and later; on older servers, only the keepalives.
                connection.execute(f"SET idle_session_timeout = {int(self.lease * 1000)}")
            except psycopg.errors.UndefinedObject:
                log.warning("this PostgreSQL has no idle_session_timeout: a hung runner "
                            "keeps its lock until its connection drops")
        return connection

    def _hold(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection
        self._touched = time.monotonic()

    # ---- taking and giving up ----------------------------------------------

    def try_acquire(self) -> bool:
        if self.store.is_postgres:
            connection = self._connect()
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            if row and row[0]:
                self._hold(connection)
                return True
            connection.close()
            return False
        handle = open(self.path, "a+")  # held open while locked
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def acquire(self, *, wait: bool, on_wait: Callable[[], None] | None = None,
                should_stop: Callable[[], bool] | None = None, interval: float = 1.0) -> bool:
        """Take the lock; with `wait`, keep trying (calling on_wait once) until `should_stop`.

        On PostgreSQL a standby waits inside the server for the lock (a query
        at a time, STANDBY_WAIT_SECONDS each): it has the lock the moment the
        holder's session ends.
        """
        if self.try_acquire():
            return True
        if not wait:
            raise LockHeld(self.purpose)
        if on_wait is not None:
            on_wait()
        if self.store.is_postgres:
            return self._wait_in_server(should_stop)
        while not (should_stop and should_stop()):
            time.sleep(interval)
            if self.try_acquire():
                return True
        return False

    def _wait_in_server(self, should_stop: Callable[[], bool] | None) -> bool:
        connection = self._connect()
        try:
            connection.execute(f"SET lock_timeout = {int(STANDBY_WAIT_SECONDS * 1000)}")
            while not (should_stop and should_stop()):
                try:
                    connection.execute("SELECT pg_advisory_lock(%s)", (self.key,))
                except psycopg.errors.LockNotAvailable:
                    continue
                connection.execute("SET lock_timeout = 0")
                self._hold(connection)
                return True
        except BaseException:
            connection.close()
            raise
        connection.close()
        return False

    def verify(self) -> None:
        """Raise LockLost if the lock's session has ended (PostgreSQL)."""
        if self._connection is None:
            return
        try:
            self._connection.execute("SELECT 1")
        except psycopg.Error as error:
            raise LockLost(self.purpose) from error
        self._touched = time.monotonic()

    def heartbeat(self) -> None:
        """Touch the lock if it has not been touched for HEARTBEAT_SECONDS (renews
        the lease); LockLost if its session has ended."""
        if self._connection is not None and \
                time.monotonic() - self._touched >= HEARTBEAT_SECONDS:
            self.verify()

    def fence(self, cursor: Any) -> None:
        """In a write transaction of the holder (PostgreSQL): LockLost unless this
        lock is still held by this process's lock session.

        The lock session may have ended a moment ago (the network, an operator,
        the lease) while another runner, on another host, has already taken it:
        then this write must not commit.
        """
        if self._connection is None:
            if self._file is None:
                raise LockLost(self.purpose)  # not held at all
            return  # a file lock: held as long as this process lives
        cursor.execute(
            "SELECT count(*) AS held FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = %s AND classid::bigint = (%s::bigint >> 32) & 4294967295 "
            "AND objid::bigint = %s::bigint & 4294967295 AND objsubid = 1",
            (self._connection.info.backend_pid, self.key, self.key),
        )
        row = cursor.fetchone()
        if not row or not row["held"]:
            raise LockLost(self.purpose)

    def holder(self) -> str | None:
        """Who holds the lock on PostgreSQL, as its session names itself ("HOST pid
        N"), or None if nobody does (always None on SQLite)."""
        if not self.store.is_postgres:
            return None
        with psycopg.connect(self.store.conninfo(), autocommit=True,
                             connect_timeout=5) as connection:
            row = connection.execute(
                "SELECT a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                "AND l.database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database()) "
                "AND l.classid::bigint = (%s::bigint >> 32) & 4294967295 "
                "AND l.objid::bigint = %s::bigint & 4294967295",
                (self.key, self.key)).fetchone()
        if row is None:
            return None
        name = row[0] or ""
        prefix = f"traction {self.purpose} "
        return name[len(prefix):] if name.startswith(prefix) else name or "unknown"

    def held_elsewhere(self) -> bool:
        """Whether another process holds the lock right now."""
        if self.try_acquire():
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()  # ends the session, and its advisory lock
            finally:
                self._connection = None
        if self._file is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            finally:
                self._file.close()
                self._file = None

    def __enter__(self) -> ProjectionLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
