"""A repeated 304 of a projection read is answered without the application
(service/http/revalidations.py), and only while the application would give the
same answer: never to another token or clinic, never once the token is revoked
or expired or its clinic deactivated, never once the projection moved, never
while the store is down; reads the access log records are always recorded."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from flask import request, request_started

from service.http.availability import AVAILABILITY
from service.http.revalidations import REVALIDATIONS, Revalidations
from tests import builders as b
from tests.projections.test_endpoints import A, B, World

#: Headers every answer has its own value of (the request log adds it).
PER_REQUEST = {"X-Request-ID"}


@pytest.fixture
def world(app, client, tokens) -> World:
    world = World(app, client, tokens)
    world.project()
    return world


def shortcut(app) -> Revalidations:
    """The app's Revalidations middleware (inside the request log)."""
    return app.extensions[REVALIDATIONS]


@contextmanager
def dispatched(app) -> Iterator[list]:
    """The requests Flask itself handled meanwhile (a remembered 304 is not one)."""
    seen: list = []

    def started(sender, **extra) -> None:
        seen.append(request.path)

    request_started.connect(started, app)
    try:
        yield seen
    finally:
        request_started.disconnect(started, app)


def projection_reads(world: World) -> dict[str, tuple[str, dict]]:
    t, programme = world.tokens, world.a[1]
    return {
        "dashboard": (f"/v1/clinics/{A}/dashboard", t.viewer_a),
        "network": ("/v1/dashboard", t.admin),
        "list": (f"/v1/clinics/{A}/programmes?limit=2", t.viewer_a),
        "summary": (f"/v1/clinics/{A}/programmes/{programme}/summary", t.viewer_a),
    }


def conditional(world: World, path: str, headers: dict, etag: str):
    return world.client.get(path, headers={**headers, "If-None-Match": etag})


def remembered(world: World, path: str, headers: dict) -> str:
    """The ETag of `path`, after the app has answered one revalidation of it 304."""
    etag = world.client.get(path, headers=headers).headers["ETag"]
    assert conditional(world, path, headers, etag).status_code == 304
    return etag


def same_headers(one, other) -> bool:
    def kept(response):
        return sorted((k, v) for k, v in response.headers.items() if k not in PER_REQUEST)
    return kept(one) == kept(other)


@pytest.mark.parametrize("read", ["dashboard", "network", "list", "summary"])
def test_a_repeated_304_is_the_one_the_app_gave(world, read):
    path, headers = projection_reads(world)[read]
    etag = world.client.get(path, headers=headers).headers["ETag"]
    before = len(shortcut(world.app))
    by_app = conditional(world, path, headers, etag)
    assert by_app.status_code == 304
    assert len(shortcut(world.app)) == before + 1
    with dispatched(world.app) as by_flask:
        repeated = conditional(world, path, headers, etag)
    assert by_flask == []
    assert repeated.status_code == 304 and repeated.data == b""
    assert same_headers(repeated, by_app)
    assert repeated.headers["X-Request-ID"] != by_app.headers["X-Request-ID"]
    assert repeated.headers["ETag"] == etag
    # Another value of If-None-Match is the app's to answer.
    assert conditional(world, path, headers, '"someone-elses"').status_code == 200


def test_a_state_or_history_is_never_remembered(world):
    base = f"/v1/clinics/{A}/programmes/{world.a[1]}"
    for path in (base, f"{base}/events"):
        remembered(world, path, world.tokens.viewer_a)
    assert len(shortcut(world.app)) == 0


