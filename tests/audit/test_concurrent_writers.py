"""The chain holds when several processes write at once: positions and
hashes are assigned under the store's write lock, in commit order."""

from __future__ import annotations

import multiprocessing
import uuid

import pytest

from tests.audit.conftest import KEY, auditor_client, cli_verify
from tests.audit.history import as_envelope, write_concurrently
from tests.builders import started
from tests.stores import programmes_at

pytestmark = pytest.mark.slow

PROCESSES = 4
PROGRAMMES = 12  # per process
LENGTH = 40  # events per programme
SHARED_SESSIONS = 25  # per process, all on one programme


def test_thousands_of_events_written_concurrently_verify(store_url, tmp_path):

    shared = uuid.uuid4()
    app = programmes_at(store_url)
    try:
        app.record_events("clinic-a", shared, [as_envelope(started())])
    finally:
        app.close()

    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        counts = pool.starmap(write_concurrently, [
            (store_url, worker, PROGRAMMES, LENGTH, str(shared), SHARED_SESSIONS)
            for worker in range(PROCESSES)
        ])
    total = 1 + sum(counts)
    assert total == 1 + PROCESSES * (PROGRAMMES * LENGTH + SHARED_SESSIONS) >= 2000

    checkpoint_log = tmp_path / "checkpoints.jsonl"
    report = cli_verify(store_url, log=checkpoint_log)
    assert report["ok"], report["failure"]
    assert report["events_checked"] == total
    assert report["head"]["position"] == total
    with auditor_client(store_url, checkpoint_key=KEY,
                        checkpoint_log=checkpoint_log) as (client, auditor):
        over_http = client.get("/v1/audit/verify", headers=auditor).json
    assert over_http["ok"] and over_http["events_checked"] == total
