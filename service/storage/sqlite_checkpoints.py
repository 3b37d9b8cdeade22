"""WAL checkpoints of a SQLite file in a background thread, not in a request's commit.

In WAL mode a commit appends the pages it changed to the write-ahead log, and
a checkpoint copies them back into the database file. By default the commit
that takes the log past 1,000 pages runs the checkpoint itself, inside the
request: a bulk chunk of 1,000 interleaved lines changes more pages than
that (a page of each of its unique indexes per row), so every chunk's commit
copied the log back too, half of the commit's time (and one single-event post
in a few hundred paid for all the others).

Here each process that writes a file runs its checkpoints in a thread of its
own, as PASSIVE checkpoints (they wait for no reader or writer), once about
a thousand events were committed or a second after a commit: the copying,
which runs in SQLite outside the GIL, overlaps the request's own work on
another core. A commit's durability does not change: it is in the log,
synced, when the commit returns.

The store's pooled connections keep a threshold as a backstop
(`BACKSTOP_PAGES`, set as each opens: service/storage/sqlite_connections.py):
should this thread fall behind or stop, the commit that takes the log past
it checkpoints as before. Other writers of the file (the
projection runner, the directory) keep SQLite's default and checkpoint as
before when they commit.

The thread ends after `IDLE_SECONDS` without a commit and starts again with
the next: a process that stops writing a file (a test's store, a finished
migration) leaves no thread or connection behind it for long.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: How often the thread looks at what was committed (seconds): a thread waking
#: up this often costs a busy worker nothing it would notice.
INTERVAL_SECONDS = 0.1
#: A checkpoint once this many events were committed since the last (about a
#: bulk chunk's, or a few hundred single-event posts': their pages changed by
#: several commits, a table's last page and the indexes' hot pages, copied once)...
CHECKPOINT_EVENTS = 1_000
#: ... or once the first of fewer has waited this long (seconds).
LONGEST_WAIT_SECONDS = 1.0
#: A thread with no commit to checkpoint for this long ends (seconds).
IDLE_SECONDS = 5.0
#: The log's size in pages at which a writer's commit checkpoints by itself:
#: ten times SQLite's default (about 40 MB of log at 4 KiB pages).
BACKSTOP_PAGES = 10_000
#: Run once on each pooled connection as it opens (a connection's setting, not
#: the file's).
HOLD_BACK = f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}"

_checkpointers: dict[str, Checkpointer] = {}
_checkpointers_guard = threading.Lock()


class Checkpointer:
    """The background checkpoints of one SQLite file, in this process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pid = os.getpid()
        #: Events committed since the last checkpoint. A hint, read and reset
        #: without a lock: a count lost to a race only delays a checkpoint.
        self._events = 0
        self._running = False
        self._guard = threading.Lock()
        self.checkpoints = 0  # how many this process ran (for tests and curiosity)

    def committed(self, events: int) -> None:
        """A writer of this process committed `events` events to the file."""
        self._events += events
        if not self._running:
            self._start()

    def _start(self) -> None:
        with self._guard:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name=f"wal-checkpoints {self.path.name}",
                         daemon=True).start()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        waited = idle = 0.0
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            while True:
                time.sleep(INTERVAL_SECONDS)
                if self._events >= CHECKPOINT_EVENTS or (
                        self._events and waited >= LONGEST_WAIT_SECONDS):
                    self._events = 0
                    waited = idle = 0.0
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                elif self._events:
                    waited += INTERVAL_SECONDS
                else:
                    idle += INTERVAL_SECONDS
                    if idle >= IDLE_SECONDS:
                        with self._guard:
                            if not self._events:
                                self._running = False
                                return
        except sqlite3.Error as error:
            # The writers' backstop checkpoints meanwhile; the next commit
            # starts a thread again.
            log.warning("background checkpoint of %s failed: %s", self.path, error)
        finally:
            if conn is not None:
                conn.close()
            with self._guard:
                self._running = False


def checkpointer(path: Path) -> Checkpointer:
    """The checkpointer of the SQLite file at `path` in this process (one per file)."""
    key = str(path)
    found = _checkpointers.get(key)  # the common case: no lock
    if found is not None and found._pid == os.getpid():
        return found
    with _checkpointers_guard:
        found = _checkpointers.get(key)
        # A forked child has none of its parent's threads: a checkpointer of its own.
        if found is None or found._pid != os.getpid():
            found = _checkpointers[key] = Checkpointer(path)
        return found
