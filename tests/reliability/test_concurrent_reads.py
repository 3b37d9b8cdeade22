"""Threads of one worker reading a programme while another thread records to it.

gunicorn runs each worker with several threads (gthread), all sharing one
`Programmes` and so one aggregate cache. eventsourcing 9.5's repository
fast-forwards a cached aggregate in place under a per-aggregate lock, but
deep-copies it for the caller *after* releasing that lock: a reader can copy a
programme while another thread is applying new events to it, and fails with
"RuntimeError: dictionary changed size during iteration" (a 500), or copies
it half-updated. Found by R2 (32 clients on one programme through gunicorn).
Commands on one programme now take turns in a worker (`CommandLocks` in
domain/programme_cache.py), but reads of the current version do not, so a
read still races a command, or another read that fast-forwards.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

import pytest

from domain import errors
from tests import builders as b
from tests.integration.writers import envelope
from tests.stores import initialise, programmes_at

pytestmark = pytest.mark.slow
SECONDS = 3.0


def test_readers_never_see_a_programme_while_it_is_fast_forwarded(sqlite_url):
    initialise(sqlite_url)
    reading = programmes_at(sqlite_url)  # the worker's, with its cache
    writing = programmes_at(sqlite_url)  # another worker
    programme_id = uuid.uuid4()
    # A long history makes each copy slow enough for the race to show at once.
    writing.record_events("clinic-a", programme_id, [envelope(b.started())] + [
        envelope(b.pain(i % 10, 1 + i / 1000)) for i in range(300)])
    failures: list[str] = []
    stop = time.monotonic() + SECONDS

    def read() -> None:
        while time.monotonic() < stop and not failures:
            try:
                reading.programme("clinic-a", programme_id)
            except Exception as error:  # what a view would answer 500 to
                failures.append(repr(error))

    def write() -> None:
        day = 2.0
        while time.monotonic() < stop and not failures:
            day += 0.001
            try:
                writing.record_events("clinic-a", programme_id, [envelope(b.pain(3, day))])
            except errors.ConcurrentWrite:
                continue

    threads = [threading.Thread(target=read) for _ in range(6)] + [threading.Thread(target=write)]
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so that a race shows in seconds
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_interval)
        reading.close()
        writing.close()
    assert not failures, failures[:3]
