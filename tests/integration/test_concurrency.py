"""Several processes writing to one programme at once, on both stores."""

from __future__ import annotations

import multiprocessing
import uuid

import pytest

from domain.application import Programmes
from tests import builders as b
from tests.integration import writers
from tests.stores import programmes_at

pytestmark = pytest.mark.slow
PROCESSES = 4
EACH = 15


def start_programme(url: str) -> tuple[Programmes, uuid.UUID]:
    app = programmes_at(url)
    pid = uuid.uuid4()
    app.record_events("clinic-a", pid, [writers.envelope(b.started())])
    return app, pid


def check_log(app: Programmes, pid: uuid.UUID, expected_ids: list[str]) -> None:
    history = app.history("clinic-a", pid)
    versions = [e["version"] for e in history]
    assert versions == list(range(1, len(expected_ids) + 2)), "versions not contiguous from 1"
    ids = [e["event_id"] for e in history[1:]]
    assert sorted(ids) == sorted(expected_ids), "events lost or doubled"
    positions = [e["position"] for e in history]
    assert sorted(positions) == list(range(1, len(history) + 1)), "positions not gap-free"
    assert positions == sorted(positions), "positions not in version order"


@pytest.mark.parametrize("use_expected_version", [False, True],
                         ids=["retry-on-conflict", "expected-version"])
def test_concurrent_writers_lose_and_double_nothing(store_url, use_expected_version):
    app, pid = start_programme(store_url)
    try:
        context = multiprocessing.get_context("spawn")
        with context.Pool(PROCESSES) as pool:
            results = pool.starmap(writers.post_sessions, [
                (store_url, str(pid), EACH, seed, use_expected_version)
                for seed in range(PROCESSES)
            ])
        posted = [event_id for batch in results for event_id in batch]
        assert len(posted) == PROCESSES * EACH
        check_log(app, pid, posted)
    finally:
        app.close()


def test_the_same_event_posted_in_parallel_is_recorded_once(store_url):
    app, pid = start_programme(store_url)
    try:
        event = b.session(1)
        context = multiprocessing.get_context("spawn")
        with context.Pool(PROCESSES) as pool:
            outcomes = pool.starmap(writers.post_same_event,
                                    [(store_url, str(pid), event)] * (PROCESSES * 2))
        assert outcomes.count("recorded") == 1
        assert outcomes.count("replayed") == PROCESSES * 2 - 1
        check_log(app, pid, [event["event_id"]])
    finally:
        app.close()
