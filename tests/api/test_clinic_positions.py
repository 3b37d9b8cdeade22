"""A clinic's token learns nothing of the network's volume or timing: every position
it is shown or sends is the clinic's own count of its events (receipts,
histories, summaries, X-Projection-Position, min_position), while tokens of all
clinics (auditors, network viewers) keep the global log's (real app, both stores)."""

from __future__ import annotations

import json
import time
import uuid

from service.http.api.context import READER
from tests import builders as b
from tests.stores import RunnerAt

A, B = "/v1/clinics/clinic-a", "/v1/clinics/clinic-b"


def post(client, base, headers, programme_id, events) -> list[int]:
    response = client.post(f"{base}/programmes/{programme_id}/events",
                           json={"events": events}, headers=headers)
    assert response.status_code == 201, response.json
    return [item["position"] for item in response.json["recorded"]]


def test_receipts_and_histories_count_only_the_clinics_own_events(client, tokens):
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    assert post(client, A, tokens.writer_a, mine, [b.started()]) == [1]
    assert post(client, B, tokens.writer_b, theirs,
                [b.started(), b.session(1), b.session(2), b.pain(3, 3)]) == [1, 2, 3, 4]
    later = [b.session(1), b.pain(4, 2)]
    assert post(client, A, tokens.writer_a, mine, later) == [2, 3]
    history = client.get(f"{A}/programmes/{mine}/events", headers=tokens.viewer_a).json
    assert [event["position"] for event in history["events"]] == [1, 2, 3]
    at_version = client.get(f"{A}/programmes/{mine}/events?version=2",
                            headers=tokens.viewer_a).json
    assert [event["position"] for event in at_version["events"]] == [1, 2]
    # A repeat is answered with the same receipt, in the clinic's count.
    again = client.post(f"{A}/programmes/{mine}/events", json={"events": later},
                        headers=tokens.writer_a)
    assert again.status_code == 200
    assert [item["position"] for item in again.json["recorded"]] == [2, 3]
    # Auditors keep the global log's positions, in the log and in the same history.
    log = client.get("/v1/audit/events", headers=tokens.auditor).json["events"]
    assert [entry["position"] for entry in log] == list(range(1, 8))
    for reader in (tokens.auditor, tokens.viewer_all):
        audited = client.get(f"{A}/programmes/{mine}/events", headers=reader).json
        assert [event["position"] for event in audited["events"]] == [1, 6, 7]
    # The clinic's view is still its own afterwards (kept apart in each worker's memory).
    again_mine = client.get(f"{A}/programmes/{mine}/events", headers=tokens.viewer_a).json
    assert [event["position"] for event in again_mine["events"]] == [1, 2, 3]


def test_a_bulk_receipt_counts_only_the_clinics_own_events(client, tokens):
    post(client, B, tokens.writer_b, uuid.uuid4(), [b.started(), b.session(1)])
    programme_id = uuid.uuid4()
    lines = "\n".join(
        json.dumps({"programme_id": str(programme_id), **envelope})
        for envelope in (b.started(), b.session(1))) + "\n"
    answer = client.post(f"{A}/events:bulk", data=lines.encode(),
                         headers={**tokens.writer_a, "Content-Type": "application/x-ndjson"})
    results = [json.loads(line) for line in answer.data.decode().splitlines()]
    assert [r["receipt"]["recorded"][0]["position"] for r in results[:-1]] == [1, 2]


def test_reads_show_the_clinics_count_and_do_not_move_when_another_clinic_posts(
        app, client, tokens):
    mine = uuid.uuid4()
    post(client, A, tokens.writer_a, mine, [b.started(), b.session(1)])
    post(client, B, tokens.writer_b, uuid.uuid4(), [b.started(), b.session(1), b.pain(2, 2)])
    RunnerAt(app.extensions["traction"].store.url).run(once=True)
    dashboard = client.get(f"{A}/dashboard", headers=tokens.viewer_a)
    assert dashboard.headers["X-Projection-Position"] == "2"
    summary = client.get(f"{A}/programmes/{mine}/summary", headers=tokens.viewer_a)
    assert summary.headers["X-Projection-Position"] == "2"
    assert summary.json["position"] == 2
    listing = client.get(f"{A}/programmes", headers=tokens.viewer_a)
    assert [p["position"] for p in listing.json["programmes"]] == [2]
    # A token of all clinics is shown the global log's positions on the same routes.
    audited = client.get(f"{A}/programmes", headers=tokens.auditor)
    assert [p["position"] for p in audited.json["programmes"]] == [2]  # A recorded first
    audited_summary = client.get(f"{A}/programmes/{mine}/summary", headers=tokens.viewer_all)
    assert audited_summary.headers["X-Projection-Position"] == "5"
    assert client.get(f"{A}/programmes", headers=tokens.viewer_a).json[
        "programmes"][0]["position"] == 2
    etag = dashboard.headers["ETag"]

    # Clinic B records and the projection follows: nothing of A's changes.
    post(client, B, tokens.writer_b, uuid.uuid4(), [b.started()])
    RunnerAt(app.extensions["traction"].store.url).run(once=True)
    again = client.get(f"{A}/dashboard", headers=tokens.viewer_a)
    assert again.headers["X-Projection-Position"] == "2"
    assert again.headers["ETag"] == etag
    assert client.get(f"{A}/dashboard", headers={**tokens.viewer_a, "If-None-Match": etag}
                      ).status_code == 304
    # The network's route keeps the global log's position.
    network = client.get("/v1/dashboard", headers=tokens.viewer_all)
    assert network.headers["X-Projection-Position"] == "6"


