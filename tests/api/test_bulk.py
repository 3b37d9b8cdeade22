"""Bulk ingest through the Flask test client, on both stores: each line recorded
or refused alone, in order, answered line by line with the receipt or problem
a single post of it would get; limits cut the answer after the lines read."""

from __future__ import annotations

import gc
import json
import uuid
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from domain.personal import ERASED
from service.http import bulk_ingest
from service.http.app import create_app
from service.storage import sealing
from tests import builders as b
from tests.conftest import Tokens
from tests.privacy.raw import store_bytes
from tests.stores import components_at

BULK = "/v1/clinics/clinic-a/events:bulk"
NDJSON = {"Content-Type": "application/x-ndjson"}


def chunked(body: bytes, headers: dict) -> dict:
    """A bulk post whose length is not told beforehand (chunked, as a WSGI server
    hands it over: the body's end is the input's end)."""
    environ = EnvironBuilder(path=BULK, method="POST", data=body, headers=headers).get_environ()
    del environ["CONTENT_LENGTH"]
    environ.update({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True})
    return environ


def line(programme_id: uuid.UUID, envelope: dict, **extra: Any) -> dict:
    return {**envelope, "programme_id": str(programme_id), **extra}


def ndjson(*lines: dict | str | bytes) -> bytes:
    return b"".join((item if isinstance(item, bytes) else
                     (item if isinstance(item, str) else json.dumps(item)).encode()) + b"\n"
                    for item in lines)


def answered(response) -> tuple[list[dict], dict]:
    """The result lines and the summary of a bulk answer."""
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/x-ndjson"
    results = [json.loads(text) for text in response.data.decode().splitlines()]
    assert "summary" in results[-1], "an answer ends with its summary"
    return results[:-1], results[-1]["summary"]


def post_bulk(client, body: bytes, headers: dict, **kwargs: Any):
    return client.post(BULK, data=body, headers={**headers, **NDJSON}, **kwargs)


def test_lines_of_many_programmes_are_recorded_in_order(client, tokens):
    one, two = uuid.uuid4(), uuid.uuid4()
    sent = [line(one, b.started()), line(two, b.started()), line(one, b.session(1)),
            line(two, b.pain(4, 1), expected_version=1), line(one, b.pain(3, 2))]
    results, summary = answered(post_bulk(client, ndjson(*sent), tokens.writer_a))
    assert [(r["line"], r["status"]) for r in results] == [(n, 201) for n in range(1, 6)]
    assert summary == {"lines": 5, "recorded": 5, "replayed": 0, "failed": 0, "complete": True}
    assert [r["receipt"]["recorded"][0]["position"] for r in results] == [1, 2, 3, 4, 5]
    history = client.get(f"/v1/clinics/clinic-a/programmes/{one}/events",
                         headers=tokens.viewer_a).json
    assert [e["event_id"] for e in history["events"]] == [
        sent[0]["event_id"], sent[2]["event_id"], sent[4]["event_id"]]
    # A line's receipt is what a single post of it answers when repeated.
    again = client.post(f"/v1/clinics/clinic-a/programmes/{two}/events",
                        json={k: v for k, v in sent[3].items()
                              if k not in ("programme_id", "expected_version")},
                        headers=tokens.writer_a)
    assert again.status_code == 200 and again.json == results[3]["receipt"]


