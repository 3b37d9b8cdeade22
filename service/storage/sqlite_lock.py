"""One writer at a time on a SQLite file, across processes, without sleeping.

SQLite lets one writer in at a time; the others retry in SQLite's busy
handler, which sleeps in growing steps (up to 100 ms) and so gives long tail
latencies when several gunicorn workers and the projection runner write at
once. Every writer of the service instead takes this lock first: an
in-process mutex plus an exclusive `flock` on a file beside the database,
which wakes the next waiter as soon as the holder is done.

The database is named as the library names it (SQLITE_DBNAME): a path, or a
`file:` URI. An in-memory database (`:memory:`, `mode=memory`) lives in one
process, so its lock is the mutex alone, with no file beside anything.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

_locks: dict[str, WriteLock] = {}
_locks_guard = threading.Lock()


class WriteLock:
    def __init__(self, database_path: str | None) -> None:
        self.path = f"{database_path}-writelock" if database_path is not None else None
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._pid = os.getpid()

    def _file(self) -> int:
        assert self.path is not None
        # A file descriptor inherited through fork shares its lock with the
        # parent: open our own in each process.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._mutex:
            if self.path is None:  # in memory: this process is the only writer
                yield
                return
            fd = self._file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


def database_file(name: str | Path) -> Path | None:
    """The file of a SQLite database named as the library names it; None in memory."""
    text = str(name)
    if text.startswith("file:"):
        parts = urlsplit(text)
        if "memory" in parse_qs(parts.query).get("mode", []) or parts.path in ("", ":memory:"):
            return None
        return Path(unquote(parts.path))
    if text in ("", ":memory:"):
        return None
    return Path(text)


def write_lock(database: str | Path) -> WriteLock:
    """The write lock of a SQLite database (one object per database per process)."""
    lock = _locks.get(str(database))  # the common case: no name parsing
    if lock is not None and lock._pid == os.getpid():
        return lock
    path = database_file(database)
    # In memory, every name is its own database (shared-cache URIs aside, which
    # one process shares anyway): one lock per name.
    key = str(path.resolve()) if path is not None else f"memory:{database}"
    with _locks_guard:
        lock = _locks.get(key)
        if lock is None or lock._pid != os.getpid():
            lock = _locks[key] = WriteLock(key if path is not None else None)
        _locks[str(database)] = lock
        return lock
