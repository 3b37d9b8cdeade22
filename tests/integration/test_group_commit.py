"""Group commit: one worker's concurrent saves share a transaction, and a
save that fails inside a group fails alone."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict

from domain import errors
from domain.application import Programmes
from tests import builders as b
from tests.integration.writers import envelope
from tests.stores import programmes_at

THREADS = 8
ROUNDS = 15


def test_concurrent_saves_are_grouped_and_each_keeps_its_guarantees(store_url):
    app = programmes_at(store_url)
    try:
        programmes = [uuid.uuid4() for _ in range(THREADS)]
        for pid in programmes:
            app.record_events("clinic-a", pid, [envelope(b.started())])
        reused = envelope(b.session(1))
        app.record_events("clinic-a", programmes[0], [reused])
        outcomes: dict[str, list[str]] = defaultdict(list)
        barrier = threading.Barrier(THREADS)

        def write(index: int) -> None:
            pid = programmes[index]
            for round_ in range(ROUNDS):
                barrier.wait()
                if index == 0 and round_ % 5 == 0:
                    # The same event_id with other content, inside a group: 409 for it alone.
                    clash = envelope({**b.session(2), "event_id": str(reused.event_id)})
                    try:
                        app.record_events("clinic-a", pid, [clash])
                        outcomes[pid.hex].append("recorded")
                    except errors.EventIdConflict:
                        outcomes[pid.hex].append("conflict")
                    continue
                app.record_events("clinic-a", pid, [envelope(b.session(1 + round_ / 100))])
                outcomes[pid.hex].append("recorded")

        threads = [threading.Thread(target=write, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert outcomes[programmes[0].hex].count("conflict") == 3
        for index, pid in enumerate(programmes):
            expected = ROUNDS + 1 - (3 if index == 0 else 0) + (1 if index == 0 else 0)
            assert app.programme("clinic-a", pid).version == expected
        # Saves of different programmes in one transaction share a record time.
        entries = [e for pid in programmes for e in app.ledger.entries_of_programme(pid)]
        by_time: dict[object, set] = defaultdict(set)
        for entry in entries:
            by_time[entry.recorded_at].add(entry.programme_id)
        assert max(len(pids) for pids in by_time.values()) > 1, "no save was grouped"
        positions = sorted(e.position for e in entries)
        assert positions == list(range(1, len(positions) + 1))
    finally:
        app.close()


def test_groups_survive_another_worker_overtaking_some_of_their_saves(store_url):
    """Two applications (two workers) race on the same programmes: when one
    overtakes a save inside the other's group, only that save fails and is
    re-run; every event ends up recorded once, versions contiguous."""
    workers = [programmes_at(store_url)
               for _ in range(2)]
    try:
        programmes = [uuid.uuid4() for _ in range(4)]
        for pid in programmes:
            workers[0].record_events("clinic-a", pid, [envelope(b.started())])
        posted: dict[uuid.UUID, list[str]] = defaultdict(list)
        guard = threading.Lock()
        barrier = threading.Barrier(8)

        def write(app: Programmes, pid: uuid.UUID) -> None:
            for round_ in range(ROUNDS):
                barrier.wait()
                event = envelope(b.session(1 + round_ / 100))
                app.record_events("clinic-a", pid, [event])
                with guard:
                    posted[pid].append(str(event.event_id))

        threads = [threading.Thread(target=write, args=(app, pid))
                   for app in workers for pid in programmes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for pid in programmes:
            history = workers[1].history("clinic-a", pid)
            assert [e["version"] for e in history] == list(range(1, 2 * ROUNDS + 2))
            assert sorted(e["event_id"] for e in history[1:]) == sorted(posted[pid])
    finally:
        for app in workers:
            app.close()