def test_each_bad_line_gets_its_own_problem_and_the_rest_go_on(client, tokens):
    mine, theirs, missing = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    client.post(f"/v1/clinics/clinic-b/programmes/{theirs}/events", json=b.started(),
                headers=tokens.writer_b)
    body = ndjson(
        line(mine, b.started()),
        "{not json",
        b'{"event_id": "\xff"}',
        "[1, 2]",
        line(mine, b.pain(11, 1)),
        {**b.session(1)},  # no programme_id
        line(theirs, b.session(1)),  # another clinic's programme
        line(missing, b.session(1)),  # no such programme
        line(mine, b.session(1), expected_version=5),
        line(mine, b.started()),  # started twice
        "",  # a blank line: skipped
        line(mine, b.session(2)),
    )
    results, summary = answered(post_bulk(client, body, tokens.writer_a))
    statuses = {r["line"]: r["status"] for r in results}
    assert statuses == {1: 201, 2: 400, 3: 400, 4: 422, 5: 422, 6: 422, 7: 404, 8: 404,
                        9: 409, 10: 422, 12: 201}
    problems = {r["line"]: r["problem"] for r in results if "problem" in r}
    assert problems[5]["errors"] == [{"pointer": "/data/pain_nrs", "detail": (
        "Must be greater than or equal to 0 and less than or equal to 10.")}]
    assert {"pointer": "/programme_id", "detail": "Missing data for required field."} in \
        problems[6]["errors"]
    assert problems[7] == problems[8], "another clinic's programme is a missing one"
    assert problems[9]["current_version"] == 1
    assert problems[10]["rule"] == "programme_already_started"
    assert summary == {"lines": 11, "recorded": 2, "replayed": 0, "failed": 9, "complete": True}
    state = client.get(f"/v1/clinics/clinic-a/programmes/{mine}", headers=tokens.viewer_a).json
    assert state["version"] == 2
    assert client.get(f"/v1/clinics/clinic-b/programmes/{theirs}",
                      headers=tokens.viewer_b).json["version"] == 1


def test_an_upload_sent_again_is_answered_with_the_original_receipts(client, tokens):
    one, two = uuid.uuid4(), uuid.uuid4()
    repeated = line(one, b.session(1))
    body = ndjson(line(one, b.started()), line(two, b.started()), repeated, repeated,
                  line(two, b.pain(2, 1)))
    first, summary = answered(post_bulk(client, body, tokens.writer_a))
    assert [r["status"] for r in first] == [201, 201, 201, 200, 201]
    assert first[3]["receipt"] == first[2]["receipt"]
    assert summary["replayed"] == 1
    again, summary = answered(post_bulk(client, body, tokens.writer_a))
    assert [r["status"] for r in again] == [200] * 5
    assert [r["receipt"] for r in again] == [r["receipt"] for r in first]
    clash = ndjson({**repeated, "data": {**repeated["data"], "duration_minutes": 45}})
    conflict, _ = answered(post_bulk(client, clash, tokens.writer_a))
    assert conflict[0]["status"] == 409
    assert conflict[0]["problem"]["type"].endswith("event-id-conflict")


def test_an_upload_of_new_events_sent_again_is_answered_with_the_original_receipts(
        client, tokens, monkeypatch):
    # After chunks of new events only, the application does not look the next
    # chunk's event ids up before running it (Programmes._recorded_before): the
    # store's screen refuses the repeats, and they are answered all the same.
    monkeypatch.setattr(bulk_ingest, "CHUNK_LINES", 3)
    programmes = [uuid.uuid4() for _ in range(3)]
    sent = [[line(p, b.started()) for p in programmes],
            [line(p, b.session(1)) for p in programmes],
            [line(p, b.pain(4, 2)) for p in programmes]]
    body = ndjson(*[item for chunk in sent for item in chunk])
    first, summary = answered(post_bulk(client, body, tokens.writer_a))
    assert [r["status"] for r in first] == [201] * 9 and summary["replayed"] == 0
    for _ in range(2):  # right after new events, then right after a retry
        again, summary = answered(post_bulk(client, body, tokens.writer_a))
        assert [r["status"] for r in again] == [200] * 9 and summary["replayed"] == 9
        assert [r["receipt"] for r in again] == [r["receipt"] for r in first]
    fresh = ndjson(*[line(p, b.session(3)) for p in programmes])
    assert [r["status"] for r in answered(post_bulk(client, fresh, tokens.writer_a))[0]] == [
        201] * 3
    # Sent again with new lines after it, starting right after a chunk of new events:
    # the old lines answered as before, the new ones recorded after them.
    more = [line(p, b.missed(4)) for p in programmes]
    mixed, summary = answered(post_bulk(client, body + ndjson(*more), tokens.writer_a))
    assert [r["status"] for r in mixed] == [200] * 9 + [201] * 3
    assert [r["receipt"] for r in mixed[:9]] == [r["receipt"] for r in first]
    assert [r["receipt"]["version"] for r in mixed[9:]] == [5, 5, 5]
    assert summary == {"lines": 12, "recorded": 3, "replayed": 9, "failed": 0,
                       "complete": True}
    for programme_id in programmes:
        history = client.get(f"/v1/clinics/clinic-a/programmes/{programme_id}/events",
                             headers=tokens.viewer_a).json["events"]
        assert [e["version"] for e in history] == [1, 2, 3, 4, 5]


