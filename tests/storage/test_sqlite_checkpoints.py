"""WAL checkpoints in a background thread (service/storage/sqlite_checkpoints.py):
a writer's commit leaves the log to the thread up to the backstop, the thread
copies it back soon after, ends when the writes stop, starts again with the
next."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
import warnings

from eventsourcing.persistence import StoredEvent

from domain.ledger import LedgerEntry, Save
from service.storage.sqlite_checkpoints import BACKSTOP_PAGES, IDLE_SECONDS, checkpointer
from service.storage.stores import parse_database_url
from tests.stores import initialise, programmes_at


def saves(count: int) -> list[Save]:
    return [Save([StoredEvent(originator_id=uuid.uuid4(), originator_version=1,
                              topic="tests:Event", state=b'{"n": 1}')],
                 [LedgerEntry(uuid.uuid4(), "clinic-a", "Event", None)])
            for _ in range(count)]


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def rows_in_the_file(path) -> int:
    """Events in the database file itself, without its log: those checkpointed.
    (Read from a copy of the file alone, so that nothing here checkpoints.)"""
    copy = path.with_name("copy-" + path.name)
    copy.write_bytes(path.read_bytes())
    conn = sqlite3.connect(copy)
    try:
        return conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    finally:
        conn.close()
        copy.unlink()


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wal-checkpoints")]


def test_commits_are_checkpointed_by_the_thread_which_ends_when_idle(sqlite_url):
    initialise(sqlite_url)
    path = parse_database_url(sqlite_url).sqlite_path.resolve()
    app = programmes_at(sqlite_url)
    try:
        recorder = app.recorder
        background = checkpointer(path)
        before = background.checkpoints
        assert all(isinstance(outcome, list) for outcome in recorder.record_saves(saves(500)))
        # The writer's connection checkpoints only past the backstop.
        with recorder.datastore.get_connection(commit=True) as conn, conn.cursor() as c:
            c.execute("PRAGMA wal_autocheckpoint")
            assert c.fetchone()[0] == BACKSTOP_PAGES
        # The thread copies the log back soon after the commit.
        assert wait_for(lambda: background.checkpoints > before, 5)
        assert wait_for(lambda: rows_in_the_file(path) == 500, 5)
        # With no commit for IDLE_SECONDS, it ends (and closes its connection) ...
        assert wait_for(lambda: not background._running, IDLE_SECONDS + 5)
        assert not [t for t in checkpoint_threads() if path.name in t.name]
        # ... and the next commit starts one again.
        checkpoints = background.checkpoints
        recorder.record_saves(saves(10))
        assert wait_for(lambda: rows_in_the_file(path) == 510, 5)
        assert background.checkpoints > checkpoints
    finally:
        app.close()


def test_a_forked_child_gets_a_checkpointer_of_its_own(tmp_path):
    """A child has none of its parent's threads: the parent's checkpointer, which
    believes its thread is running, must not be the child's."""
    path = (tmp_path / "db.sqlite").resolve()
    parent = checkpointer(path)
    parent._running = True  # as it is while the parent's thread runs
    try:
        with warnings.catch_warnings():
            # (Python 3.12+ warns that a process with threads forks: this child
            # only looks up its checkpointer and exits.)
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: exit code 0 only if it got a new one
            child = checkpointer(path)
            os._exit(0 if child is not parent and child._pid == os.getpid()
                     and not child._running else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert checkpointer(path) is parent  # the parent keeps its own
    finally:
        parent._running = False
