"""Another clinic's programme answers exactly as a missing one, on every write
and read path, and is never loaded to find out whose it is (both stores).

Whether a path loads the programme before checking its clinic is shown without
timing anything: clinic B's history is made unreadable behind the service's
back, so any path that loads it first answers differently from a missing one.
The time itself is measured by `python -m bench.tenancy`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from service.http.app import create_app
from tests import builders as b
from tests.api.test_bulk import NDJSON, answered, line, ndjson
from tests.audit.conftest import StoreSQL
from tests.stores import components_at

A = "/v1/clinics/clinic-a"


def start_b(client, tokens) -> uuid.UUID:
    programme_id = uuid.uuid4()
    response = client.post(f"/v1/clinics/clinic-b/programmes/{programme_id}/events",
                           json={"events": [b.started(), b.session(1), b.session(2)]},
                           headers=tokens.writer_b)
    assert response.status_code == 201, response.json
    return programme_id


def same_answer(first, second) -> None:
    assert first.status_code == second.status_code
    assert first.get_data() == second.get_data()


def write(client, tokens, programme_id, body):
    return client.post(f"{A}/programmes/{programme_id}/events", json=body,
                       headers=tokens.writer_a)


@pytest.mark.parametrize("expected_version", [None, 0, 1, 3])
def test_a_write_to_another_clinics_programme_answers_as_for_a_missing_one(
        client, tokens, expected_version):
    foreign = start_b(client, tokens)
    missing = uuid.uuid4()
    body = {"events": [b.session(3)]}
    if expected_version is not None:
        body["expected_version"] = expected_version
    on_foreign = write(client, tokens, foreign, body)
    on_missing = write(client, tokens, missing, body)
    same_answer(on_foreign, on_missing)
    assert on_foreign.status_code in (404, 409)
    assert "3" not in json.dumps(on_foreign.json.get("current_version", ""))


def test_a_bulk_line_to_another_clinics_programme_answers_as_for_a_missing_one(
        client, tokens):
    foreign = start_b(client, tokens)
    missing = uuid.uuid4()
    session = b.session(3)
    sent = [line(foreign, session, expected_version=1),
            line(missing, {**session, "event_id": str(uuid.uuid4())}, expected_version=1),
            line(foreign, b.session(4)), line(missing, b.session(4))]
    results, _ = answered(client.post(f"{A}/events:bulk", data=ndjson(*sent),
                                      headers={**tokens.writer_a, **NDJSON}))
    for result in results:
        result.pop("line", None)
        result.pop("programme_id", None)
        result.pop("event_id", None)
    assert results[0] == results[1]
    assert results[2] == results[3]


@pytest.fixture
def unreadable_b(store_url, client, tokens):
    """A fresh app (nothing of B's in its memory) on a store where B's programme
    cannot be loaded: its second event's stored state is not JSON any more."""
    programme_id = start_b(client, tokens)
    store = StoreSQL(store_url)
    try:
        position = store.sql("SELECT position FROM event_ledger WHERE programme_id = %s "
                             "AND version = 2",
                             (programme_id if store.store.is_postgres else programme_id.hex,))
        store.sql("UPDATE stored_events SET state = %s WHERE {pos} = %s",
                  (b"not json", position[0][0]))
    finally:
        store.close()
    components = components_at(store_url)
    fresh = create_app(components)
    fresh.config["TESTING"] = True
    yield programme_id, fresh.test_client()
    components.close()


@pytest.mark.parametrize("path", ["", "/events", "?version=2", "?version=1", "/events?version=2",
                                  "?as_of={now}"])
def test_a_read_of_another_clinics_programme_never_loads_it(unreadable_b, tokens, path):
    # The moment is taken when the test runs (a parameter must be the same in every
    # xdist worker that collects it).
    path = path.format(now=datetime.now(UTC).isoformat().replace("+", "%2B"))
    foreign, client = unreadable_b
    on_foreign = client.get(f"{A}/programmes/{foreign}{path}", headers=tokens.viewer_a)
    on_missing = client.get(f"{A}/programmes/{uuid.uuid4()}{path}", headers=tokens.viewer_a)
    assert on_foreign.status_code == 404
    same_answer(on_foreign, on_missing)


@pytest.mark.parametrize("expected_version", [None, 2])
def test_a_write_to_another_clinics_programme_never_loads_it(unreadable_b, tokens,
                                                             expected_version):
    foreign, client = unreadable_b
    body: dict = {"events": [b.session(3)]}
    if expected_version is not None:
        body["expected_version"] = expected_version
    on_foreign = write(client, tokens, foreign, body)
    on_missing = write(client, tokens, uuid.uuid4(), body)
    assert on_foreign.status_code in (404, 409)
    same_answer(on_foreign, on_missing)