def test_the_last_line_needs_no_newline_and_a_long_line_is_refused_alone(store_url):
    components = components_at(store_url, max_body_bytes=2048)
    try:
        app = create_app(components)
        client, tokens = app.test_client(), Tokens(components.directory)
        programme = uuid.uuid4()
        long_line = line(programme, b.session(1), recorded_by="x" * 3000)
        body = ndjson(line(programme, b.started()), long_line) + json.dumps(
            line(programme, b.pain(3, 1))).encode()
        results, summary = answered(post_bulk(client, body, tokens.writer_a))
        assert [(r["line"], r["status"]) for r in results] == [(1, 201), (2, 413), (3, 201)]
        assert "2048 bytes" in results[1]["problem"]["detail"]
        assert summary["complete"] is True
    finally:
        components.close()


def test_past_the_upload_limit_the_answer_is_cut_after_the_lines_read(store_url):
    components = components_at(store_url, max_bulk_bytes=4096)
    try:
        app = create_app(components)
        client, tokens = app.test_client(), Tokens(components.directory)
        programme = uuid.uuid4()
        lines = [line(programme, b.started())] + [line(programme, b.session(1 + n / 100))
                                                  for n in range(40)]
        body = ndjson(*lines)
        assert len(body) > 4096
        within = len([n for n in range(len(lines)) if len(ndjson(*lines[:n + 1])) <= 4096])
        # Streamed (no Content-Length): counted as it arrives.
        streamed = client.open(chunked(body, {**tokens.writer_a, **NDJSON}))
        results, summary = answered(streamed)
        assert [r["status"] for r in results] == [201] * within + [413]
        assert results[-1]["line"] == within + 1
        assert results[-1]["problem"]["type"].endswith("request-entity-too-large")
        assert summary == {"lines": within + 1, "recorded": within, "replayed": 0,
                           "failed": 1, "complete": False}
        # Announced too large: refused at once, nothing read.
        told = post_bulk(client, body, tokens.writer_a)
        assert told.status_code == 413
        assert told.mimetype == "application/problem+json"
        state = client.get(f"/v1/clinics/clinic-a/programmes/{programme}",
                           headers=tokens.viewer_a).json
        assert state["version"] == within
    finally:
        components.close()


@pytest.mark.parametrize("headers, status", [
    ({"Content-Type": "application/json"}, 415),
    ({"Content-Type": "text/plain"}, 415),
])
def test_only_ndjson_is_taken(client, tokens, headers, status):
    response = client.post(BULK, data=b"{}\n", headers={**tokens.writer_a, **headers})
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


def test_only_a_writer_of_the_clinic_may_post_in_bulk(client, tokens):
    body = ndjson(line(uuid.uuid4(), b.started()))
    assert post_bulk(client, body, tokens.writer_b).status_code == 404
    assert post_bulk(client, body, tokens.viewer_a).status_code == 403
    assert client.post(BULK, data=body, headers=NDJSON).status_code == 401


