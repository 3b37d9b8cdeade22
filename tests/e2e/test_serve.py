"""End to end: `traction serve` under gunicorn, real HTTP, both stores."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from tests import builders as b
from tests.e2e.server import TRACTION, Server, free_port, traction

pytestmark = pytest.mark.slow


@pytest.fixture
def server(store_url):
    server = Server(store_url, workers=2)
    yield server
    server.stop()


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_post_and_read_back_through_gunicorn(server, store_url):
    traction(store_url, "clinics", "add", "north-physio", "North Physio")
    writer = last_line(traction(store_url, "tokens", "issue", "--role", "writer",
                                "--clinic", "north-physio", "--label", "EHR bridge"))
    pid = uuid.uuid4()
    path = f"/v1/clinics/north-physio/programmes/{pid}"
    status, body, _ = server.request("POST", path + "/events",
                                     {"events": [b.started(), b.session(1), b.pain(5, 2)]},
                                     writer)
    assert status == 201, body
    assert body["version"] == 3
    status, state, _ = server.request("GET", path, token=writer)
    assert (status, state["sessions_completed"], state["pain_reports"]) == (200, 1, 1)
    status, past, _ = server.request("GET", path + "?version=1", token=writer)
    assert (status, past["sessions_completed"]) == (200, 0)
    status, history, _ = server.request("GET", path + "/events", token=writer)
    assert [e["type"] for e in history["events"]] == [
        "ProgrammeStarted", "SessionCompleted", "PainReported"]
    status, problem, headers = server.request("POST", path + "/events", {"events": []}, writer)
    assert status == 422 and headers["Content-Type"] == "application/problem+json"
    assert server.request("GET", "/openapi.json")[0] == 200


def test_revocation_reaches_every_worker_within_a_second(server, store_url):
    traction(store_url, "clinics", "add", "north-physio", "North Physio")
    issued = traction(store_url, "tokens", "issue", "--role", "viewer", "--clinic",
                      "north-physio")
    token = last_line(issued)
    token_id = token.split("_")[1]
    path = f"/v1/clinics/north-physio/programmes/{uuid.uuid4()}"
    # Warm every worker's cache with the valid token (404: no such programme).
    assert {server.request("GET", path, token=token)[0] for _ in range(40)} == {404}
    traction(store_url, "tokens", "revoke", token_id)
    time.sleep(1.0)
    statuses = [server.request("GET", path, token=token)[0] for _ in range(40)]
    assert set(statuses) == {401}


def test_serve_says_plainly_when_the_store_cannot_be_reached():
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/traction"
    done = subprocess.run([TRACTION, "serve", "--bind", f"127.0.0.1:{free_port()}", "--no-demo"],
                          env={**os.environ, "TRACTION_DATABASE_URL": nobody},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: cannot reach the postgresql store: ")
    assert "Traceback" not in done.stderr
