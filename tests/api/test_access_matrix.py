"""R6: every route x every role x own clinic / other clinic / no token /
malformed / revoked token / token of an unregistered clinic -> the status of
the README's roles, and no byte of another clinic's data in any answer.

The routes are read from the app's URL map: a route added without an entry
in ROUTES (and so without a decision about who may call it) fails this test.
The allowed roles below are written from the README, independently of the
@allow declarations they check.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from service.storage.directory import Directory
from tests import builders as b
from tests.stores import RunnerAt

OWN, OTHER, UNREGISTERED = "clinic-a", "clinic-b", "ghost-clinic"


@dataclass
class Route:
    method: str
    path: str  # {clinic}, {programme}, {token} are filled in per request
    allowed: set[str]  # among writer, viewer, viewer_all, auditor, admin
    success: int = 200
    body: Callable[[], Any] | None = None
    #: A JSON body that names something of the clinic called (its patient).
    clinic_body: Callable[[str], Any] | None = None
    #: A body that is not JSON (bulk NDJSON): its bytes and content type.
    raw_body: Callable[[], tuple[bytes, str]] | None = None
    #: Headers the route needs beside the token (a Bulk export's Prefer).
    headers: dict[str, str] = field(default_factory=dict)
    clinic_scoped: bool = field(init=False)

    def __post_init__(self) -> None:
        self.clinic_scoped = "{clinic}" in self.path


PROGRAMME = "/v1/clinics/{clinic}/programmes/{programme}"
ROUTES: dict[str, Route] = {
    "events.post_events": Route("POST", PROGRAMME + "/events", {"writer"}, 201,
                                body=lambda: b.session(1)),
    "bulk.post_bulk": Route(
        "POST", "/v1/clinics/{clinic}/events:bulk", {"writer"}, 200,
        raw_body=lambda: (json.dumps({**b.started(), "programme_id": str(uuid.uuid4())}).encode()
                          + b"\n", "application/x-ndjson")),
    "programmes.get_programme": Route("GET", PROGRAMME, {"writer", "viewer", "viewer_all",
                                                          "auditor"}),
    "programmes.get_history": Route("GET", PROGRAMME + "/events", {"writer", "viewer",
                                                                    "viewer_all", "auditor"}),
    "erasure.erase_programme": Route("POST", PROGRAMME + "/erasure", {"admin"}, 201,
                                     body=lambda: {"reason": "request ER-1"}),
    "erasure.erase_patient": Route(
        "POST", "/v1/clinics/{clinic}/patients/erasure", {"admin"}, 200,
        clinic_body=lambda clinic: {"patient_ref": f"secret-patient-{clinic}",
                                    "reason": "request ER-2"}),
    "admin.register_clinic": Route(
        "POST", "/v1/clinics", {"admin"}, 201,
        body=lambda: {"clinic_id": f"c-{uuid.uuid4().hex[:10]}", "name": "New clinic"}),
    "admin.list_clinics": Route("GET", "/v1/clinics", {"admin", "auditor"}),
    "admin.issue_token": Route("POST", "/v1/tokens", {"admin"}, 201,
                               body=lambda: {"role": "viewer", "clinic_id": OWN, "label": "x"}),
    "admin.revoke_token": Route("DELETE", "/v1/tokens/{token}", {"admin"}),
    "admin.list_tokens": Route("GET", "/v1/tokens", {"admin"}),
    "admin.deactivate_clinic": Route("POST", "/v1/clinics/{clinic}:deactivate", {"admin"}),
    "admin.reactivate_clinic": Route("POST", "/v1/clinics/{clinic}:reactivate", {"admin"}),
    "audit.access_log": Route("GET", "/v1/audit/access-log", {"auditor"}),
    "ops.healthz": Route("GET", "/healthz", {"public"}),
    "ops.readyz": Route("GET", "/readyz", {"public"}),
    "metrics.metrics": Route("GET", "/metrics", {"admin"}),
    "audit.global_log": Route("GET", "/v1/audit/events", {"auditor"}),
    "audit.verify_chain": Route("GET", "/v1/audit/verify", {"auditor"}),
    "audit.start_verification": Route("POST", "/v1/audit/verifications", {"auditor"}, 202),
    "audit.verification": Route("GET", "/v1/audit/verifications/{verification}", {"auditor"}),
    "dashboards.list_programmes": Route("GET", "/v1/clinics/{clinic}/programmes",
                                        {"writer", "viewer", "viewer_all", "auditor"}),
    "dashboards.programme_summary": Route("GET", PROGRAMME + "/summary",
                                          {"writer", "viewer", "viewer_all", "auditor"}),
    "dashboards.clinic_dashboard": Route("GET", "/v1/clinics/{clinic}/dashboard",
                                         {"viewer", "viewer_all", "auditor"}),
    "dashboards.network_dashboard": Route("GET", "/v1/dashboard",
                                          {"viewer_all", "auditor", "admin"}),
    # The dashboard's HTML shells (service/http/web.py): no data; their scripts call the API.
    "pages.home": Route("GET", "/", {"public"}, 302),
    "pages.sign_in": Route("GET", "/dashboard/", {"public"}),
    "pages.network": Route("GET", "/dashboard/network", {"public"}),
    "pages.clinic": Route("GET", "/dashboard/clinics/{clinic}", {"public"}),
    "pages.programme": Route("GET", "/dashboard/clinics/{clinic}/programmes/{programme}",
                             {"public"}),
    # FHIR (docs/fhir.md): the same roles as the programme reads; errors as OperationOutcomes.
    "fhir.get_programme_fhir": Route("GET", PROGRAMME + "/fhir",
                                     {"writer", "viewer", "viewer_all", "auditor"}),
    "fhir.get_fhir_metadata": Route("GET", "/v1/fhir/metadata", {"public"}),
    # Bulk export: a repeated kick-off while the clinic's export runs is 429, so the
    # matrix kicks off with each token in turn only after the last one's job ended
    # (World.call waits); a job that does not exist answers 404 to those who may ask.
    "fhir.export_clinic": Route("GET", "/v1/clinics/{clinic}/fhir/$export",
                                {"writer", "viewer", "viewer_all", "auditor"}, 202,
                                headers={"Prefer": "respond-async"}),
    "fhir.export_status": Route("GET", "/v1/clinics/{clinic}/fhir/export-jobs/no-such-job",
                                {"writer", "viewer", "viewer_all", "auditor"}, 404),
    "fhir.cancel_export": Route("DELETE", "/v1/clinics/{clinic}/fhir/export-jobs/no-such-job",
                                {"writer", "viewer", "viewer_all", "auditor"}, 404),
    "fhir.export_file": Route(
        "GET", "/v1/clinics/{clinic}/fhir/export-jobs/no-such-job/Observation.ndjson",
        {"writer", "viewer", "viewer_all", "auditor"}, 404),
    "fhir.post_fhir_bundle": Route("POST", "/v1/clinics/{clinic}/fhir", {"writer"}, 200,
                                   body=lambda: {"resourceType": "Bundle", "type": "batch"}),
}
#: Registered by flask and flask-smorest themselves: the docs and static files.
FRAMEWORK_ENDPOINTS = {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui"}
ROLES = ("writer", "viewer", "viewer_all", "auditor", "admin")


class World:
    """Two clinics with a programme each, and a token for every case."""

    def __init__(self, client, tokens, store_url: str) -> None:
        self.client = client
        self.tokens = tokens
        self.directory: Directory = tokens.directory
        self.programmes = {OWN: uuid.uuid4(), OTHER: uuid.uuid4()}
        for clinic, writer in ((OWN, tokens.writer_a), (OTHER, tokens.writer_b)):
            start = b.started(patient_ref=f"secret-patient-{clinic}")
            response = client.post(self.url(PROGRAMME + "/events", clinic), json=start,
                                   headers=writer)
            assert response.status_code == 201
        # The projections catch up once, so summaries and dashboards exist.
        RunnerAt(store_url).run(once=True)
        self.headers = {"writer": tokens.writer_a, "viewer": tokens.viewer_a,
                        "viewer_all": tokens.viewer_all, "auditor": tokens.auditor,
                        "admin": tokens.admin}
        revoked = tokens.issue("auditor", None, "to be revoked")
        self.directory.revoke_token(revoked["X-Token-Id"])
        self.revoked = revoked
        # A token whose clinic was never registered (a row put straight in the store).
        self.ghost = {role: self._ghost_token(role) for role in ("writer", "viewer")}

    def _ghost_token(self, role: str) -> dict[str, str]:
        import hashlib
        import secrets

        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self.directory.db.transaction() as cursor:
            cursor.execute(
                "INSERT INTO api_tokens (token_id, secret_sha256, role, clinic_id, label,"
                " issued_at) VALUES (%s, %s, %s, %s, %s, %s)",
                [token_id, hashlib.sha256(secret.encode()).hexdigest(), role, UNREGISTERED,
                 "ghost", "2026-01-01T00:00:00+00:00"],
            )
            cursor.execute("UPDATE directory_version SET version = version + 1")
        return {"Authorization": f"Bearer tl_{token_id}_{secret}"}

    def url(self, path: str, clinic: str = OWN) -> str:
        programme = self.programmes.get(clinic, uuid.uuid4())
        token = path and "{token}" in path and self.tokens.issue("viewer", OWN)["X-Token-Id"]
        verification = "{verification}" in path and self.client.post(
            "/v1/audit/verifications", headers=self.tokens.auditor).json["verification_id"]
        return path.format(clinic=clinic, programme=programme, token=token,
                           verification=verification)

    def call(self, route: Route, clinic: str, headers: dict[str, str]):
        kwargs: dict[str, Any] = {"headers": {**route.headers, **headers}}
        if route.body is not None:
            kwargs["json"] = route.body()
        if route.clinic_body is not None:
            kwargs["json"] = route.clinic_body(clinic)
        if route.raw_body is not None:
            kwargs["data"], kwargs["content_type"] = route.raw_body()
        response = self.client.open(self.url(route.path, clinic), method=route.method,
                                    **kwargs)
        if response.status_code == 202 and "Content-Location" in response.headers:
            # A Bulk export: let it end, so the clinic may start the next one.
            exports = self.client.application.extensions["traction"].fhir_exports
            exports.wait(response.headers["Content-Location"].rsplit("/", 1)[-1], timeout=60)
        return response


@pytest.fixture
def world(client, tokens, store_url) -> World:
    return World(client, tokens, store_url)


def test_every_route_has_a_decision(app):
    endpoints = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    undecided = set(endpoints) - set(ROUTES) - FRAMEWORK_ENDPOINTS
    assert not undecided, f"routes with no entry in the R6 matrix: {sorted(undecided)}"
    for endpoint, route in ROUTES.items():
        assert endpoint in endpoints, f"{endpoint} is in the matrix but not in the app"
        assert route.method in endpoints[endpoint].methods


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_route_statuses_for_every_role_and_clinic(world, endpoint):
    route = ROUTES[endpoint]
    if "public" in route.allowed:
        assert world.call(route, OWN, {}).status_code == route.success
        return
    failures = []

    def expect(case: str, clinic: str, headers: dict[str, str], status: int) -> None:
        response = world.call(route, clinic, headers)
        if response.status_code != status:
            failures.append(f"{case}: {response.status_code} (expected {status})")
        if clinic != OTHER and not (status == 200 and route.allowed & {"viewer_all", "admin",
                                                                         "auditor"}):
            # An answer about our own clinic never shows another clinic's data.
            text = response.get_data(as_text=True)
            if str(world.programmes[OTHER]) in text or "secret-patient-clinic-b" in text:
                failures.append(f"{case}: leaks clinic-b data")
        if response.status_code >= 400:
            # FHIR's routes answer errors as OperationOutcomes, the others as problems.
            fhir = "/fhir" in route.path
            assert response.headers["Content-Type"] == (
                "application/fhir+json" if fhir else "application/problem+json")
            if fhir:
                assert response.json["resourceType"] == "OperationOutcome"

    expect("no token", OWN, {}, 401)
    expect("malformed token", OWN, {"Authorization": "Bearer not-a-token"}, 401)
    expect("wrong scheme", OWN, {"Authorization": "Basic dXNlcjpwYXNz"}, 401)
    forged = "tl_" + world.tokens.viewer_a["X-Token-Id"] + "_" + "A" * 43
    expect("forged secret", OWN, {"Authorization": f"Bearer {forged}"}, 401)
    expect("revoked token", OWN, world.revoked, 401)
    for role in ROLES:
        headers = world.headers[role]
        allowed = role in route.allowed
        expect(f"{role} own clinic", OWN, headers, route.success if allowed else 403)
        if route.clinic_scoped:
            all_clinics = role in ("viewer_all", "auditor", "admin")
            status = (route.success if all_clinics else 404) if allowed else 403
            response = world.call(route, OTHER, headers)
            if response.status_code != status:
                failures.append(f"{role} other clinic: {response.status_code} "
                                f"(expected {status})")
            if not all_clinics:
                text = response.get_data(as_text=True)
                if str(world.programmes[OTHER]) in text or "secret-patient-clinic-b" in text:
                    failures.append(f"{role} other clinic: the answer shows clinic-b data")
    for role, headers in world.ghost.items():
        if route.clinic_scoped:
            status = 404 if role in route.allowed else 403
            expect(f"{role} of an unregistered clinic", UNREGISTERED, headers, status)
        else:
            expect(f"{role} of an unregistered clinic", OWN, headers, 403)
    assert not failures, f"{endpoint}: " + "; ".join(failures)


def test_foreign_404_is_identical_to_missing(world):
    viewer = world.tokens.viewer_a
    missing = world.client.get(f"/v1/clinics/{OWN}/programmes/{uuid.uuid4()}", headers=viewer)
    foreign = world.client.get(f"/v1/clinics/{OTHER}/programmes/{world.programmes[OTHER]}",
                               headers=viewer)
    unknown_clinic = world.client.get(f"/v1/clinics/nowhere/programmes/{uuid.uuid4()}",
                                      headers=world.tokens.auditor)
    assert missing.status_code == foreign.status_code == unknown_clinic.status_code == 404
    assert missing.get_data() == foreign.get_data() == unknown_clinic.get_data()


def test_patient_reads_by_auditors_and_all_clinic_viewers_are_logged(world):
    client, tokens = world.client, world.tokens
    pid = world.programmes[OTHER]
    client.get(f"/v1/clinics/{OTHER}/programmes/{pid}", headers=tokens.auditor,
               environ_base={"REMOTE_ADDR": "10.1.2.3"})
    client.get(f"/v1/clinics/{OTHER}/programmes/{pid}/events", headers=tokens.viewer_all)
    client.get(f"/v1/clinics/{OWN}/programmes/{world.programmes[OWN]}", headers=tokens.viewer_a)
    log = client.get("/v1/audit/access-log?limit=1000", headers=tokens.auditor).json["entries"]
    reads = [e for e in log if e["action"] == "read"]
    assert [(e["role"], e["programme_id"], e["route"]) for e in reads] == [
        ("auditor", str(pid), "/v1/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>"),
        ("viewer", str(pid),
         "/v1/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>/events"),
    ]
    assert reads[0]["remote_addr"] == "10.1.2.3"
    assert reads[0]["token_id"] == tokens.auditor["X-Token-Id"]
    assert reads[0]["token_label"] == "auditor test"
    assert reads[0]["clinic_id"] == OTHER
    actions = [e["action"] for e in log]
    assert actions.count("clinic_registered") == 2
    assert "token_revoked" in actions and "token_issued" in actions


def test_tokens_issued_over_http_work_once_shown_and_revocation_is_immediate(world):
    client, tokens = world.client, world.tokens
    issued = client.post("/v1/tokens", json={"role": "viewer", "clinic_id": OWN,
                                             "label": "dashboard tv"}, headers=tokens.admin)
    assert issued.status_code == 201
    headers = {"Authorization": f"Bearer {issued.json['token']}"}
    path = f"/v1/clinics/{OWN}/programmes/{world.programmes[OWN]}"
    assert client.get(path, headers=headers).status_code == 200
    listed = client.get("/v1/clinics", headers=tokens.admin).get_data(as_text=True)
    assert issued.json["token"] not in listed
    revoked = client.delete(f"/v1/tokens/{issued.json['token_id']}", headers=tokens.admin)
    assert revoked.status_code == 200 and revoked.json["revoked"] is True
    assert client.get(path, headers=headers).status_code == 401
    assert client.delete("/v1/tokens/0000000000000000", headers=tokens.admin).status_code == 404


def test_token_and_clinic_requests_are_validated(world):
    client, admin = world.client, world.tokens.admin
    assert client.post("/v1/tokens", json={"role": "root"}, headers=admin).status_code == 422
    assert client.post("/v1/tokens", json={"role": "writer"}, headers=admin).status_code == 422
    assert client.post("/v1/tokens", json={"role": "writer", "clinic_id": "nowhere"},
                       headers=admin).status_code == 422
    assert client.post("/v1/tokens", json={"role": "auditor", "clinic_id": OWN},
                       headers=admin).status_code == 422
    assert client.post("/v1/clinics", json={"clinic_id": OWN, "name": "again"},
                       headers=admin).status_code == 409
    assert client.post("/v1/clinics", json={"clinic_id": "Bad Id", "name": "x"},
                       headers=admin).status_code == 422
    posted_to_unregistered = client.post(
        f"/v1/clinics/nowhere/programmes/{uuid.uuid4()}/events", json=b.started(),
        headers=world.tokens.admin)
    assert posted_to_unregistered.status_code == 403  # admins never write events
