"""Conditional reads: every read has an ETag, If-None-Match answers 304 without a
body while nothing changed and 200 once it has; a programme at an explicit
version keeps its ETag (until an erasure changes it); patient data is never
stored by a cache; ETags say nothing of other clinics' activity; cached reads
keep tenancy."""

from __future__ import annotations

import uuid

import pytest

from tests import builders as b
from tests.projections.test_endpoints import A, B, World, events_url

REVALIDATE = "private, no-cache"
#: Patient-level reads: no cache may keep them (a client may keep its copy and ETag).
PATIENT_DATA = "private, no-store"
CACHING = {"dashboard": REVALIDATE, "network": REVALIDATE, "list": PATIENT_DATA,
           "summary": PATIENT_DATA, "state": PATIENT_DATA, "history": PATIENT_DATA}


@pytest.fixture
def world(app, client, tokens) -> World:
    world = World(app, client, tokens)
    world.project()
    return world


def reads(world: World) -> dict[str, tuple[str, dict]]:
    t, programme = world.tokens, world.a[1]
    base = f"/v1/clinics/{A}/programmes/{programme}"
    return {
        "dashboard": (f"/v1/clinics/{A}/dashboard", t.viewer_a),
        "network": ("/v1/dashboard", t.admin),
        "list": (f"/v1/clinics/{A}/programmes", t.viewer_a),
        "summary": (f"{base}/summary", t.viewer_a),
        "state": (base, t.writer_a),
        "history": (f"{base}/events", t.viewer_a),
    }


def revalidate(world: World, path: str, headers: dict, etag: str):
    return world.client.get(path, headers={**headers, "If-None-Match": etag})


@pytest.mark.parametrize("read", ["dashboard", "network", "list", "summary", "state", "history"])
def test_a_read_is_not_modified_until_its_body_changes(world, read):
    path, headers = reads(world)[read]
    first = world.client.get(path, headers=headers)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert first.headers["Cache-Control"] == CACHING[read]
    assert first.headers["Vary"] == "Authorization"

    again = revalidate(world, path, headers, etag)
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == CACHING[read]
    if "X-Projection-Position" in first.headers:
        assert again.headers["X-Projection-Position"] == first.headers["X-Projection-Position"]
    # Weakly compared, and among several tags, as RFC 9110 says; `*` matches anything.
    assert revalidate(world, path, headers, f'"other", W/{etag}').status_code == 304
    assert revalidate(world, path, headers, "*").status_code == 304
    assert revalidate(world, path, headers, '"someone-elses"').status_code == 200

    world.post(A, world.a[1], [b.pain(1, days=3)], world.tokens.writer_a)
    world.project()
    changed = revalidate(world, path, headers, etag)
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.data != first.data


def test_a_clinic_s_etags_do_not_move_when_another_clinic_posts(world):
    """A tag built from the global log position would tell clinic A whenever
    clinic B posts; a digest of A's own body does not."""
    mine = {name: world.client.get(path, headers=headers).headers["ETag"]
            for name, (path, headers) in reads(world).items() if name != "network"}
    world.post(B, world.b, [b.pain(1, days=2), b.session(days=3)], world.tokens.writer_b)
    world.project()
    for name, (path, headers) in reads(world).items():
        if name != "network":
            assert revalidate(world, path, headers, mine[name]).status_code == 304, name


def test_a_programme_at_an_explicit_version_keeps_its_etag_but_is_never_cached(world):
    # Not `immutable` either: an erasure would change its personal fields (tests/privacy).
    t, programme = world.tokens, world.a[0]
    base = f"/v1/clinics/{A}/programmes/{programme}"
    session = world.client.get(f"{base}/events", headers=t.viewer_a).json["events"][1]
    assert session["type"] == "SessionCompleted"
    world.post(A, programme, [b.corrected(session, days=21, duration_minutes=45)], t.writer_a)
    for path in (f"{base}?version=2", f"{base}/events?version=2"):
        first = world.client.get(path, headers=t.viewer_a)
        assert first.status_code == 200, path
        assert first.headers["Cache-Control"] == PATIENT_DATA
        assert revalidate(world, path, t.viewer_a, first.headers["ETag"]).status_code == 304
    at_two = world.client.get(f"{base}/events?version=2", headers=t.viewer_a).json
    now = world.client.get(f"{base}/events", headers=t.viewer_a).json
    assert at_two["version"] == 2 and [e["version"] for e in at_two["events"]] == [1, 2]
    # The session was corrected after version 2: now, not as it stood then.
    assert now["events"][1]["corrected_by"] == now["events"][-1]["event_id"]
    assert at_two["events"][1] == {**now["events"][1], "corrected_by": None}
    assert world.client.get(f"{base}?version=2", headers=t.viewer_a).json["version"] == 2
    as_of = world.client.get(base, headers=t.viewer_a,
                             query_string={"as_of": "2099-01-01T00:00:00Z"})
    assert as_of.headers["Cache-Control"] == PATIENT_DATA
    beyond = world.client.get(f"{base}/events?version=99", headers=t.viewer_a)
    assert beyond.status_code == 404


def test_a_cached_read_is_still_another_clinic_s_404(world):
    """Reads kept in a worker's memory answer another clinic exactly as a
    programme that does not exist, whatever the version or read."""
    t, programme = world.tokens, world.a[0]
    for suffix in ("", "?version=2", "/events", "/events?version=2", "/summary"):
        own = world.client.get(f"/v1/clinics/{A}/programmes/{programme}{suffix}",
                               headers=t.viewer_a)
        assert own.status_code == 200, suffix
        foreign = world.client.get(f"/v1/clinics/{B}/programmes/{programme}{suffix}",
                                   headers=t.viewer_b)
        missing = world.client.get(f"/v1/clinics/{B}/programmes/{uuid.uuid4()}{suffix}",
                                   headers=t.viewer_b)
        assert foreign.status_code == missing.status_code == 404, suffix
        assert foreign.data == missing.data
        assert "ETag" not in foreign.headers
        # Knowing the other clinic's tag does not help either.
        tagged = world.client.get(f"/v1/clinics/{B}/programmes/{programme}{suffix}",
                                  headers={**t.viewer_b, "If-None-Match": own.headers["ETag"]})
        assert tagged.status_code == 404 and tagged.data == missing.data


def test_posting_still_answers_without_an_etag(world):
    response = world.client.post(events_url(A, world.a[2]), json=b.session(days=4),
                                 headers=world.tokens.writer_a)
    assert response.status_code == 201
    assert "ETag" not in response.headers
