"""R3: schemathesis against /openapi.json, all checks, authenticated: no server
error, no answer that the document does not describe. A few hundred cases
here (in-process, through the WSGI loader); thousands in `make soak`.
"""

from __future__ import annotations

import random
import threading
import uuid

import pytest

from service.http.api.context import READER
from tests import builders as b
from tests.reliability import fuzzing

pytestmark = pytest.mark.slow
#: Per operation and mode (positive, negative): 17 operations make ~400 cases.
MAX_EXAMPLES = 12


@pytest.fixture
def known(app, client, tokens) -> fuzzing.Known:
    programme_ids = []
    for _ in range(3):
        programme_id = uuid.uuid4()
        answer = client.post(f"/v1/clinics/clinic-a/programmes/{programme_id}/events",
                             json={"events": [b.started(), b.session(1), b.pain(5, 2)]},
                             headers=tokens.writer_a)
        assert answer.status_code == 201
        programme_ids.append(str(programme_id))
    spare = [tokens.issue("viewer", "clinic-a", "spare")["X-Token-Id"] for _ in range(5)]
    return fuzzing.Known(
        clinic_id="clinic-a",
        programme_ids=programme_ids,
        spare_token_ids=spare,
        authorization={
            "writer": tokens.writer_a["Authorization"],
            "viewer": tokens.viewer_all["Authorization"],
            "auditor": tokens.auditor["Authorization"],
            "admin": tokens.admin["Authorization"],
        },
    )


def test_every_operation_survives_fuzzing(app, known, monkeypatch):
    # No projection runs here: a ?min_position= ahead of it waits the whole
    # bounded time (2 s by default) before its 503. A shorter wait, same answer.
    monkeypatch.setattr(app.extensions[READER], "min_position_wait", 0.05)
    report = fuzzing.fuzz(fuzzing.load_wsgi(app), known, max_examples=MAX_EXAMPLES, seed=3)
    assert not report.failures, "\n\n".join(f"{k}:\n{v}" for k, v in report.failures.items())
    assert report.total >= 200, report.cases
    assert any(status == 201 for (_, status) in report.cases), "no case was ever recorded"


def test_fuzzing_is_not_upset_by_the_apps_threads_using_the_global_random(app, known,
                                                                          monkeypatch):
    """The app's PostgreSQL pool uses the global `random` in its own threads;
    should it do so while hypothesis draws a case, the case must not fail
    (tests/reliability/fuzzing.py). Here a thread uses it all the time."""
    monkeypatch.setattr(app.extensions[READER], "min_position_wait", 0.05)
    stop = threading.Event()

    def use_the_global_random() -> None:
        while not stop.is_set():
            random.random()

    user = threading.Thread(target=use_the_global_random, daemon=True)
    user.start()
    try:
        report = fuzzing.fuzz(fuzzing.load_wsgi(app), known, max_examples=2, seed=3)
    finally:
        stop.set()
        user.join()
    assert not report.failures, "\n\n".join(f"{k}:\n{v}" for k, v in report.failures.items())
    assert sum(report.cases.values()) > 0
