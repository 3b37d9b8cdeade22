"""One writer at a time on a SQLite file, across processes, without sleeping.

SQLite lets one writer in at a time; the others retry in SQLite's busy
handler, which sleeps in growing steps (up to 100 ms) and so gives long tail
latencies when several gunicorn workers and the projection runner write at
once. Every writer of the service instead takes this lock first: an
in-process mutex plus an exclusive `flock` on a file beside the database,
which wakes the next waiter as soon as the holder is done.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_locks: dict[str, WriteLock] = {}
_locks_guard = threading.Lock()


class WriteLock:
    def __init__(self, database_path: str) -> None:
        self.path = f"{database_path}-writelock"
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._pid = os.getpid()

    def _file(self) -> int:
        # A file descriptor inherited through fork shares its lock with the
        # parent: open our own in each process.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._mutex:
            fd = self._file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


def write_lock(database_path: str | Path) -> WriteLock:
    """The write lock of a SQLite database file (one object per file per process)."""
    lock = _locks.get(str(database_path))  # the common case: no path resolution
    if lock is not None and lock._pid == os.getpid():
        return lock
    key = str(Path(database_path).resolve())
    with _locks_guard:
        lock = _locks.get(key)
        if lock is None or lock._pid != os.getpid():
            lock = _locks[key] = WriteLock(key)
        _locks[str(database_path)] = lock
        return lock
