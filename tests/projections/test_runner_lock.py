"""The runner lock on PostgreSQL, where rival runners may run on other hosts.

The lock is a session advisory lock, so it lasts as long as its session.
These tests end that session as the world would (an operator's
pg_terminate_backend, the lease running out) and check that a standby takes
the lock at once, and that the runner which lost it writes nothing more —
not even a batch it had started before it lost it, unless that batch
commits before the new runner reads its position.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from projections.decoding import decode
from projections.locks import LockLost, ProjectionLock
from projections.runner import VersionSession
from projections.store import DEFAULT_PROJECTION, open_read_models
from service.storage.stores import parse_database_url
from tests.projections.history import busy_log, save
from tests.stores import initialise, programmes_at

pytestmark = pytest.mark.postgres

NAME = DEFAULT_PROJECTION
PURPOSE = f"runner:{NAME}"
#: The issue's bound for a standby to take over.
TAKEOVER_WITHIN = 5.0


@pytest.fixture
def store(postgres_url):
    initialise(postgres_url)
    application = programmes_at(postgres_url)
    head = save(application, busy_log(programmes=6, events=20, seed=5))
    yield postgres_url, application, head
    application.close()


def admin(url: str) -> psycopg.Connection:
    return psycopg.connect(parse_database_url(url).conninfo(), autocommit=True)


def holder(url: str, lock: ProjectionLock) -> int | None:
    """The server process (backend pid) of the session holding the lock, if any."""
    with admin(url) as connection:
        row = connection.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid::bigint = (%s::bigint >> 32) & 4294967295 "
            "AND objid::bigint = %s::bigint & 4294967295 AND objsubid = 1",
            (lock.key, lock.key)).fetchone()
    return row[0] if row else None


def terminate(url: str, pid: int) -> None:
    with admin(url) as connection:
        assert connection.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def new_lock(url: str, **kwargs) -> ProjectionLock:
    return ProjectionLock(parse_database_url(url), PURPOSE, **kwargs)


def test_a_standby_takes_the_lock_when_the_holders_session_is_terminated(store):
    url, _application, _head = store
    active, standby = new_lock(url), new_lock(url)
    assert active.try_acquire()
    taken: list[float] = []
    thread = threading.Thread(
        target=lambda: standby.acquire(wait=True) and taken.append(time.monotonic()))
    try:
        thread.start()
        time.sleep(1.5)  # the standby waits in the server, a query at a time
        assert not taken
        first = holder(url, active)
        terminated_at = time.monotonic()
        terminate(url, first)
        thread.join(TAKEOVER_WITHIN)
        assert taken, "the standby did not take the lock"
        assert taken[0] - terminated_at < TAKEOVER_WITHIN
        assert holder(url, standby) not in (None, first)
        # The runner that lost it finds out at its next heartbeat.
        with pytest.raises(LockLost):
            active.verify()
    finally:
        standby.release()
        active.release()
        thread.join(5)


def test_a_runner_that_stops_touching_its_lock_loses_it_after_the_lease(store):
    url, _application, _head = store
    hung = new_lock(url, lease=1.0)
    assert hung.try_acquire()
    try:
        hung.verify()  # touched: the lease starts again
        rival = new_lock(url)
        assert not rival.try_acquire()
        deadline = time.monotonic() + 10
        while not rival.try_acquire():
            assert time.monotonic() < deadline, "the lease never ran out"
            time.sleep(0.2)
        rival.release()
        with pytest.raises(LockLost):
            hung.verify()
    finally:
        hung.release()


def test_a_runner_that_lost_its_lock_writes_nothing_more(store):
    url, application, head = store
    read_models = open_read_models(application)
    lock = new_lock(url)
    assert lock.try_acquire()
    try:
        version = read_models.versions(NAME)[0]
        session = VersionSession(application, read_models, NAME, version, fence=lock.fence)
        recorder = application.recorder
        session.apply(recorder.select_notifications(start=1, limit=10))
        assert read_models.live_position(NAME)[1] == 10
        terminate(url, holder(url, lock))
        with pytest.raises(LockLost):
            session.apply(recorder.select_notifications(start=11, limit=10))
        assert read_models.live_position(NAME)[1] == 10
    finally:
        lock.release()


def test_a_batch_in_flight_when_the_lock_moves_commits_before_the_new_runner_reads(store):
    """The race the fence alone cannot close: the old runner's write passed its
    fence, then its lock session ended and a standby took the lock. The new
    runner must not read its position until that write has committed (or it
    would apply the same events again on top of it)."""
    url, application, head = store
    read_models = open_read_models(application)
    old, new = new_lock(url), new_lock(url)
    assert old.try_acquire()
    settled: list[float] = []
    try:
        version = read_models.versions(NAME)[0]
        session = VersionSession(application, read_models, NAME, version, fence=old.fence)
        changes = session.engine.process(decode(
            application.mapper, application.recorder.select_notifications(start=1, limit=25)))
        with read_models.writing() as cursor:
            read_models.write_in(cursor, NAME, version, changes, fence=old.fence)
            # Written and fenced, not yet committed: now the lock moves.
            terminate(url, holder(url, old))
            assert new.acquire(wait=True)

            def take_over() -> None:
                read_models.settle_writers(NAME)
                settled.append(time.monotonic())

            thread = threading.Thread(target=take_over)
            thread.start()
            time.sleep(0.5)
            assert not settled, "the new runner read its position under a write in flight"
            committing = time.monotonic()
        thread.join(10)
        assert settled and settled[0] >= committing
        # It now starts from the old runner's last batch: nothing is applied twice.
        assert read_models.live_position(NAME)[1] == 25
    finally:
        new.release()
        old.release()
