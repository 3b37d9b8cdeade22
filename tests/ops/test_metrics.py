"""GET /metrics through the Flask test client (one process: the plain registry).

The counters belong to the process, not to one app, so each test compares
a scrape after with a scrape before.
"""

from __future__ import annotations

import threading
import time
import types
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.http import metrics
from tests import builders as b
from tests.stores import SCRAPE, initialise

EVENTS_ROUTE = "/v1/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>/events"


@pytest.fixture
def store_url(sqlite_url) -> str:
    """Metrics do not depend on the store: SQLite only."""
    initialise(sqlite_url)
    return sqlite_url


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_is_for_the_scrape_token_or_an_admin_plain_text_and_documented(client,
                                                                              tokens):
    response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert client.get("/metrics", headers=tokens.admin).status_code == 200
    # The network's counts (adverse events by type among them) are no clinic's to see.
    for refused, status in (({}, 401), (tokens.viewer_a, 403), (tokens.writer_b, 403),
                            ({"Authorization": "Bearer " + "x" * 40}, 401),
                            ({"Authorization": SCRAPE["Authorization"][:-1]}, 401)):
        answer = client.get("/metrics", headers=refused)
        assert answer.status_code == status
        assert answer.mimetype == "application/problem+json"
        assert b"traction_events_recorded_total" not in answer.data
    operation = client.get("/openapi.json").json["paths"]["/metrics"]["get"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert "TRACTION_METRICS_TOKEN" in operation["description"]
    assert list(operation["responses"]["200"]["content"]) == ["text/plain"]


def test_requests_are_counted_by_route_template_and_status(client, tokens):
    before = scrape(client)
    pid = uuid.uuid4()
    events = f"/v1/clinics/clinic-a/programmes/{pid}/events"
    assert client.post(events, json=b.started(), headers=tokens.writer_a).status_code == 201
    assert client.post(events, json=b.session(1), headers=tokens.writer_a).status_code == 201
    assert client.post(events, json={"events": []}, headers=tokens.writer_a).status_code == 422
    assert client.post(events, json=b.session(2)).status_code == 401
    assert client.get(f"/nowhere/{pid}").status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    posts = {"method": "POST", "route": EVENTS_ROUTE}
    assert delta("traction_http_requests_total", **posts, status="201") == 2
    assert delta("traction_http_requests_total", **posts, status="422") == 1
    assert delta("traction_http_requests_total", **posts, status="401") == 1
    assert delta("traction_http_requests_total", method="GET", route="unmatched",
                 status="404") == 1
    assert delta("traction_http_request_duration_seconds_count", **posts, status="201") == 2
    assert delta("traction_http_request_duration_seconds_bucket", **posts, status="201",
                 le="+Inf") == 2
    # No concrete path, and so no id, in any label.
    assert not [key for key in after if str(pid) in str(key)]


def test_events_recorded_by_type_and_idempotent_replays(client, tokens):
    before = scrape(client)
    events = f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}/events"
    batch = {"events": [b.started(), b.session(1), b.session(2), b.pain(4, 2)]}
    assert client.post(events, json=batch, headers=tokens.writer_a).status_code == 201
    assert client.post(events, json=batch, headers=tokens.writer_a).status_code == 200
    # A severe adverse event also records a ProgrammePaused in the same save.
    assert client.post(events, json=b.adverse("severe", 3),
                       headers=tokens.writer_a).status_code == 201
    after = scrape(client)

    def recorded(type_: str) -> float:
        return (value(after, "traction_events_recorded_total", type=type_)
                - value(before, "traction_events_recorded_total", type=type_))

    assert recorded("ProgrammeStarted") == 1
    assert recorded("SessionCompleted") == 2
    assert recorded("PainReported") == 1
    assert recorded("AdverseEventReported") == 1
    assert recorded("ProgrammePaused") == 1
    assert (value(after, "traction_idempotent_replays_total")
            - value(before, "traction_idempotent_replays_total")) == 1


def test_conflicts_are_counted_by_kind(client, tokens):
    before = scrape(client)
    pid = uuid.uuid4()
    events = f"/v1/clinics/clinic-a/programmes/{pid}/events"
    start = b.started()
    assert client.post(events, json=start, headers=tokens.writer_a).status_code == 201
    stale = {"events": [b.session(1)], "expected_version": 0}
    assert client.post(events, json=stale, headers=tokens.writer_a).status_code == 409
    reused = {**start, "recorded_by": "someone.else"}
    assert client.post(events, json=reused, headers=tokens.writer_a).status_code == 409
    assert client.post(events, json=stale, headers=tokens.writer_a).status_code == 409
    after = scrape(client)

    def conflicts(kind: str) -> float:
        return (value(after, "traction_conflicts_total", kind=kind)
                - value(before, "traction_conflicts_total", kind=kind))

    assert conflicts("version-conflict") == 2
    assert conflicts("event-id-conflict") == 1


def test_projection_lag_set_by_the_projection_code(client):
    metrics.set_projection_lag("test-summaries", position=120, lag_events=3, lag_seconds=0.25)
    metrics.set_projection_lag("test-summaries", position=None, lag_events=0, lag_seconds=None)
    samples = scrape(client)
    assert value(samples, "traction_projection_position", projection="test-summaries") == 120
    assert value(samples, "traction_projection_lag_events", projection="test-summaries") == 0
    assert value(samples, "traction_projection_lag_seconds",
                 projection="test-summaries") == 0.25


def test_each_scrape_reads_the_projections_status(client, tokens):
    events = f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}/events"
    batch = {"events": [b.started(), b.session(1)]}
    assert client.post(events, json=batch, headers=tokens.writer_a).status_code == 201
    samples = scrape(client)
    # No runner here: the projection has processed nothing, two events wait.
    assert value(samples, "traction_projection_position", projection="dashboards") == 0
    assert value(samples, "traction_projection_lag_events", projection="dashboards") == 2
    assert value(samples, "traction_projection_lag_seconds", projection="dashboards") >= 0


def test_a_slow_projection_status_delays_a_scrape_by_its_wait_at_most(client, monkeypatch):
    release = threading.Event()

    def stuck(application, read_models):
        release.wait(10)
        return [types.SimpleNamespace(name="test-stuck", position=5, lag_events=1,
                                      lag_seconds=2.0)]

    monkeypatch.setattr(metrics, "all_statuses", stuck)
    monkeypatch.setattr(metrics, "PROJECTION_STATUS_WAIT", 0.2)
    try:
        started = time.monotonic()
        assert client.get("/metrics", headers=SCRAPE).status_code == 200
        # No second refresh meanwhile:
        assert client.get("/metrics", headers=SCRAPE).status_code == 200
        assert 0.2 <= time.monotonic() - started < 1
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while metrics._refreshing.locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    samples = scrape(client)
    assert value(samples, "traction_projection_position", projection="test-stuck") == 5


def test_a_failing_projection_status_never_fails_the_scrape(client, monkeypatch, caplog):
    def failing(application, read_models):
        raise RuntimeError("the store is down")

    monkeypatch.setattr(metrics, "all_statuses", failing)
    assert client.get("/metrics", headers=SCRAPE).status_code == 200
    assert "projection status unavailable for /metrics: the store is down" in caplog.text
