"""While the store cannot be reached: 503 with Retry-After, never a 500.

The errors are simulated here; tests/ops/test_outage.py stops a real server.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg_pool import PoolTimeout

from tests import builders as b
from tests.stores import initialise

STORE_ERRORS = [
    OperationalError("the event store is down"),
    InterfaceError("the event store's connection is closed"),
    psycopg.OperationalError("server closed the connection unexpectedly"),
    PoolTimeout("couldn't get a connection after 1.00 sec"),
]


@pytest.fixture
def store_url(sqlite_url) -> str:
    initialise(sqlite_url)
    return sqlite_url


@pytest.fixture
def app(app):
    # As in production: an error escaping every handler is answered, not raised.
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def assert_unavailable(response) -> None:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json["type"] == "urn:traction-ledger:problem:store-unavailable"
    assert response.headers["X-Request-ID"]


def fail_with(error: Exception):
    def unavailable(*args, **kwargs):
        raise error

    return unavailable


@pytest.mark.parametrize("error", STORE_ERRORS, ids=lambda e: type(e).__name__)
def test_the_event_store_unavailable_is_503(app, client, tokens, monkeypatch, error):
    monkeypatch.setattr(app.extensions["traction"].programmes, "record_events",
                        fail_with(error))
    events = f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}/events"
    assert_unavailable(client.post(events, json=b.started(), headers=tokens.writer_a))


@pytest.mark.parametrize("error", STORE_ERRORS[2:], ids=lambda e: type(e).__name__)
def test_the_token_cache_unable_to_refresh_is_503(app, client, tokens, monkeypatch, error):
    cache = app.extensions["traction.tokens"]
    monkeypatch.setattr(cache.directory, "version", fail_with(error))
    cache.expire()
    assert_unavailable(client.get("/v1/clinics", headers=tokens.admin))


@pytest.mark.parametrize("error", STORE_ERRORS[2:], ids=lambda e: type(e).__name__)
def test_an_audited_read_whose_access_log_cannot_be_written_is_503(
        app, client, tokens, monkeypatch, caplog, error):
    pid = uuid.uuid4()
    programme = f"/v1/clinics/clinic-a/programmes/{pid}"
    assert client.post(programme + "/events", json=b.started(),
                       headers=tokens.writer_a).status_code == 201
    # The access log is written after the view, by an after_request hook:
    # an error there never reaches the view's error handlers.
    monkeypatch.setattr(app.extensions["traction"].directory, "record_access",
                        fail_with(error))
    assert_unavailable(client.get(programme, headers=tokens.auditor))
    # Flask's own line for it names the route, not the path with the ids.
    assert "exception on GET /v1/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>" \
        in caplog.text
    assert str(pid) not in caplog.text


def test_other_errors_outside_the_view_stay_500(app, client):
    def broken_hook(response):
        raise RuntimeError("a bug in a hook")

    app.after_request(broken_hook)
    response = client.get("/healthz")
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["X-Request-ID"]
