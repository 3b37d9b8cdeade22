"""R1 (ingest): gunicorn workers killed with SIGKILL every ~0.5 s during
sustained ingest through real HTTP; every event acknowledged is stored
exactly once, versions and positions stay contiguous.

The long version is `make soak` (tests/reliability/soak.py).
"""

from __future__ import annotations

import pytest

from tests.reliability.ingest import CHECKS_AFTER_CRASHES, ingest_under_kills
from tests.reliability.live import live_service

pytestmark = pytest.mark.slow


def test_killing_workers_during_ingest_loses_and_doubles_nothing(store_url):
    with live_service(store_url, workers=3) as (server, tokens):
        report = ingest_under_kills(server, tokens, seconds=8, clients=6, seed=1)
        server.wait_until_serving()
        assert not report.failures, report.failures[:5]
        assert report.kills >= 8, f"only {report.kills} workers were killed"
        assert report.connection_errors > 0, "no post was cut off by a kill: nothing tested"
        # Workers take 1.5-3 s to boot and live ~1.5 s here: ingest is slow, not stopped.
        assert report.acknowledged_events >= 20, report.statuses
        for check in CHECKS_AFTER_CRASHES:
            check(store_url, server, tokens, report)