def test_a_remembered_304_is_never_given_to_another_clinic(world):
    t, programme = world.tokens, world.a[1]
    for path, own in ((f"/v1/clinics/{A}/dashboard", t.viewer_a),
                      (f"/v1/clinics/{A}/programmes/{programme}/summary", t.viewer_a),
                      (f"/v1/clinics/{A}/programmes", t.viewer_a)):
        etag = remembered(world, path, own)
        assert conditional(world, path, own, etag).status_code == 304
        foreign = conditional(world, path, t.viewer_b, etag)
        missing = world.client.get(path.replace(A, "no-such-clinic"), headers=t.viewer_b)
        assert foreign.status_code == missing.status_code == 404, path
        assert foreign.data == missing.data and "ETag" not in foreign.headers
        # Nor to a role the route refuses (a writer may not read dashboards).
        if path.endswith("/dashboard"):
            assert conditional(world, path, t.writer_a, etag).status_code == 403
    # A summary of clinic B's programme, asked as clinic A with B's own tag.
    b_summary = f"/v1/clinics/{B}/programmes/{world.b}/summary"
    b_etag = remembered(world, b_summary, t.viewer_b)
    as_a = f"/v1/clinics/{A}/programmes/{world.b}/summary"
    assert conditional(world, as_a, t.viewer_a, b_etag).status_code == 404


def test_a_remembered_304_needs_the_token_s_secret(world):
    path, headers = projection_reads(world)["dashboard"]
    etag = remembered(world, path, headers)
    token_id = headers["X-Token-Id"]
    forged = {"Authorization": f"Bearer tl_{token_id}_{'x' * 43}"}
    assert conditional(world, path, forged, etag).status_code == 401
    assert conditional(world, path, {}, etag).status_code == 401


def test_no_304_once_the_token_is_revoked(world):
    t = world.tokens
    reads = projection_reads(world)
    etags = {name: remembered(world, path, headers) for name, (path, headers) in reads.items()}
    revoked = world.client.delete(f"/v1/tokens/{t.viewer_a['X-Token-Id']}", headers=t.admin)
    assert revoked.status_code == 200, revoked.json
    for name, (path, headers) in reads.items():
        expected = 304 if headers is t.admin else 401
        assert conditional(world, path, headers, etags[name]).status_code == expected, name


def test_no_304_once_the_token_is_revoked_by_another_process(world):
    """Revoked elsewhere (the CLI, another worker): refused within the worker's
    token refresh bound, as every other request is."""
    from service.http.access import REFRESH_SECONDS

    path, headers = projection_reads(world)["summary"]
    etag = remembered(world, path, headers)
    world.tokens.directory.revoke_token(headers["X-Token-Id"])
    time.sleep(REFRESH_SECONDS + 0.1)
    assert conditional(world, path, headers, etag).status_code == 401


def test_no_304_once_the_clinic_is_deactivated(world):
    t = world.tokens
    path, headers = projection_reads(world)["dashboard"]
    etag = remembered(world, path, headers)
    auditor_etag = remembered(world, path, t.auditor)
    done = world.client.post(f"/v1/clinics/{A}:deactivate", headers=t.admin)
    assert done.status_code == 200, done.json
    assert conditional(world, path, headers, etag).status_code == 401
    # Its records stay readable by auditors.
    assert conditional(world, path, t.auditor, auditor_etag).status_code == 304


def test_no_304_once_the_token_has_expired(world):
    directory = world.tokens.directory
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    _, token = directory.issue_token("viewer", A, "expiring", expires_at=soon)
    headers = {"Authorization": f"Bearer {token}"}
    path = projection_reads(world)["dashboard"][0]
    etag = remembered(world, path, headers)
    assert conditional(world, path, headers, etag).status_code == 304
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
    assert conditional(world, path, headers, etag).status_code == 401


def test_a_304_ends_when_the_projection_moves(world):
    path, headers = projection_reads(world)["summary"]
    etag = remembered(world, path, headers)
    world.post(A, world.a[1], [b.pain(1, days=3)], world.tokens.writer_a)
    world.project()
    changed = conditional(world, path, headers, etag)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_no_304_while_the_store_is_down(world):
    path, headers = projection_reads(world)["dashboard"]
    etag = remembered(world, path, headers)
    world.app.extensions[AVAILABILITY].failed()
    down = conditional(world, path, headers, etag)
    assert down.status_code == 503
    assert down.headers["Content-Type"] == "application/problem+json"


