"""One runner per projection, one rebuild per projection.

The runner keeps programme states in memory between batches, so two
runners on one projection would each write from a stale cache: the second
one must wait. On PostgreSQL the lock is a session advisory lock on a
connection of its own (it dies with the process); on SQLite it is an
`fcntl` lock on a file beside the database (released by the kernel when the
process dies, even by SIGKILL).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable
from typing import Any

import psycopg

from service.storage.stores import Store


class LockHeld(Exception):
    """Another process holds the lock."""


class LockLost(Exception):
    """The lock's connection broke: another process may take over."""


def _advisory_key(store: Store, purpose: str) -> int:
    # Advisory locks are per database: the schema is part of the key.
    digest = hashlib.sha256(f"traction:{store.pg_schema}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class ProjectionLock:
    """An exclusive lock named by `purpose` (e.g. "runner:metrics")."""

    def __init__(self, store: Store, purpose: str) -> None:
        self.store = store
        self.purpose = purpose
        self._file: Any = None
        self._connection: psycopg.Connection[Any] | None = None

    @property
    def path(self) -> str:
        assert self.store.sqlite_path is not None
        safe = self.purpose.replace(":", "-")
        return f"{self.store.sqlite_path}.{safe}.lock"

    def try_acquire(self) -> bool:
        if self.store.is_postgres:
            connection = psycopg.connect(self.store.conninfo(), autocommit=True)
            row = connection.execute("SELECT pg_try_advisory_lock(%s)",
                                     (_advisory_key(self.store, self.purpose),)).fetchone()
            if row and row[0]:
                self._connection = connection
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
        """Take the lock; with `wait`, keep trying (calling on_wait once) until `should_stop`."""
        if self.try_acquire():
            return True
        if not wait:
            raise LockHeld(self.purpose)
        if on_wait is not None:
            on_wait()
        while not (should_stop and should_stop()):
            time.sleep(interval)
            if self.try_acquire():
                return True
        return False

    def verify(self) -> None:
        """Raise LockLost if the lock may have been lost (PostgreSQL: its connection broke)."""
        if self._connection is None:
            return
        try:
            self._connection.execute("SELECT 1")
        except psycopg.Error as error:
            raise LockLost(self.purpose) from error

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
