"""`?min_position` waits are bounded per token and per worker: the excess is
answered at once (503 too-many-waits, Retry-After), so one token asking for a
position far ahead cannot hold a worker's threads (real app, both stores).

"At once" is checked by order, not by a time limit: the excess is answered
while the read that took the slot is still waiting (its wait lasts WAIT), so a
slow or busy machine cannot fail the tests, and a refusal that waited would."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from projections.reading import TooManyWaits, WaitSlots
from service.http.app import create_app
from tests.conftest import Tokens
from tests.stores import components_at

WAIT = 2.0
FAR_AHEAD = 10**12


@pytest.fixture
def bounded(store_url):
    components = components_at(store_url, min_position_wait=WAIT, min_position_waiters=2,
                               min_position_waiters_per_token=1)
    app = create_app(components)
    app.config["TESTING"] = True
    yield app, Tokens(components.directory)
    components.close()


def read(app, headers, path="/v1/dashboard", **query):
    """A read of the network's dashboard, whose positions are the global log's (on a
    clinic's routes a position beyond the clinic's events has nothing to wait for):
    (response, seconds it took, when it was answered)."""
    began = time.monotonic()
    response = app.test_client().get(path, headers=headers, query_string=query)
    answered = time.monotonic()
    return response, answered - began, answered


def test_one_token_far_ahead_waits_once_and_the_rest_are_refused_at_once(bounded):
    app, tokens = bounded
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: read(app, tokens.viewer_all, min_position=FAR_AHEAD),
                                range(8)))
    waited = [a for a in answers if a[0].json["type"].endswith("projection-behind")]
    refused = [a for a in answers if a[0].json["type"].endswith("too-many-waits")]
    assert len(waited) == 1 and len(refused) == 7
    _, waited_seconds, waited_answered = waited[0]
    assert WAIT * 0.9 <= waited_seconds < WAIT + 1.0
    for response, _, answered in refused:
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.mimetype == "application/problem+json"
        assert answered < waited_answered  # while the one read waited


def test_a_worker_lets_only_so_many_wait_and_other_clinics_are_answered_meanwhile(bounded):
    app, tokens = bounded
    other = [tokens.issue("viewer", None) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        waits = [pool.submit(read, app, headers, min_position=FAR_AHEAD) for headers in other]
        time.sleep(WAIT / 4)
        dashboard, _, answered = read(app, tokens.viewer_b, "/v1/clinics/clinic-b/dashboard")
        answers = [future.result() for future in waits]
    assert dashboard.status_code == 200
    kinds = sorted(r.json["type"].rsplit(":", 1)[-1] for r, _, _ in answers)
    assert kinds == ["projection-behind", "projection-behind", "too-many-waits"]
    # Answered while both slots were taken by reads that waited WAIT.
    waited = [(seconds, when) for r, seconds, when in answers
              if r.json["type"].endswith("projection-behind")]
    assert all(seconds >= WAIT * 0.9 and answered < when for seconds, when in waited)


def test_a_read_that_needs_no_wait_takes_no_slot(bounded):
    app, tokens = bounded
    blocked: list[tuple] = []
    blocker = threading.Thread(target=lambda: blocked.append(
        read(app, tokens.viewer_all, min_position=FAR_AHEAD)))
    blocker.start()
    time.sleep(WAIT / 4)
    response, _, answered = read(app, tokens.viewer_all, min_position=0)
    blocker.join()
    assert response.status_code == 200
    # Answered while the token's one slot was taken by a read that waited WAIT.
    (waiting, waited_seconds, waited_answered), = blocked
    assert waiting.json["type"].endswith("projection-behind") and waited_seconds >= WAIT * 0.9
    assert answered < waited_answered


def test_slots_are_given_back_after_each_wait():
    slots = WaitSlots(per_worker=1, per_caller=1)
    with slots.held("t"):
        with pytest.raises(TooManyWaits), slots.held("u"):
            pass
    with slots.held("u"):
        assert slots.waiting() == 1
    assert slots.waiting() == 0
