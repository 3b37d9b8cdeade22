"""The projection reads through the Flask test client, with real tokens.

Own clinic 200, another clinic's programme 404 exactly like a missing one,
the wrong role 403; pagination; `?min_position` waits and then answers 503
with Retry-After; every answer carries X-Projection-Position and matches its
documented schema; /readyz.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from marshmallow import Schema

from projections import reading
from service.http.api.context import READER
from service.http.schemas.dashboards import (
    ClinicDashboardSchema,
    NetworkDashboardSchema,
    ProgrammeSummaryDetailSchema,
    ProgrammeSummaryPageSchema,
)
from tests import builders as b
from tests.stores import SCRAPE, RunnerAt

A, B = "clinic-a", "clinic-b"


def events_url(clinic: str, programme: uuid.UUID) -> str:
    return f"/v1/clinics/{clinic}/programmes/{programme}/events"


def conforms(schema: type[Schema], body: dict) -> dict:
    """The body loads with its documented schema: every field documented, none missing."""
    schema().load(body)
    return body


class World:
    def __init__(self, app, client, tokens) -> None:
        self.app, self.client, self.tokens = app, client, tokens
        self.store = app.extensions["traction"].store
        self.a = [uuid.uuid4() for _ in range(3)]
        self.b = uuid.uuid4()
        for n, programme in enumerate(self.a):
            self.post(A, programme, [b.started(days=n, patient_ref=f"pt-a{n}"),
                                     b.session(days=n + 1), b.pain(3, days=n + 2)],
                      tokens.writer_a)
        self.post(A, self.a[0], [b.discharged(days=20, outcome="goals_met")], tokens.writer_a)
        self.post(B, self.b, [b.started(patient_ref="secret-b"), b.pain(2, 1)],
                  tokens.writer_b)
        #: Each clinic's count of its events (the positions its receipts show), and
        #: the global log's (which only the network's route shows).
        self.heads = {A: 10, B: 2}
        self.head = 12

    def post(self, clinic: str, programme: uuid.UUID, events: list, writer: dict) -> int:
        response = self.client.post(events_url(clinic, programme), json={"events": events},
                                    headers=writer)
        assert response.status_code == 201, response.json
        return response.json["recorded"][-1]["position"]

    def project(self) -> None:
        RunnerAt(self.store.url).run(once=True)

    def get(self, path: str, headers: dict, **query):
        return self.client.get(path, headers=headers, query_string=query)


@pytest.fixture
def world(app, client, tokens) -> World:
    world = World(app, client, tokens)
    world.project()
    return world


def test_a_clinic_reads_its_own_summaries_and_dashboard(world):
    t = world.tokens
    listing = world.get(f"/v1/clinics/{A}/programmes", t.viewer_a)
    assert listing.status_code == 200
    assert listing.headers["X-Projection-Position"] == str(world.heads[A])
    page = conforms(ProgrammeSummaryPageSchema, listing.json)
    # Newest first (by start), and nothing of clinic-b.
    assert [p["programme_id"] for p in page["programmes"]] == [str(p) for p in world.a[::-1]]
    assert page["next"] is None
    assert b"secret-b" not in listing.data

    summary = world.get(f"/v1/clinics/{A}/programmes/{world.a[0]}/summary", t.writer_a)
    assert summary.status_code == 200
    body = conforms(ProgrammeSummaryDetailSchema, summary.json)
    assert (body["status"], body["outcome"], body["latest_pain"]) == (
        "discharged", "goals_met", 3)
    assert [p["pain_nrs"] for p in body["pain_trajectory"]] == [3]

    dashboard = world.get(f"/v1/clinics/{A}/dashboard", t.viewer_a)
    assert dashboard.status_code == 200
    assert dashboard.headers["X-Projection-Position"] == str(world.heads[A])
    d = conforms(ClinicDashboardSchema, dashboard.json)
    assert (d["clinic_id"], d["programmes"], d["sessions_completed"]) == (A, 3, 3)
    assert d["by_status"] == {"active": 2, "paused": 0, "discharged": 1}
    assert b"pt-a" not in dashboard.data  # no patient-level data on a dashboard

    network = world.get("/v1/dashboard", t.admin)
    assert network.status_code == 200
    assert network.headers["X-Projection-Position"] == str(world.head)
    n = conforms(NetworkDashboardSchema, network.json)
    assert [c["clinic_id"] for c in n["clinics"]] == [A, B]
    assert n["totals"]["programmes"] == 4
    assert b"secret-b" not in network.data


def test_another_clinics_programme_is_a_404_like_a_missing_one(world):
    t = world.tokens
    other = world.get(f"/v1/clinics/{A}/programmes/{world.b}/summary", t.writer_a)
    missing = world.get(f"/v1/clinics/{A}/programmes/{uuid.uuid4()}/summary", t.writer_a)
    assert other.status_code == missing.status_code == 404
    strip = lambda r: {k: v for k, v in r.json.items() if k != "instance"}  # noqa: E731
    assert strip(other) == strip(missing)
    assert b"secret-b" not in other.data
    # A clinic outside the token's scope: 404 too, for every projection read.
    for path in (f"/v1/clinics/{B}/programmes", f"/v1/clinics/{B}/programmes/{world.b}/summary"):
        assert world.get(path, t.writer_a).status_code == 404
    assert world.get(f"/v1/clinics/{B}/dashboard", t.viewer_a).status_code == 404


ROLES = [
    ("/v1/clinics/clinic-a/dashboard", "writer_a", 403),
    ("/v1/clinics/clinic-a/dashboard", "admin", 403),
    ("/v1/clinics/clinic-a/dashboard", "auditor", 200),
    ("/v1/clinics/clinic-a/dashboard", "viewer_all", 200),
    ("/v1/dashboard", "viewer_a", 403),  # a one-clinic token: not the network
    ("/v1/dashboard", "writer_a", 403),
    ("/v1/dashboard", "viewer_all", 200),
    ("/v1/dashboard", "auditor", 200),
    ("/v1/clinics/clinic-a/programmes", "admin", 403),
    ("/v1/clinics/clinic-a/programmes", "auditor", 200),
    ("/v1/clinics/clinic-a/programmes", None, 401),
]


def test_roles(world):
    answers = [
        (path, role, world.get(path, getattr(world.tokens, role) if role else {}).status_code)
        for path, role, _status in ROLES
    ]
    assert answers == ROLES


def test_pages_follow_the_cursor_and_filter_by_status(world):
    t = world.tokens
    seen, cursor = [], None
    while True:
        query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = world.get(f"/v1/clinics/{A}/programmes", t.viewer_a, **query).json
        seen += [p["programme_id"] for p in page["programmes"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [str(p) for p in world.a[::-1]]
    discharged = world.get(f"/v1/clinics/{A}/programmes", t.viewer_a, status="discharged")
    assert [p["programme_id"] for p in discharged.json["programmes"]] == [str(world.a[0])]
    bad = world.get(f"/v1/clinics/{A}/programmes", t.viewer_a, cursor="not-ours")
    assert bad.status_code == 422
    assert bad.json["errors"][0]["pointer"] == "/cursor"
    assert world.get(f"/v1/clinics/{A}/programmes", t.viewer_a,
                     status="sleeping").status_code == 422


def test_min_position_waits_then_answers_503_with_retry_after(world, monkeypatch):
    reader = world.app.extensions[READER]
    assert reader.min_position_wait == reading.DEFAULT_MIN_POSITION_WAIT == 2.0
    monkeypatch.setattr(reader, "min_position_wait", 0.3)
    t = world.tokens
    position = world.post(A, world.a[1], [b.pain(1, days=5)], t.writer_a)  # not projected yet
    began = time.monotonic()
    behind = world.get(f"/v1/clinics/{A}/dashboard", t.viewer_a, min_position=position)
    waited = time.monotonic() - began
    assert behind.status_code == 503
    assert behind.headers["Retry-After"] == "1"
    assert behind.headers["X-Projection-Position"] == str(world.heads[A])
    assert behind.json["type"].endswith("projection-behind")
    assert 0.3 <= waited < 1.5
    # Already processed: no wait at all.
    assert world.get(f"/v1/clinics/{A}/dashboard", t.viewer_a,
                     min_position=world.heads[A]).status_code == 200

    # With the runner following, the read waits for it instead.
    monkeypatch.setattr(reader, "min_position_wait", 10)
    runner = RunnerAt(world.store.url)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        summary = world.get(f"/v1/clinics/{A}/programmes/{world.a[1]}/summary", t.viewer_a,
                            min_position=position)
    finally:
        runner.stop.set()
        thread.join(timeout=30)
    assert summary.status_code == 200
    assert int(summary.headers["X-Projection-Position"]) >= position
    assert summary.json["latest_pain"] == 1


def test_readyz(world, client):
    ready = client.get("/readyz", headers=SCRAPE)
    assert ready.status_code == 200
    body = ready.json
    assert (body["status"], body["store"]) == ("ready", "reachable")
    [projection] = body["projections"]
    assert (projection["position"], projection["lag_events"], projection["poison_events"]) == (
        world.head, 0, 0)
    world.post(A, world.a[1], [b.pain(1, days=5)], world.tokens.writer_a)
    lagging = client.get("/readyz", headers=SCRAPE).json["projections"][0]
    assert lagging["lag_events"] == 1
    assert lagging["lag_seconds"] >= 0
    assert b"pt-a" not in client.get("/readyz", headers=SCRAPE).data


def test_readyz_shows_the_networks_activity_only_to_operators(world, client):
    t = world.tokens
    for caller in ({}, t.viewer_a, t.writer_b, {"Authorization": "Bearer tl_junk"}):
        anonymous = client.get("/readyz", headers=caller)
        assert anonymous.status_code == 200
        assert anonymous.json == {"status": "ready", "store": "reachable"}
    for operator in (SCRAPE, t.admin, t.auditor, t.viewer_all):
        detail = client.get("/readyz", headers=operator).json
        assert detail["projections"][0]["head"] == world.head
        assert "replica" in detail


def test_reads_without_a_query_get_the_schemas_defaults_and_queries_are_still_checked(world):
    """A read with no query string skips the marshmallow load (the defaults are
    loaded once); one with a query string is loaded and checked as ever."""
    t = world.tokens
    listing = f"/v1/clinics/{A}/programmes"
    for _ in range(3):
        assert len(world.get(listing, t.viewer_a).json["programmes"]) == 3
    assert len(world.get(listing, t.viewer_a, limit=1).json["programmes"]) == 1
    assert world.get(listing, t.viewer_a, limit=0).status_code == 422
    assert world.get(listing, t.viewer_a, status="asleep").status_code == 422
    assert world.get(f"/v1/clinics/{A}/dashboard", t.viewer_a, min_position="x"
                     ).status_code == 422
    assert len(world.get(listing, t.viewer_a).json["programmes"]) == 3


def test_the_openapi_document_describes_the_new_figures_and_the_deprecated_alias(world):
    spec = world.client.get("/openapi.json").json
    schemas = spec["components"]["schemas"]
    for name in ("ClinicDashboard", "NetworkTotals"):
        dashboard = schemas[name]["properties"]
        assert dashboard["median_days_to_response"]["deprecated"] is True
        assert "median_days_to_response_among_responders" in dashboard
        for field in ("responder_rate_discharged", "responder_rates", "time_to_response",
                      "pain_change", "programme_weeks", "adverse_event_rates", "comparisons"):
            assert field in dashboard and field in schemas[name]["required"], field
    assert "censored at its last pain report" in schemas["Group"]["properties"][
        "time_to_response"]["description"]
    assert "clinic" in schemas["NetworkComparisons"]["properties"]
    summary = schemas["ProgrammeSummary"]["properties"]
    assert {"responded_substantially", "days_to_substantial_response", "active_days"} <= set(
        summary)

    d = world.get(f"/v1/clinics/{A}/dashboard", world.tokens.viewer_a).json
    # The alias keeps its value; the new figures answer beside it.
    assert d["median_days_to_response"] == d["median_days_to_response_among_responders"]
    assert d["time_to_response"]["moderate"]["programmes"] == 3
    assert d["responder_rates"]["moderate"]["among_discharged"]["programmes"] == 1