def test_programmes_started_in_one_chunk_each_get_their_own_key(client, tokens, app):
    """The data keys of a chunk's new programmes are made together: each programme
    still has its own, its patient_ref is sealed in the store, and erasing one
    leaves the others readable."""
    programmes = [uuid.uuid4() for _ in range(12)]
    body = ndjson(*[line(p, b.started(patient_ref=f"pt-bulk-{n:03}"))
                    for n, p in enumerate(programmes)],
                  *[line(p, b.paused(1, reason=f"away {n}")) for n, p in enumerate(programmes)])
    results, summary = answered(post_bulk(client, body, tokens.writer_a))
    assert summary["recorded"] == 24 and summary["failed"] == 0
    components = app.extensions["traction"]
    with components.database.transaction(write=False) as cursor:
        keys = cursor.execute("SELECT programme_id, wrapped_key FROM data_keys").fetchall()
    assert sorted(row["programme_id"] for row in keys) == sorted(str(p) for p in programmes)
    assert len({row["wrapped_key"] for row in keys}) == len(programmes)
    raw = store_bytes(components.settings.database_url)

    def stored(text: str) -> bool:  # as it is, or as pg_dump writes a bytea (hex)
        return text.encode() in raw or text.encode().hex().encode() in raw

    assert not stored("pt-bulk-") and not stored("away ")
    assert stored(sealing.SEALED_PREFIX)
    components.programmes.erase("clinic-a", programmes[0], "admin", "asked")

    def shown(programme: uuid.UUID) -> list:
        history = client.get(f"/v1/clinics/clinic-a/programmes/{programme}/events",
                             headers=tokens.viewer_a).json["events"]
        return [event["data"].get("patient_ref") or event["data"].get("reason")
                for event in history if event["type"] != "ProgrammeErased"]

    assert shown(programmes[0]) == [ERASED, ERASED]
    for n, programme in enumerate(programmes[1:], start=1):
        assert shown(programme) == [f"pt-bulk-{n:03}", f"away {n}"]


def test_more_programmes_than_the_keyring_keeps_all_stay_readable(store_url, monkeypatch):
    """A process keeps KEYS_KEPT data keys; the ones it lets go are read again."""
    monkeypatch.setattr(sealing, "KEYS_KEPT", 3)
    components = components_at(store_url)
    try:
        app = create_app(components)
        client, tokens = app.test_client(), Tokens(components.directory)
        programmes = [uuid.uuid4() for _ in range(8)]
        body = ndjson(*[line(p, b.started(patient_ref=f"pt-kept-{n}"))
                        for n, p in enumerate(programmes)])
        assert answered(post_bulk(client, body, tokens.writer_a))[1]["recorded"] == 8
        assert len(components.keyring._keys) == 3
        for n, programme in enumerate(programmes):
            history = client.get(f"/v1/clinics/clinic-a/programmes/{programme}/events",
                                 headers=tokens.viewer_a).json["events"]
            assert history[0]["data"]["patient_ref"] == f"pt-kept-{n}"
        assert len(components.keyring._keys) == 3
    finally:
        components.close()


def test_the_collector_runs_less_often_only_while_an_upload_is_ingested(client, tokens):
    """While an upload is ingested the collector's youngest generation runs every
    GC_ALLOCATIONS allocations; once the answer ends, or its client goes away
    halfway, the thresholds are what they were."""
    before = gc.get_threshold()
    programme = uuid.uuid4()
    body = ndjson(line(programme, b.started()), line(programme, b.session(1)))
    response = post_bulk(client, body, tokens.writer_a, buffered=False)
    pieces = iter(response.response)
    first = next(pieces)
    assert b'"line":1' in first
    assert gc.get_threshold()[0] == max(bulk_ingest.GC_ALLOCATIONS, before[0])
    response.close()  # the client goes away before the summary
    assert gc.get_threshold() == before
    results, _ = answered(post_bulk(client, ndjson(line(programme, b.pain(2, 2))),
                                    tokens.writer_a))
    assert results[0]["status"] == 201
    assert gc.get_threshold() == before
