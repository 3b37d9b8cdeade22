"""A retry storm through gunicorn (the quick version of BENCHMARKS.md's P9), on both stores.

Pairs of clients post the same events at the same moment, as a client that
retries while its first attempt is still in flight does, and each client also
posts some of its earlier events again (random duplicates). Every post is
answered 201 or 200 with the original receipt: never a 5xx, never a 409, never
a retried conflict; every event is stored once. (On PostgreSQL a duplicate
used to fail as the pipeline's OperationalError, retried ten times, 0.2 s
apart, holding the worker's group commit: 503s and seconds-long answers.)
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict
from typing import Any

import pytest

from tests import builders as b
from tests.reliability import invariants
from tests.reliability.contention import CLINIC, programme_path, start_programme
from tests.reliability.live import Client

pytestmark = pytest.mark.slow
PAIRS = 6
EVENTS = 12
#: The share of posts followed by a repeat of an earlier event of the same client.
DUPLICATE_SHARE = 0.2


def test_posts_repeated_in_flight_are_answered_with_the_original_receipt(live):
    programmes = [start_programme(live.server, live.tokens)[0] for _ in range(PAIRS)]
    events = [[b.session(1 + i / 100 + pair / 10_000) for i in range(EVENTS)]
              for pair in range(PAIRS)]
    barriers = [threading.Barrier(2) for _ in range(PAIRS)]
    answers: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
    failures: list[str] = []
    guard = threading.Lock()

    def run(index: int) -> None:
        pair, rng = index // 2, random.Random(index)
        path = programme_path(programmes[pair]) + "/events"
        client = Client(live.server.port, live.tokens.writer[CLINIC])
        try:
            client.once("GET", "/healthz")  # connected before the first post
            for number, event in enumerate(events[pair]):
                barriers[pair].wait(timeout=60)
                posts = [event]
                if number and rng.random() < DUPLICATE_SHARE:
                    posts.append(events[pair][rng.randrange(number)])
                for posted in posts:
                    answer = client.once("POST", path, {"events": [posted]})
                    with guard:
                        answers[posted["event_id"]].append((answer.status, answer.raw))
        except Exception as error:  # reported to the test below
            with guard:
                failures.append(repr(error))
            for barrier in barriers:
                barrier.abort()
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2 * PAIRS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]

    receipts: list[dict[str, Any]] = []
    for event_id, answered in answers.items():
        statuses = sorted(status for status, _ in answered)
        assert statuses == [200] * (len(answered) - 1) + [201], (event_id, statuses)
        assert len({raw for _, raw in answered}) == 1, "a replay differs from the receipt"
        receipts.append(json.loads(answered[0][1]))
    assert len(answers) == PAIRS * EVENTS

    log = invariants.read_stored_log(live.database_url)
    invariants.check_log_shape(log)
    invariants.check_receipts(log, receipts)
    for pair, programme_id in enumerate(programmes):
        stored = [e for e in log.ledger if e.programme_id == str(programme_id)]
        assert [e.version for e in stored] == list(range(1, EVENTS + 2))
        assert [e.event_id for e in stored[1:]] == [e["event_id"] for e in events[pair]]
    assert not live.server.errors_logged(), live.server.errors_logged()
    # A conflict is never retried as if the store had failed (service/storage/errors.py
    # logs every retried write).
    assert "a write to the store failed" not in live.server.log_path.read_text()
    # Not a bar (the machine is shared), a clue when it fails: seconds for the storm.
    print(f"retry storm: {sum(map(len, answers.values()))} posts in "
          f"{time.monotonic() - started:.1f} s")
