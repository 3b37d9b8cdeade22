"""R2: 32 concurrent HTTP clients on one programme through gunicorn, with
expected_version and retries on 409; the same event_id posted in parallel.
Versions contiguous from 1, nothing lost or doubled, every duplicate recorded once.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests import builders as b
from tests.reliability import invariants
from tests.reliability.contention import (
    programme_path,
    race_on_one_programme,
    same_post_in_parallel,
    start_programme,
)

pytestmark = pytest.mark.slow
CLIENTS = 32


EACH = 2


def test_32_clients_with_expected_version_lose_and_double_nothing(live):
    programme_id, report = race_on_one_programme(live.server, live.tokens, clients=CLIENTS,
                                                 each=EACH)
    assert not report.failures, report.failures[:5]
    assert report.statuses[201] == CLIENTS * EACH
    assert report.conflicts["version-conflict"] > 0, "no client ever lost a race"

    log = invariants.read_stored_log(live.database_url)
    invariants.check_log_shape(log)
    invariants.check_receipts(log, report.receipts)
    stored = [e for e in log.ledger if e.programme_id == str(programme_id)]
    assert [e.version for e in stored] == list(range(1, CLIENTS * EACH + 2))
    assert sorted(e.event_id for e in stored[1:]) == sorted(report.posted)
    # One receipt per version: each post won exactly the version it expected.
    assert sorted(r["version"] for r in report.receipts) == list(range(2, CLIENTS * EACH + 2))


@pytest.mark.parametrize("kind", ["new-programme", "one-event", "batch-with-derived-pause"])
def test_the_same_post_in_parallel_is_recorded_once(live, kind):
    server, tokens = live.server, live.tokens
    if kind == "new-programme":
        programme_id = uuid.uuid4()
        body = {"events": [b.started(), b.session(1)]}
    else:
        programme_id, _ = start_programme(server, tokens)
        events = [b.session(1)]
        if kind == "batch-with-derived-pause":
            events += [b.pain(4, 1.5), b.adverse("severe", 2)]
        body = {"events": events}
    answers = same_post_in_parallel(server, tokens, programme_path(programme_id) + "/events",
                                    body, CLIENTS)

    statuses = sorted(a.status for a in answers)
    assert statuses == [200] * (CLIENTS - 1) + [201], statuses
    assert len({a.raw for a in answers}) == 1, "the replays' bodies differ from the receipt"
    receipt = json.loads(answers[0].raw)

    log = invariants.read_stored_log(live.database_url)
    invariants.check_log_shape(log)
    invariants.check_receipts(log, [receipt])
    posted = {e["event_id"] for e in body["events"]}
    assert sum(e.event_id in posted for e in log.ledger) == len(posted)
    expected_types = [e["type"] for e in body["events"]]
    if kind == "batch-with-derived-pause":
        expected_types.append("ProgrammePaused")
    assert [r["type"] for r in receipt["recorded"]] == expected_types
    stored = [e for e in log.ledger if e.programme_id == str(programme_id)]
    assert len(stored) == receipt["version"]
