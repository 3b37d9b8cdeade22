"""The runner as operators run it: `traction projections run` in its own process.

- SIGKILL in the middle of a batch, again and again, then a restart: the read
  models equal (digest) a rebuild from scratch, and count every event once.
- A second runner on the same projection does not start a second writer: it
  exits (--no-wait) or waits as a standby and takes over when the lock frees.
- A saved event reaches the read models quickly (the follower, not a poll of
  seconds).
"""

from __future__ import annotations

import json
import time
from threading import Thread

import pytest

from projections.locks import ProjectionLock
from projections.store import DEFAULT_PROJECTION, open_read_models
from service.storage.stores import parse_database_url
from tests.projections.history import busy_log, save
from tests.projections.runners import RunnerProcess, wait_until
from tests.stores import RunnerAt, programmes_at, rebuild_at

NAME = DEFAULT_PROJECTION


@pytest.fixture
def start(tmp_path):
    started: list[RunnerProcess] = []

    def start_runner(url: str, *args: str, delay: float | None = None) -> RunnerProcess:
        runner = RunnerProcess(url, *args, delay=delay, logs=tmp_path)
        started.append(runner)
        return runner

    yield start_runner
    for runner in started:  # none outlives its test
        if runner.poll() is None:
            runner.kill()
            runner.wait()


@pytest.fixture
def store(store_url):
    """The store with a busy interleaved history of two clinics."""
    application = programmes_at(store_url)
    log = busy_log(programmes=16, events=50, seed=3)
    head = save(application, log)
    yield store_url, application, head, log
    application.close()


def test_kill_9_mid_batch_then_restart_equals_a_rebuild(store, start):
    url, application, head, log = store
    read_models = open_read_models(application)
    seen = []
    # Each batch of 40 events waits 60 ms inside its transaction, before its
    # commit: kills at these moments after a commit land inside the next batch,
    # at its end, and in the one after.
    for pause in (0.01, 0.035, 0.07, 0.1):
        runner = start(url, "--batch-size", "40", delay=0.06)
        before = read_models.live_position(NAME)[1]
        wait_until(lambda: read_models.live_position(NAME)[1] > before)  # noqa: B023
        committed = read_models.live_position(NAME)[1]
        time.sleep(pause)
        runner.kill()
        runner.wait()
        after = read_models.live_position(NAME)[1]
        assert committed <= after < head  # killed part-way, with a batch in flight
        seen.append(after)
    assert seen == sorted(seen)

    done = start(url, "--once")
    assert done.wait() == 0, done.stderr()
    version, position = read_models.live_position(NAME)
    assert position == head
    restarted = read_models.digest(NAME, version)

    # Every session once: the network's count is the log's count.
    totals = json.loads(read_models.network(NAME)[2])
    sessions = sum(1 for r in log.records if r.type == "SessionCompleted")
    assert totals["sessions_completed"] == sessions

    report = rebuild_at(url, progress=False, grace=0)
    assert report.new_version == version + 1
    assert read_models.live_position(NAME) == (report.new_version, head)
    assert read_models.digest(NAME, report.new_version) == restarted


def test_a_second_runner_does_not_start_while_one_is_active(store, start):
    url, application, head, _log = store
    read_models = open_read_models(application)
    active = ProjectionLock(parse_database_url(url), f"runner:{NAME}")
    assert active.try_acquire()  # as an active runner holds it
    try:
        second = start(url, "--no-wait")
        assert second.wait() == 3
        assert "another runner is active" in second.stderr()
        standby = RunnerAt(url)
        thread = Thread(target=standby.run)
        thread.start()
        try:
            time.sleep(0.5)
            assert read_models.live_position(NAME)[1] == 0  # waiting, not writing
            active.release()
            # The standby takes over once the lock is free.
            wait_until(lambda: read_models.live_position(NAME)[1] == head)
        finally:
            standby.stop.set()
            thread.join(timeout=30)
    finally:
        active.release()


def test_a_save_reaches_the_read_models_within_moments(store):
    url, application, head, _log = store
    runner = RunnerAt(url)
    thread = Thread(target=runner.run)
    thread.start()
    try:
        assert runner.caught_up.wait(timeout=30)
        read_models = open_read_models(application)
        from tests.projections.history import Log

        latencies = []
        for n in range(8):
            log = Log()
            log.programme("clinic-a").pain(1, 3)
            began = time.perf_counter()
            position = save(application, log)
            wait_until(lambda: read_models.live_position(NAME)[1] >= position,  # noqa: B023
                       timeout=10, every=0.002)
            latencies.append(time.perf_counter() - began)
            assert position == head + 2 * (n + 1)
        latencies.sort()
        # Far below the library's ~100 ms poll on a quiet machine; generous here
        # because the CI machine is shared.
        assert latencies[len(latencies) // 2] < 0.5, latencies
    finally:
        runner.stop.set()
        thread.join(timeout=30)
