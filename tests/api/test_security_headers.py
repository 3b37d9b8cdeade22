"""Security headers on every class of response (real app, both stores): API JSON,
problems, patient data, dashboards, the docs, the pages, operations, static files."""

from __future__ import annotations

import uuid

import pytest

from tests import builders as b
from tests.stores import SCRAPE

EVERYWHERE = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
              "Referrer-Policy": "no-referrer"}


@pytest.fixture
def programme(client, tokens) -> uuid.UUID:
    programme_id = uuid.uuid4()
    answer = client.post(f"/v1/clinics/clinic-a/programmes/{programme_id}/events",
                         json={"events": [b.started(), b.session(1)]}, headers=tokens.writer_a)
    assert answer.status_code == 201
    return programme_id


def responses(client, tokens, programme):
    base = f"/v1/clinics/clinic-a/programmes/{programme}"
    return {
        "receipt": client.post(f"{base}/events", json=b.pain(3, 2), headers=tokens.writer_a),
        "state": client.get(base, headers=tokens.viewer_a),
        "state at a version": client.get(f"{base}?version=1", headers=tokens.viewer_a),
        "history": client.get(f"{base}/events", headers=tokens.viewer_a),
        "history at a version": client.get(f"{base}/events?version=1", headers=tokens.viewer_a),
        "summary": client.get(f"{base}/summary", headers=tokens.viewer_a),
        "programme list": client.get("/v1/clinics/clinic-a/programmes", headers=tokens.viewer_a),
        "dashboard": client.get("/v1/clinics/clinic-a/dashboard", headers=tokens.viewer_a),
        "problem 401": client.get(base),
        "problem 404": client.get(f"/v1/clinics/clinic-a/programmes/{uuid.uuid4()}",
                                  headers=tokens.viewer_a),
        "audit": client.get("/v1/audit/events", headers=tokens.auditor),
        "admin": client.get("/v1/clinics", headers=tokens.admin),
        "readyz": client.get("/readyz"),
        "metrics": client.get("/metrics", headers=SCRAPE),
        "openapi": client.get("/openapi.json"),
        "docs": client.get("/docs"),
        "page": client.get("/dashboard/"),
        "static": client.get("/static/dashboard/common.js"),
        "unrouted": client.get("/nowhere"),
    }


def test_every_response_class_carries_the_security_headers(client, tokens, programme):
    for name, response in responses(client, tokens, programme).items():
        for header, value in EVERYWHERE.items():
            assert response.headers.get(header) == value, (name, header)
        policy = response.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in policy, name
        assert "unsafe-eval" not in policy, name
        response.close()


def test_the_docs_allow_only_their_own_scripts_and_no_inline_one(client):
    docs = client.get("/docs")
    policy = docs.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split(
        "script-src", 1)[1].split(";", 1)[0]
    html = docs.get_data(as_text=True)
    assert "<script>" not in html and "<script src=" in html
    script = client.get("/static/docs/start.js")
    assert script.status_code == 200
    script.close()


def test_the_api_allows_a_document_nothing(client, tokens, programme):
    answer = client.get(f"/v1/clinics/clinic-a/programmes/{programme}/events",
                        headers=tokens.viewer_a)
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_patient_data_is_never_stored_by_a_cache(client, tokens, programme):
    answers = responses(client, tokens, programme)
    for response in answers.values():
        response.close()
    for name in ("receipt", "state", "state at a version", "history", "history at a version",
                 "summary", "programme list", "problem 404", "audit"):
        cache = answers[name].headers["Cache-Control"]
        assert "no-store" in cache, (name, cache)
        assert "immutable" not in cache and "public" not in cache, name
    # A dashboard's aggregates may be kept and revalidated; still private to the token.
    assert answers["dashboard"].headers["Cache-Control"] == "private, no-cache"
    # An unchanged programme still answers 304 to a client that kept its copy.
    state = answers["state at a version"]
    again = client.get(f"/v1/clinics/clinic-a/programmes/{programme}?version=1",
                       headers={**tokens.viewer_a, "If-None-Match": state.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["Cache-Control"] == "private, no-store"