def test_every_304_of_a_logged_read_is_in_the_access_log(world):
    """Patient-level reads by an auditor are recorded, 304s included: they are
    never answered without the application."""
    t = world.tokens
    path = f"/v1/clinics/{A}/programmes/{world.a[1]}/summary"

    def logged() -> list[dict]:
        entries = world.client.get("/v1/audit/access-log?limit=1000",
                                   headers=t.auditor).json["entries"]
        return [e for e in entries if (e["route"] or "").endswith("/summary")]

    etag = world.client.get(path, headers=t.auditor).headers["ETag"]
    for _ in range(3):
        assert conditional(world, path, t.auditor, etag).status_code == 304
    entries = logged()
    assert len(entries) == 4
    assert [e["detail"].split(";")[0] for e in entries].count("status 304") == 3
    assert all(e["token_id"] == t.auditor["X-Token-Id"] for e in entries)


def test_the_memo_is_bounded(world):
    layer = shortcut(world.app)
    layer.kept = 2
    t = world.tokens
    for programme in world.a:
        remembered(world, f"/v1/clinics/{A}/programmes/{programme}/summary", t.viewer_a)
    assert len(layer) == 2
    unknown = f"/v1/clinics/{A}/programmes/{uuid.uuid4()}/summary"
    assert conditional(world, unknown, t.viewer_a, '"x"').status_code == 404
    assert len(layer) == 2


def test_a_long_if_none_match_is_answered_but_not_remembered(world):
    path, headers = projection_reads(world)["dashboard"]
    etag = world.client.get(path, headers=headers).headers["ETag"]
    listed = ", ".join([f'"other-{n}"' for n in range(60)] + [etag])
    before = len(shortcut(world.app))
    assert conditional(world, path, headers, listed).status_code == 304
    assert len(shortcut(world.app)) == before


def test_a_remembered_304_has_its_access_line_and_is_counted(world, caplog):
    from service.http import metrics, request_log

    path, headers = projection_reads(world)["summary"]
    etag = remembered(world, path, headers)
    route = "/v1/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>/summary"
    counted = metrics.http_requests.labels(method="GET", route=route, status="304")
    before = counted._value.get()
    with caplog.at_level(logging.INFO, logger=request_log.ACCESS_LOGGER):
        answer = conditional(world, path, headers, etag)
    assert answer.status_code == 304
    [line] = [r.fields for r in caplog.records if r.name == request_log.ACCESS_LOGGER]
    assert line["request_id"] == answer.headers["X-Request-ID"]
    assert (line["status"], line["route"], line["token_id"]) == (304, route,
                                                                 headers["X-Token-Id"])
    assert counted._value.get() == before + 1


def test_a_304_outlives_another_clinic_s_events_with_the_position_it_reflects(world):
    """The projection moves with every clinic's events: a read whose body did not
    change is read again (without the app) and its 304 shows the new position,
    as the app would."""
    t = world.tokens
    cases = [(f"/v1/clinics/{A}/dashboard", t.viewer_a),  # the clinic's own count
             (f"/v1/clinics/{A}/dashboard", t.auditor),  # global positions
             (f"/v1/clinics/{A}/programmes/{world.a[1]}/summary", t.viewer_a)]
    etags = [remembered(world, path, headers) for path, headers in cases]
    world.post(B, world.b, [b.pain(1, days=3)], t.writer_b)
    world.project()
    for (path, headers), etag in zip(cases, etags, strict=True):
        with dispatched(world.app) as by_flask:
            repeated = conditional(world, path, headers, etag)
        assert by_flask == [], path
        assert repeated.status_code == 304
        fresh = world.client.get(path, headers=headers)
        assert fresh.headers["ETag"] == etag
        assert repeated.headers["X-Projection-Position"] == fresh.headers["X-Projection-Position"]
    auditor_positions = {conditional(world, path, h, e).headers["X-Projection-Position"]
                         for (path, h), e in zip(cases, etags, strict=True) if h is t.auditor}
    assert auditor_positions == {str(world.head + 1)}