def test_a_wait_beyond_the_clinics_count_is_no_signal_of_another_clinics_posts(
        app, client, tokens):
    post(client, A, tokens.writer_a, uuid.uuid4(), [b.started()])
    RunnerAt(app.extensions["traction"].store.url).run(once=True)
    # Position 2 of clinic A does not exist: answered at once (never an older read,
    # never a wait that another clinic's post would end).
    began = time.monotonic()
    ahead = client.get(f"{A}/dashboard", headers=tokens.viewer_a,
                       query_string={"min_position": 2})
    # Well under the wait it would have made (half of it: a busy machine is slow too).
    assert time.monotonic() - began < app.extensions[READER].min_position_wait / 2
    assert ahead.status_code == 503 and ahead.headers["Retry-After"] == "1"
    assert ahead.headers["X-Projection-Position"] == "1"
    assert "not yet 2" in ahead.json["detail"]
    post(client, B, tokens.writer_b, uuid.uuid4(), [b.started()])
    assert client.get(f"{A}/dashboard", headers=tokens.viewer_a,
                      query_string={"min_position": 2}).status_code == 503
    # A's own position not yet processed: the wait is for A's event alone.
    position = post(client, A, tokens.writer_a, uuid.uuid4(), [b.started()])[0]
    assert position == 2
    behind = client.get(f"{A}/dashboard", headers=tokens.viewer_a,
                        query_string={"min_position": position})
    assert behind.status_code == 503
    assert behind.headers["X-Projection-Position"] == "1"
    assert "not yet 2" in behind.json["detail"]


def test_min_position_zero_of_a_clinic_with_no_events_is_answered_at_once(client, tokens):
    # What a dashboard asks on its first poll of a new clinic: nothing recorded yet.
    registered = client.post("/v1/clinics", json={"clinic_id": "empty-clinic", "name": "Empty"},
                             headers=tokens.admin)
    assert registered.status_code == 201, registered.json
    viewer = client.post("/v1/tokens", json={"role": "viewer", "clinic_id": "empty-clinic",
                                             "label": "t"}, headers=tokens.admin).json["token"]
    for path in ("programmes?min_position=0", "dashboard?min_position=0"):
        answer = client.get(f"/v1/clinics/empty-clinic/{path}",
                            headers={"Authorization": f"Bearer {viewer}"})
        assert answer.status_code == 200, (path, answer.json)


def test_receipts_count_the_clinics_events_of_every_worker(app, client, tokens, store_url):
    """A receipt's numbers come with its own save (the recorder remembers them):
    they count what other processes recorded in between, and are the store's."""
    from service.http.app import create_app
    from tests.stores import components_at

    other_components = components_at(store_url)
    try:
        other = create_app(other_components).test_client()
        first, second = uuid.uuid4(), uuid.uuid4()
        assert post(client, A, tokens.writer_a, first, [b.started()]) == [1]
        assert post(other, A, tokens.writer_a, second, [b.started(), b.session(1)]) == [2, 3]
        assert post(client, B, tokens.writer_b, uuid.uuid4(), [b.started()]) == [1]
        assert post(client, A, tokens.writer_a, first, [b.session(1)]) == [4]
        assert post(other, A, tokens.writer_a, second, [b.pain(2, 3)]) == [5]
        # As stored: the same numbers in each clinic's histories, read by either worker.
        for reader in (client, other):
            numbers = sorted(
                event["position"] for programme_id in (first, second)
                for event in reader.get(f"{A}/programmes/{programme_id}/events",
                                        headers=tokens.viewer_a).json["events"])
            assert numbers == [1, 2, 3, 4, 5]
    finally:
        other_components.close()
